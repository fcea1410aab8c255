package recorder

import (
	"bytes"
	"strings"
	"sync"
	"unicode/utf8"
)

// Line is a command line a shell received: what was on the line when it
// was submitted (Enter, or another key that runs the line), after editing.
type Line struct {
	// Text is the line. It is empty when Unechoed is set.
	Text string
	// End is the index, in the chunk given to [LineBuilder.Input] or
	// [LineBuilder.Forward], of the last byte of the key that submitted
	// the line (CR, LF, Ctrl-O, ...). It is -1 for the lines that
	// [LineBuilder.EndInput] and [LineBuilder.Flush] return.
	End int
	// Unechoed reports a line the host did not display as it was typed,
	// such as a password at a prompt. Its text is withheld: a command log
	// must show that something was typed, not the secret.
	Unechoed bool
	// Truncated reports that the line outgrew [MaxLineBytes]: keys that
	// would have made it longer were dropped, while the host kept them.
	// Text is what the rebuilder still holds, which is not the line the
	// host runs (its start, unless the cursor moved back into it and more
	// was typed or edited there). With a Guard such a line is never
	// allowed: it comes back Denied with [TooLongRule] unless a rule
	// matched what is known of it.
	Truncated bool
	// Unsubmitted reports a line still being typed when the session ended
	// ([LineBuilder.Flush]): no key submitted it. On a terminal its keys
	// reached the host; without one they were held back and never sent.
	Unsubmitted bool
	// Denied reports a line the Guard refused: Text is the line, Rule the
	// rule that matched, and the key at End must not reach the host
	// ([LineBuilder.Forward] leaves it out).
	Denied bool
	Rule   string
}

