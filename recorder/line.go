package recorder

import (
	"bytes"
	"strings"
	"sync"
	"unicode/utf8"
)

// Line is a command line a shell received: what was on the line when Enter
// was pressed, after editing.
type Line struct {
	// Text is the line. It is empty when Unechoed is set.
	Text string
	// End is the index, in the chunk given to [LineBuilder.Input], of the
	// CR or LF that submitted the line.
	End int
	// Unechoed reports a line the host did not display as it was typed,
	// such as a password at a prompt. Its text is withheld: a command log
	// must show that something was typed, not the secret.
	Unechoed bool
	// Truncated reports that the line grew past [MaxLineBytes] and Text
	// holds only its start.
	Truncated bool
	// Denied reports a line the Guard refused: Text is the line, Rule the
	// rule that matched, and the Enter at End must not reach the host.
	Denied bool
	Rule   string
}

// LineBuilder rebuilds the lines a shell receives from the bytes a client
// types, and watches the host's output to know when keys are not lines.
// The zero value is ready to use; its methods are safe for concurrent use,
// so the two directions of a bridge may feed it from their own goroutines.
type LineBuilder struct {
	mu    sync.Mutex
	ed    editor
	in    keyParser
	scr   screen
	open  bool   // a line has started: its echo is being collected
	lines []Line // lines settled during the current call

	// Guard, when set, is asked about every line as Enter is typed, before
	// the host could run it. A non-empty answer (the rule that matched)
	// denies the line: Input returns it with Denied set at once and stops
	// reading the chunk, so nothing typed after it is taken as typed.
	Guard  func(text string) (rule string)
	denied bool // set by submit when Guard denied; Input stops there

	// pending holds submitted lines, oldest first, whose echo was not seen
	// by the time Enter was typed: typeahead while a command runs, or a
	// paste with its newline. They are released in order once their echo
	// shows up, or as unechoed once it cannot any more.
	pending []pendingLine
}

// pendingLine is a submitted line waiting for its echo.
type pendingLine struct {
	line    Line
	text    string
	needle  []byte // the printable bytes of text, as the host would echo them
	window  []byte // recent output, at most len(needle)-1 bytes carried over
	seen    int    // output bytes looked at since submission
	settled bool
	echoed  bool
}

// Bounds on waiting for an echo. A typeahead line is echoed when the shell
// reads it, normally within the next screenful; a password never is.
const (
	maxPending    = 64
	maxEchoWindow = 64 << 10
)

// NewLineBuilder returns an empty LineBuilder.
func NewLineBuilder() *LineBuilder { return new(LineBuilder) }

// Input feeds bytes the client sent to the host and returns the lines they
// submitted, in order, or nil. Blank lines are not returned: the shell runs
// nothing for them. Keys typed while the alternate screen is on go to a
// full-screen program and make no lines. Escape sequences and runes may be
// split across calls.
func (b *LineBuilder) Input(p []byte) []Line {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i, c := range p {
		b.feed(c, i)
		if b.denied {
			b.denied = false
			b.in = keyParser{}
			break
		}
	}
	return b.take()
}

// Output feeds bytes the host sent to the client. They tell which keys are
// not lines (the alternate screen), whether a line editor is reading
// (bracketed paste mode), and what the host echoed.
//
// It returns lines submitted earlier whose echo this output settled.
func (b *LineBuilder) Output(p []byte) []Line {
	b.mu.Lock()
	defer b.mu.Unlock()
	changes := b.scr.changes
	b.scr.fresh = b.scr.fresh[:0]
	waiting := b.unsettled()
	b.scr.feed(p, (b.open || waiting) && !b.scr.alt)
	if b.scr.changes != changes {
		// A full-screen program started or ended: whatever was on the
		// line belongs to neither the program nor the next prompt.
		b.ed.discard()
		b.open = false
	}
	if waiting {
		b.watch(b.scr.fresh)
	}
	return b.take()
}

// Flush settles every line still waiting for its echo as unechoed and
// returns them; call it when the session ends.
func (b *LineBuilder) Flush() []Line {
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.pending {
		b.pending[i].settled = true
	}
	b.release()
	return b.take()
}

func (b *LineBuilder) take() []Line {
	lines := b.lines
	b.lines = nil
	return lines
}

func (b *LineBuilder) unsettled() bool {
	for i := range b.pending {
		if !b.pending[i].settled {
			return true
		}
	}
	return false
}

