package recorder

import (
	"slices"
	"unicode"
	"unicode/utf8"
)

// MaxLineBytes caps a rebuilt line, in UTF-8 bytes; what is typed beyond it
// is dropped and the line is marked [Line.Truncated]. The cap bounds the
// memory and the editing work one session can cost the gateway. The host
// keeps the dropped keys, so from then on the line is unknown: under a
// Guard it is denied when it is submitted ([TooLongRule]).
const MaxLineBytes = 64 << 10

const (
	// maxHistory and maxHistoryBytes bound the session's own history, which
	// Up and Down recall, like bash's default HISTSIZE.
	maxHistory      = 500
	maxHistoryBytes = 1 << 20
)

// editor is the line being edited, in the way readline's emacs mode edits
// it. The line is kept as UTF-8 with the cursor as a byte offset that is
// always on a rune boundary; every edit keeps the line valid UTF-8.
type editor struct {
	buf       []byte
	cur       int
	truncated bool
	killed    []byte // last killed text, for Ctrl-Y

	hist      []string // lines submitted in this session, oldest first
	histBytes int
	hpos      int    // index in hist of the line shown; len(hist) for a new line; < 0 before the session
	lost      bool   // the line came from history before the session: keys do not know it
	searching bool   // an incremental history search (Ctrl-R, Ctrl-S) is shown
	doubtful  bool   // a key this model does not follow (Tab, ...) may have changed the line
	draft     []byte // the new line, while a history line is shown
}

// insert inserts p, valid UTF-8, at the cursor, as much of it as the cap
// allows.
func (e *editor) insert(p []byte) {
	if room := MaxLineBytes - len(e.buf); len(p) > room {
		for room > 0 && !utf8.RuneStart(p[room]) {
			room--
		}
		p = p[:room]
		e.truncated = true
	}
	e.buf = slices.Insert(e.buf, e.cur, p...)
	e.cur += len(p)
}

func (e *editor) insertRune(r rune) {
	var enc [utf8.UTFMax]byte
	e.insert(enc[:utf8.EncodeRune(enc[:], r)])
}

// runeBefore and runeAfter return the rune around the cursor position i and
// its size, or 0, 0 at the line's ends.
func (e *editor) runeBefore(i int) (rune, int) {
	if i == 0 {
		return 0, 0
	}
	return utf8.DecodeLastRune(e.buf[:i])
}

func (e *editor) runeAfter(i int) (rune, int) {
	if i == len(e.buf) {
		return 0, 0
	}
	return utf8.DecodeRune(e.buf[i:])
}

func (e *editor) left() {
	_, n := e.runeBefore(e.cur)
	e.cur -= n
}

func (e *editor) right() {
	_, n := e.runeAfter(e.cur)
	e.cur += n
}

func (e *editor) home() { e.cur = 0 }
func (e *editor) end()  { e.cur = len(e.buf) }

func (e *editor) backspace() {
	_, n := e.runeBefore(e.cur)
	e.buf = slices.Delete(e.buf, e.cur-n, e.cur)
	e.cur -= n
}

func (e *editor) deleteChar() {
	_, n := e.runeAfter(e.cur)
	e.buf = slices.Delete(e.buf, e.cur, e.cur+n)
}

// transpose is Ctrl-T, readline's transpose-chars: the rune before the
// cursor moves over the rune at the cursor, and the cursor follows; at the
// end of the line the last two runes swap.
func (e *editor) transpose() {
	if e.cur == len(e.buf) {
		_, n := e.runeBefore(e.cur)
		if n == e.cur {
			return // fewer than two runes before the cursor
		}
		e.cur -= n
	}
	_, n1 := e.runeBefore(e.cur)
	_, n2 := e.runeAfter(e.cur)
	if n1 == 0 || n2 == 0 {
		return
	}
	from := e.cur - n1
	swapped := append(append(make([]byte, 0, n1+n2), e.buf[e.cur:e.cur+n2]...), e.buf[from:e.cur]...)
	copy(e.buf[from:], swapped)
	e.cur = from + n1 + n2
}

// search is Ctrl-R or Ctrl-S, readline's incremental history search: what
// is typed next is the search string, and the line becomes whatever
// history line matches, which only the screen shows. The line is lost to
// the keys until it is submitted or dropped; its place in the history is
// unknown, so Down does not bring a known line back either.
func (e *editor) search() {
	e.searching, e.lost = true, true
	e.hpos = -maxHistory
}

// caseWord is Alt-u, Alt-l and Alt-c: the next word (from the cursor)
// in upper case, lower case, or capitalised; the cursor goes past it.
func (e *editor) caseWord(f func(r rune, first bool) rune) {
	end := e.wordEnd()
	out := make([]byte, 0, end-e.cur)
	first := true
	for _, r := range string(e.buf[e.cur:end]) {
		if isWordRune(r) {
			r = f(r, first)
			first = false
		}
		out = utf8.AppendRune(out, r)
	}
	e.buf = slices.Replace(e.buf, e.cur, end, out...)
	e.cur += len(out)
}

func (e *editor) upcaseWord() {
	e.caseWord(func(r rune, _ bool) rune { return unicode.ToUpper(r) })
}

func (e *editor) downcaseWord() {
	e.caseWord(func(r rune, _ bool) rune { return unicode.ToLower(r) })
}