// LineBuilder rebuilds the lines a shell receives from the bytes a client
// types, and watches the host's output to know when keys are not lines.
// The zero value is ready to use for a terminal (a session with a pty);
// [NewPipeLineBuilder] returns one for a shell that reads a pipe. Its
// methods are safe for concurrent use, so the two directions of a bridge
// may feed it from their own goroutines.
type LineBuilder struct {
	mu   sync.Mutex
	ed   editor
	in   keyParser
	scr  screen
	open bool // a line has started: its echo is being collected

	// startCol is the cursor's column on the screen when the line started
	// (where the prompt ended), if startOK; shown is what the screen
	// showed of the line when its submitting key came (see screen_row.go).
	startCol int
	startOK  bool
	shown    string
	lines    []Line // lines settled during the current call

	// Guard, when set, is asked about every line as it is submitted,
	// before the host could run it. A non-empty answer (the rule that
	// matched) denies the line: it comes back at once with Denied set,
	// the chunk is not read further, so nothing typed after it is taken
	// as typed, and [LineBuilder.Forward] does not send the submitting
	// key. Set it before the first call.
	Guard  func(text string) (rule string)
	denied bool // set when Guard denied; the chunk is not read further

	// cont holds, on a terminal, the lines submitted so far of a command
	// continued with a trailing backslash, without the backslashes: the
	// shell reads the next line as their continuation, and so does Guard.
	cont string
	// contCut reports that cont outgrew [MaxLineBytes] and lost its end:
	// the command it continues can no longer be checked whole.
	contCut bool

	// pending holds submitted lines, oldest first, whose echo was not seen
	// by the time Enter was typed: typeahead while a command runs, or a
	// paste with its newline. They are released in order once their echo
	// shows up, or as unechoed once it cannot any more.
	pending []pendingLine

	// What Forward sends instead of the chunk, collected while it is read.
	inject []int  // indexes of bytes after which pasteEnd is inserted
	clear  string // sent in place of a denied line's key

	pipe pipeState // the shell reads a pipe (NewPipeLineBuilder)
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

// TooLongRule is the rule a denied line carries when the Guard could not be
// asked about it whole: the line outgrew [MaxLineBytes] (keys were dropped,
// so what the host holds is unknown), or a command continued with trailing
// backslashes did. The guard fails closed: a line it cannot read is not
// sent.
const TooLongRule = "(line too long to check)"

// LostLine stands for a line recalled from the shell's history from before
// the session when the screen did not show it in a form that can be read.
const LostLine = "(a history line from before the session, not readable)"

// NewLineBuilder returns an empty LineBuilder for a terminal.
func NewLineBuilder() *LineBuilder { return new(LineBuilder) }

// Input feeds bytes the client sent to the host and returns the lines they
// submitted, in order, or nil. It is [LineBuilder.Forward] without the
// bytes to send.
func (b *LineBuilder) Input(p []byte) []Line {
	lines, _ := b.Forward(p)
	return lines
}

// Forward feeds bytes the client sent to the host and returns the lines
// they submitted, in order, and the bytes to send to the host in their
// place. Blank lines are not returned: the shell runs nothing for them.
// Keys typed while the alternate screen is on go to a full-screen program
// and make no lines. Escape sequences and runes may be split across calls.
//
// send is p itself unless the chunk must change on its way:
//   - a denied line: send stops before its submitting key and ends with
//     keys that make the host's line editor drop the line (on a terminal),
//     or holds only the lines before it (without one);
//   - a bracketed-paste start the host did not ask for (mode 2004 off): a
//     paste end is sent right after it, so that the host, too, reads what
//     follows as typed (readline takes ESC [200~ as a paste start whatever
//     the mode);
//   - without a terminal, the line in progress is held back until its LF.
//
// send may alias p; it is valid until the next call.
func (b *LineBuilder) Forward(p []byte) (lines []Line, send []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.inject, b.clear = b.inject[:0], ""
	if b.pipe.on {
		return b.forwardPipe(p)
	}
	stop, denied := len(p), false
	for i, c := range p {
		b.feed(c, i)
		if b.denied {
			b.denied, denied = false, true
			b.in = keyParser{}
			stop = i
			break
		}
	}
	return b.take(), b.rewrite(p, stop, denied)
}

// Output feeds bytes the host sent to the client. They tell which keys are
// not lines (the alternate screen), whether a line editor is reading
// (bracketed paste mode), and what the host echoed. Without a terminal
// output tells nothing, and is ignored.
//
// It returns lines submitted earlier whose echo this output settled.
func (b *LineBuilder) Output(p []byte) []Line {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pipe.on {
		return nil
	}
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

// EndInput is called when the client closes its input (EOF). Without a
// terminal the shell runs a last line that has no LF, so that line is
// submitted, asked of the Guard, and returned; send is what is still to be
// sent to the host before the EOF (nil if the line was denied). On a
// terminal an EOF submits nothing.
func (b *LineBuilder) EndInput() (lines []Line, send []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.pipe.on {
		return nil, nil
	}
	return b.endPipe()
}

// Flush ends the session: every line still waiting for its echo is settled
// as unechoed, and the line being typed, if any, is returned as
// Unsubmitted (its text withheld, on a terminal, unless the host echoed
// it). Call it when the session ends.
func (b *LineBuilder) Flush() []Line {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.pipe.on {
		return b.flushPipe()
	}
	for i := range b.pending {
		b.pending[i].settled = true
	}
	b.release()
	if !b.scr.alt && len(b.ed.buf) > 0 {
		text, truncated := b.ed.take()
		if !blank(text) {
			l := Line{Text: text, End: -1, Truncated: truncated, Unsubmitted: true}
			if !b.echoed(text) {
				l.Text, l.Unechoed = "", true
			}
			b.lines = append(b.lines, l)
		}
	}
	b.open = false
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
		_, b.startCol, b.startOK = b.scr.row()
	}
	return &b.ed
}

// readShown sets b.shown to the text the screen shows between the prompt
// and the cursor, or "" if the row is unknown or the line has not started.
func (b *LineBuilder) readShown() {
	b.shown = ""
	if !b.open || !b.startOK || b.pipe.on {
		return
	}
	if b.Guard == nil && !b.ed.lost && !b.ed.doubtful && !blank(string(b.ed.buf)) {
		return // only the Guard, or a line the keys do not know, needs it
	}
	row, col, ok := b.scr.row()
	if !ok {
		return
	}
	if b.ed.searching {
		// readline's incremental search shows the match on the row as
		// "(reverse-i-search)`rm': rm -rf /x", with the cursor on the
		// match: the line is the whole text after the prompt of the search.
		text := string(row)
		if k := strings.Index(text, "search)`"); k >= 0 {
			if m := strings.Index(text[k:], "': "); m >= 0 {
				b.shown = strings.TrimRight(text[k+m+3:], " ")
				return
			}
		}
	}
	if b.startCol > col || b.startCol > len(row) {
		return
	}
	b.shown = strings.TrimRight(string(row[b.startCol:min(col, len(row))]), " ")
}

// submit ends the line with the key whose last byte is p[end].
func (b *LineBuilder) submit(end int) {
	if b.scr.alt {
		return
	}
	b.readShown()
	defer func() { b.shown = "" }()
	lost, doubtful := b.ed.lost, b.ed.doubtful
	text, truncated := b.ed.take()
	b.open = false
	switch {
	case truncated:
		// Keys were dropped at the cap: the host holds more than text,
		// and no screen row shows a line this long. text stays what it
		// is; deny refuses it under a Guard, whatever it looks like.
	case doubtful && b.shown != "" && subsequence(text, b.shown):
		// A key not modelled (Tab completion, say) changed the line; the
		// screen shows everything typed, and more: it shows the line.
		text = b.shown
	case lost && b.shown != "":
		// A history line from before the session: the screen shows it.
		text = b.shown
	case lost:
		text = LostLine
	case blank(text):
		// Keys made no text, yet the screen shows a line: one the shell
		// filled in itself. It runs, so it is checked and logged.
		text = b.shown
	}
	if blank(text) && !truncated {
		// A truncated line is never skipped as blank: its known part may
		// be spaces, or killed (Ctrl-K from the start), while the host
		// still holds the keys that were dropped.
		return
	}
	if b.deny(text, end, truncated) {
		return
	}
	var cut bool
	b.cont, cut = continued(b.cont, text)
	b.contCut = b.cont != "" && (b.contCut || cut)
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

// deny asks the Guard about text, a line submitted by the key ending at
// p[end], and reports whether it was denied. Denied lines never reach the
// host, so they are neither in its history nor waiting for an echo: they
// go out at once (ahead of any earlier line still waiting for its echo).
//
// A truncated line, or one that continues a command whose start was cut,
// is denied with TooLongRule when no rule matched what is known of it: a
// rule asked about part of a line proves nothing about the rest (an
// unanchored rule, or text inserted at the start after the cap), and the
// Guard must fail closed. Without a Guard nothing is denied.
func (b *LineBuilder) deny(text string, end int, truncated bool) bool {
	rule := b.check(text)
	if rule == "" && b.Guard != nil && (truncated || b.contCut) {
		rule = TooLongRule
	}
	if rule == "" {
		return false
	}
	b.refuse(text, rule, end, truncated)
	return true
}

// refuse reports text denied by rule and drops it from the line editor.
func (b *LineBuilder) refuse(text, rule string, end int, truncated bool) {
	b.lines = append(b.lines, Line{Text: text, End: end, Truncated: truncated, Denied: true, Rule: rule})
	b.denied = true
	b.cont, b.contCut = "", false
	b.clear = clearLine
	if b.in.paste {
		// The host is inside a bracketed paste: end it first, or it would
		// take the keys that clear the line as pasted text.
		b.clear = pasteEnd + clearLine
	}
	b.ed.discard()
	b.open = false
}

// subsequence reports whether the runes of s appear in t in order.
func subsequence(s, t string) bool {
	for _, r := range s {
		k := strings.IndexRune(t, r)
		if k < 0 {
			return false
		}
		_, n := utf8.DecodeRuneInString(t[k:])
		t = t[k+n:]
	}
	return true
}

// blank reports a line the shell runs nothing for.
func blank(text string) bool { return strings.Trim(text, " \t\r\n") == "" }

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

// discard is Ctrl-C: the line is dropped and the next one starts afresh;
// so is a command being continued over several lines.
func (b *LineBuilder) discard() {
	if b.scr.alt {
		return
	}
	b.ed.discard()
	b.open = false
	b.cont, b.contCut = "", false
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