// watch looks for the echo of each waiting line in fresh output. The echo
// must be contiguous: a line typed ahead is echoed in one piece when the
// shell (or the terminal driver) reads it, while a password never appears.
func (b *LineBuilder) watch(fresh []byte) {
	for i := range b.pending {
		pl := &b.pending[i]
		if pl.settled {
			continue
		}
		pl.window = append(pl.window, fresh...)
		pl.seen += len(fresh)
		if bytes.Contains(pl.window, pl.needle) {
			pl.settled, pl.echoed = true, true
			continue
		}
		if pl.seen > maxEchoWindow {
			pl.settled = true
			continue
		}
		if keep := len(pl.needle) - 1; len(pl.window) > keep {
			pl.window = append(pl.window[:0], pl.window[len(pl.window)-keep:]...)
		}
	}
	b.release()
}

// release moves settled lines from the head of the queue to the output, so
// lines always come out in the order they were submitted.
func (b *LineBuilder) release() {
	n := 0
	for n < len(b.pending) && b.pending[n].settled {
		pl := b.pending[n]
		l := pl.line
		if pl.echoed {
			l.Text = pl.text
			b.ed.remember(pl.text)
		} else {
			l.Unechoed = true
		}
		b.lines = append(b.lines, l)
		n++
	}
	b.pending = append(b.pending[:0], b.pending[n:]...)
}

// edit returns the line to change, or nil while keys go to a full-screen
// program. The first edit of a line opens its echo window.
func (b *LineBuilder) edit() *editor {
	if b.scr.alt {
		return nil
	}
	if !b.open {
		b.open = true
		b.scr.echo = b.scr.echo[:0]
	}
	return &b.ed
}

// submit ends the line at p[end].
func (b *LineBuilder) submit(end int) {
	if b.scr.alt {
		return
	}
	text, truncated := b.ed.take()
	b.open = false
	if strings.Trim(text, " \t\n") == "" {
		return
	}
	if b.Guard != nil {
		if rule := b.Guard(text); rule != "" {
			// Denied lines never reach the host, so they are neither in
			// its history nor waiting for an echo: they go out at once
			// (ahead of any earlier line still waiting for its echo).
			b.lines = append(b.lines, Line{Text: text, End: end, Truncated: truncated, Denied: true, Rule: rule})
			b.denied = true
			return
		}
	}
	// A line is remembered in the history only once its echo is seen: the
	// shell's history never holds what was typed at another program's
	// prompt, and recalling it must not bring a password back as text.
	pl := pendingLine{line: Line{End: end, Truncated: truncated}, text: text, needle: printableBytes(text)}
	if b.echoed(text) {
		pl.settled, pl.echoed = true, true
	}
	b.pending = append(b.pending, pl)
	if len(b.pending) > maxPending {
		b.pending[0].settled = true
	}
	b.release()
}

// printableBytes keeps the runes of text a terminal shows as themselves.
func printableBytes(text string) []byte {
	out := make([]byte, 0, len(text))
	for _, r := range text {
		if printable(r) {
			out = utf8.AppendRune(out, r)
		}
	}
	return out
}

// discard is Ctrl-C: the line is dropped and the next one starts afresh.
func (b *LineBuilder) discard() {
	if b.scr.alt {
		return
	}
	b.ed.discard()
	b.open = false
}

// echoed reports whether the host displayed text as it was typed.
//
// When the host has bracketed paste on, a line editor (bash, zsh, a REPL)
// is reading, and line editors echo: bash turns the mode on at the prompt
// and off before it runs the command, so a password prompt of sudo or ssh
// always sees it off. That also covers the last keys before Enter, whose
// echo cannot have arrived yet when Enter is fed.
//
// Otherwise the printable runes of text must appear, in order, in what the
// host displayed since the line's first key. The window starts at that key,
// not at the previous line, so that the prompt before a password ("Password
// for alice:") cannot pass for its echo. A line typed in one chunk with its
// Enter has had no chance to be echoed and is withheld: when in doubt the
// text is hidden, the recording keeps the bytes.
func (b *LineBuilder) echoed(text string) bool {
	if b.scr.paste {
		return true
	}
	echo := b.scr.echo
	for k := 0; k < len(text); {
		r, n := utf8.DecodeRuneInString(text[k:])
		if !printable(r) {
			k += n
			continue
		}
		for end := k + n; k < end; k++ {
			x := bytes.IndexByte(echo, text[k])
			if x < 0 {
				return false
			}
			echo = echo[x+1:]
		}
	}
	return true
}

// printable reports whether a terminal shows r as itself. U+FFFD stands for
// bytes that were not UTF-8, which the host may echo in any form.
func printable(r rune) bool {
	return r >= 0x20 && r != 0x7f && (r < 0x80 || r >= 0xa0) && r != utf8.RuneError
}