func (e *editor) capitalizeWord() {
	e.caseWord(func(r rune, first bool) rune {
		if first {
			return unicode.ToUpper(r)
		}
		return unicode.ToLower(r)
	})
}

// doubt notes a key whose effect on the line is not modelled.
func (e *editor) doubt() { e.doubtful = true }

// kill removes buf[from:to] into the kill buffer and leaves the cursor at
// from.
func (e *editor) kill(from, to int) {
	if from == to {
		return
	}
	e.killed = append(e.killed[:0], e.buf[from:to]...)
	e.buf = slices.Delete(e.buf, from, to)
	e.cur = from
}

func (e *editor) killToStart() { e.kill(0, e.cur) }
func (e *editor) killToEnd()   { e.kill(e.cur, len(e.buf)) }
func (e *editor) yank()        { e.insert(e.killed) }

// unixWordRubout is Ctrl-W: it kills back to the start of the previous
// whitespace-delimited word, as readline's unix-word-rubout does. Blanks
// are ASCII, so scanning bytes is rune-safe.
func (e *editor) unixWordRubout() {
	i := e.cur
	for i > 0 && isBlank(e.buf[i-1]) {
		i--
	}
	for i > 0 && !isBlank(e.buf[i-1]) {
		i--
	}
	e.kill(i, e.cur)
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' }

// isWordRune is readline's notion of a word character for Alt-b, Alt-f,
// Alt-d and Alt-Backspace: letters and digits.
func isWordRune(r rune) bool { return unicode.IsLetter(r) || unicode.IsDigit(r) }

// wordStart is where Alt-b moves: back over non-word runes, then over word
// runes.
func (e *editor) wordStart() int {
	i := e.cur
	for r, n := e.runeBefore(i); n > 0 && !isWordRune(r); r, n = e.runeBefore(i) {
		i -= n
	}
	for r, n := e.runeBefore(i); n > 0 && isWordRune(r); r, n = e.runeBefore(i) {
		i -= n
	}
	return i
}

// wordEnd is where Alt-f moves: forward over non-word runes, then over word
// runes.
func (e *editor) wordEnd() int {
	i := e.cur
	for r, n := e.runeAfter(i); n > 0 && !isWordRune(r); r, n = e.runeAfter(i) {
		i += n
	}
	for r, n := e.runeAfter(i); n > 0 && isWordRune(r); r, n = e.runeAfter(i) {
		i += n
	}
	return i
}

func (e *editor) wordLeft()      { e.cur = e.wordStart() }
func (e *editor) wordRight()     { e.cur = e.wordEnd() }
func (e *editor) killWordBack()  { e.kill(e.wordStart(), e.cur) }
func (e *editor) killWordAhead() { e.kill(e.cur, e.wordEnd()) }

// histPrev is Up: show the previous line of the session's history; at the
// oldest line it stays.
//
// Above the session's oldest line the shell shows lines from its history
// file, which no key typed: the line is lost to the keys (only the screen
// shows it), until Down comes back to the session's lines.
func (e *editor) histPrev() {
	e.searching = false
	if e.hpos <= 0 {
		if e.hpos > -maxHistory {
			e.leave()
			e.hpos--
			e.show(nil)
			e.lost = true
		}
		return
	}
	e.leave()
	e.hpos--
	e.show([]byte(e.hist[e.hpos]))
}

// histNext is Down: show the next line; past the newest, the line that was
// being edited before Up.
func (e *editor) histNext() {
	if e.hpos >= len(e.hist) {
		return
	}
	e.leave()
	e.hpos++
	switch {
	case e.hpos < 0:
		e.show(nil) // still before the session
		return
	case e.hpos == len(e.hist):
		e.show(e.draft)
		e.searching = false
	default:
		e.show([]byte(e.hist[e.hpos]))
	}
	e.lost = false
}

// leave keeps the line shown before history moves away from it: the draft,
// or the edited history line, which readline keeps edited by default.
func (e *editor) leave() {
	if e.hpos == len(e.hist) {
		e.draft = append(e.draft[:0], e.buf...)
		return
	}
	if e.hpos < 0 {
		return // a line this model does not know
	}
	if s := string(e.buf); s != e.hist[e.hpos] {
		e.histBytes += len(s) - len(e.hist[e.hpos])
		e.hist[e.hpos] = s
	}
}

// show replaces the line with p, cursor at the end, as readline does.
func (e *editor) show(p []byte) {
	e.buf = append(e.buf[:0], p...)
	e.cur = len(e.buf)
}

// take ends the line and returns it.
func (e *editor) take() (text string, truncated bool) {
	text, truncated = string(e.buf), e.truncated
	e.discard()
	return text, truncated
}

// discard forgets the line being edited, as Ctrl-C does.
func (e *editor) discard() {
	e.lost, e.searching, e.doubtful = false, false, false
	e.buf = e.buf[:0]
	e.cur = 0
	e.truncated = false
	e.draft = e.draft[:0]
	e.hpos = len(e.hist)
}

// remember adds a submitted line to the history, dropping the oldest lines
// beyond the bounds.
func (e *editor) remember(s string) {
	e.hist = append(e.hist, s)
	e.histBytes += len(s)
	for len(e.hist) > maxHistory || e.histBytes > maxHistoryBytes {
		e.histBytes -= len(e.hist[0])
		e.hist[0] = ""
		e.hist = e.hist[1:]
	}
	e.hpos = len(e.hist)
}
