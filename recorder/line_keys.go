package recorder

import (
	"strings"
	"unicode/utf8"
)

// keyState is where the client→host parser is in a key sequence.
type keyState uint8

const (
	keyGround keyState = iota
	keyEsc             // after ESC: Alt-key, CSI or SS3 follows
	keyCSI             // ESC [ ...
	keySS3             // ESC O
)

// pasteEnd ends a bracketed paste.
const pasteEnd = "\x1b[201~"

// maxKeyParams bounds the parameters of a key sequence; longer ones are no
// key this parser knows and are skipped whole.
const maxKeyParams = 16

// keyParser holds the state of the client→host parser between chunks.
type keyParser struct {
	state    keyState
	params   [maxKeyParams]byte
	np       int
	overflow bool

	afterCR bool // the previous byte was a submitting CR: an LF now is its pair
	quote   bool // after Ctrl-V: the next byte is inserted as it is

	paste      bool // inside ESC [200~ ... ESC [201~
	pasteMatch int  // bytes of pasteEnd matched so far

	rune  [utf8.UTFMax]byte // a multi-byte rune being read
	nrune int
}

// feed handles p[i] = c.
func (b *LineBuilder) feed(c byte, i int) {
	k := &b.in
	wasCR := k.afterCR
	k.afterCR = false
	if k.paste {
		b.pasteByte(c, i, wasCR)
		return
	}
	if k.quote && k.state == keyGround {
		// Ctrl-V (readline's quoted-insert, the tty driver's lnext): a
		// control key after it is text, so Ctrl-V Enter does not submit.
		k.quote = false
		if c < utf8.RuneSelf {
			b.text(rune(c), true)
			return
		}
	}
	switch k.state {
	case keyGround:
		b.ground(c, i, wasCR)
	case keyEsc:
		b.altKey(c, i)
	case keyCSI:
		b.csiByte(c, i)
	case keySS3:
		k.state = keyGround
		b.ss3(c)
	}
}

// ground handles a byte outside any sequence: text, control keys, and the
// ESC that starts a sequence.
func (b *LineBuilder) ground(c byte, i int, wasCR bool) {
	if b.utf8Byte(c, false) {
		return
	}
	switch c {
	case '\r':
		b.in.afterCR = true
		b.submit(i)
	case '\n':
		if !wasCR { // CRLF is one Enter
			b.submit(i)
		}
	case 0x1b:
		b.in.state = keyEsc
	case 0x03: // Ctrl-C
		b.discard()
	case 0x04: // Ctrl-D: end of input on an empty line, else delete-char
		if len(b.ed.buf) > 0 && !b.scr.alt {
			b.ctrlD(i)
		}
	case 0x0f: // Ctrl-O: bash's operate-and-get-next, zsh's accept-line-and-down-history
		b.operateAndGetNext(i)
	case 0x16: // Ctrl-V: quoted-insert
		b.in.quote = true
	case 0x14: // Ctrl-T
		b.key((*editor).transpose)
	case 0x12, 0x13: // Ctrl-R, Ctrl-S
		b.key((*editor).search)
	case 0x7f, 0x08: // Backspace, Ctrl-H
		b.key((*editor).backspace)
	case 0x01: // Ctrl-A
		b.key((*editor).home)
	case 0x05: // Ctrl-E
		b.key((*editor).end)
	case 0x02: // Ctrl-B
		b.key((*editor).left)
	case 0x06: // Ctrl-F
		b.key((*editor).right)
	case 0x0b: // Ctrl-K
		b.key((*editor).killToEnd)
	case 0x15: // Ctrl-U
		b.key((*editor).killToStart)
	case 0x17: // Ctrl-W
		b.key((*editor).unixWordRubout)
	case 0x19: // Ctrl-Y
		b.key((*editor).yank)
	case 0x10: // Ctrl-P
		b.key((*editor).histPrev)
	case 0x0e: // Ctrl-N
		b.key((*editor).histNext)
	default:
		// Tab completes on the host; the completion shows only on the
		// screen, so it inserts nothing here. Other controls are commands
		// this model does not follow. Either way the screen may know the
		// line better than the keys.
		if c >= 0x20 {
			b.text(rune(c), false)
		} else {
			b.key((*editor).doubt)
		}
	}
}

// key applies an editing command unless a full-screen program has the keys.
func (b *LineBuilder) key(f func(*editor)) {
	if e := b.edit(); e != nil {
		f(e)
	}
}

// text inserts a rune that was typed, or pasted when literal is set: a
// bracketed paste inserts control characters as they are, typing does not.
//
// NUL is never text: bash and dash drop NUL bytes from what they read, so
// "r\x00m" is "rm" to them, and must be to the Guard.
func (b *LineBuilder) text(r rune, literal bool) {
	if r == 0 || !literal && !printable(r) && r != utf8.RuneError {
		return
	}
	if e := b.edit(); e != nil {
		e.insertRune(r)
	}
}

// utf8Byte collects the bytes of a multi-byte rune and reports whether c
// was one of them. A byte that breaks off a rune ends it as U+FFFD and is
// then handled on its own.
func (b *LineBuilder) utf8Byte(c byte, literal bool) bool {
	k := &b.in
	if k.nrune > 0 {
		if c&0xc0 == 0x80 {
			k.rune[k.nrune] = c
			k.nrune++
			if utf8.FullRune(k.rune[:k.nrune]) {
				r, _ := utf8.DecodeRune(k.rune[:k.nrune])
				k.nrune = 0
				b.text(r, literal)
			}
			return true
		}
		k.nrune = 0
		b.text(utf8.RuneError, literal)
	}
	switch {
	case c < utf8.RuneSelf:
		return false
	case c >= 0xc2 && c <= 0xf4:
		k.rune[0] = c
		k.nrune = 1
	default:
		b.text(utf8.RuneError, literal)
	}
	return true
}

// altKey handles the byte after ESC.
func (b *LineBuilder) altKey(c byte, i int) {
	k := &b.in
	k.state = keyGround
	switch c {
	case '[':
		k.state, k.np, k.overflow = keyCSI, 0, false
	case 'O':
		k.state = keySS3
	case 0x1b:
		// ESC ESC: a meta-prefixed key follows; treat it as one ESC.
		k.state = keyEsc
	case 'b', 'B':
		b.key((*editor).wordLeft)
	case 'f', 'F':
		b.key((*editor).wordRight)
	case 'd', 'D':
		b.key((*editor).killWordAhead)
	case 0x7f, 0x08:
		b.key((*editor).killWordBack)
	case '\r', '\n':
		// Alt-Enter runs nothing: zsh inserts a newline (self-insert-unmeta),
		// bash switches to vi mode (M-C-m, M-C-j), which this model does
		// not follow. The newline stands for both; the Guard also reads the
		// line without it.
		b.text('\n', true)
	case 'u', 'U':
		b.key((*editor).upcaseWord)
	case 'l', 'L':
		b.key((*editor).downcaseWord)
	case 'c', 'C':
		b.key((*editor).capitalizeWord)
	case '#':
		// readline's insert-comment: the line is accepted commented out,
		// or, after a numeric argument (Alt-1 Alt-#), with its leading #
		// removed, which runs "#rm -rf /" as "rm -rf /".
		b.insertComment(i)
	case 'a', 'A':
		// zsh's accept-and-hold: run the line and keep it for editing.
		// (Unbound in bash, where it runs nothing: the line is then logged
		// once more than it ran, and checked early.)
		b.acceptAndHold(i)
	default:
		if c >= utf8.RuneSelf {
			// Meta with a non-ASCII key: not a readline command; let the
			// rune through rather than cut it.
			b.ground(c, i, false)
		}
		// Other Alt-keys (readline commands this model does not follow)
		// insert nothing, and may have changed the line.
		b.key((*editor).doubt)
	}
}

// csiByte handles a byte of ESC [ params intermediates final.
func (b *LineBuilder) csiByte(c byte, i int) {
	k := &b.in
	switch {
	case c >= 0x20 && c <= 0x3f:
		if k.np < len(k.params) {
			k.params[k.np] = c
			k.np++
		} else {
			k.overflow = true
		}
	case c >= 0x40 && c <= 0x7e:
		k.state = keyGround
		if !k.overflow {
			b.csi(string(k.params[:k.np]), c, i)
		}
	case c == 0x1b:
		k.state = keyEsc
	case c == 0x18, c == 0x1a: // CAN, SUB cancel a sequence
		k.state = keyGround
	case c >= 0x80:
		k.state = keyGround
		b.ground(c, i, false)
	}
	// Other controls inside a sequence are ignored, as terminals do.
}

// csi applies a complete CSI key sequence ending at p[i]; unknown ones do
// nothing.
func (b *LineBuilder) csi(params string, final byte, i int) {
	plain := params == "" || params == "1"
	// Ctrl- or Alt-arrows move by word in the usual /etc/inputrc.
	word := params == "1;5" || params == "1;3" || params == "5" || params == "3"
	switch {
	case final == 'A' && plain:
		b.key((*editor).histPrev)
	case final == 'B' && plain:
		b.key((*editor).histNext)
	case final == 'C' && plain:
		b.key((*editor).right)
	case final == 'D' && plain:
		b.key((*editor).left)
	case final == 'C' && word:
		b.key((*editor).wordRight)
	case final == 'D' && word:
		b.key((*editor).wordLeft)
	case final == 'H' && plain:
		b.key((*editor).home)
	case final == 'F' && plain:
		b.key((*editor).end)
	case final == '~':
		switch params {
		case "1", "7":
			b.key((*editor).home)
		case "4", "8":
			b.key((*editor).end)
		case "3":
			b.key((*editor).deleteChar)
		case "200":
			b.pasteStart(i)
		}
	}
}

// ss3 applies ESC O final, the application-mode cursor keys.
func (b *LineBuilder) ss3(c byte) {
	switch c {
	case 'A':
		b.key((*editor).histPrev)
	case 'B':
		b.key((*editor).histNext)
	case 'C':
		b.key((*editor).right)
	case 'D':
		b.key((*editor).left)
	case 'H':
		b.key((*editor).home)
	case 'F':
		b.key((*editor).end)
	}
}

// pasteByte handles a byte inside a bracketed paste: everything is text
// until ESC [201~. Readline inserts it as it is, with a CR or CRLF read as
// a newline, so a pasted newline stays in the line until Enter.
func (b *LineBuilder) pasteByte(c byte, i int, wasCR bool) {
	k := &b.in
	if c == pasteEnd[k.pasteMatch] {
		k.pasteMatch++
		if k.pasteMatch == len(pasteEnd) {
			k.paste, k.pasteMatch = false, 0
		}
		return
	}
	if k.pasteMatch > 0 {
		// A false start of the terminator was pasted text after all.
		matched := k.pasteMatch
		k.pasteMatch = 0
		for j := 0; j < matched; j++ {
			b.pasteText(pasteEnd[j], i, false)
		}
		wasCR = false
		if c == pasteEnd[0] {
			k.pasteMatch = 1
			return
		}
	}
	b.pasteText(c, i, wasCR)
}

func (b *LineBuilder) pasteText(c byte, i int, wasCR bool) {
	if b.utf8Byte(c, true) {
		return
	}
	switch c {
	case '\r':
		b.in.afterCR = true
		b.text('\n', true)
		b.checkPasted(i)
	case '\n':
		if !wasCR {
			b.text('\n', true)
			b.checkPasted(i)
		}
	default:
		b.text(rune(c), true)
	}
}

// pasteStart handles ESC [200~, whose last byte is p[i]. A paste is only
// a paste if the host asked for bracketed paste (mode 2004): a real
// terminal sends the brackets only then. Otherwise the sequence is an
// ordinary, unbound key here, and pasteEnd is sent to the host right after
// it: bash's readline takes ESC [200~ as a paste start even with the mode
// off, and would then keep every newline typed after it in the line,
// while the tty driver under sh runs each line. The paste end makes every
// reader see what follows as typed, as this model does.
func (b *LineBuilder) pasteStart(i int) {
	if b.scr.alt {
		return
	}
	if b.scr.paste {
		b.in.paste, b.in.pasteMatch = true, 0
		return
	}
	b.inject = append(b.inject, i)
}

// ctrlD handles Ctrl-D, at p[i], on a non-empty line. readline deletes the
// character under the cursor. The tty driver in canonical mode (sh, dash,
// any program reading the terminal plainly) hands the line to the reader
// without a newline, and a shell that then reads end of input runs it:
// "rm -rf /" Ctrl-D Ctrl-D runs with no Enter. While the host has not
// turned on bracketed paste no line editor is known to be reading, so the
// Guard is asked now; the line stays open and is logged when it ends.
func (b *LineBuilder) ctrlD(i int) {
	b.readShown()
	denied := !b.scr.paste && b.deny(string(b.ed.buf), i, b.ed.truncated)
	b.shown = ""
	if denied {
		return
	}
	b.edit().deleteChar()
}

// operateAndGetNext is Ctrl-O, at p[i]: the line is submitted as by Enter,
// and the history line after the one submitted is shown for editing.
func (b *LineBuilder) operateAndGetNext(i int) {
	if b.scr.alt {
		return
	}
	next, newest := b.ed.hpos+1, b.ed.hpos == len(b.ed.hist)-1
	text := string(b.ed.buf)
	b.submit(i)
	if b.denied {
		return
	}
	switch {
	case next < 0:
		// Still before the session: a line only the screen shows.
		b.edit().show(nil)
		b.ed.hpos, b.ed.lost = next, true
	case next < len(b.ed.hist) && !newest:
		b.edit().show([]byte(b.ed.hist[next]))
		b.ed.hpos = next
	case newest:
		// The newest history line: the next is the copy just added.
		b.edit().show([]byte(text))
	}
}

// insertComment is Alt-#, at p[i]: the line is submitted, and the Guard
// is also asked about it without a leading #.
func (b *LineBuilder) insertComment(i int) {
	if b.scr.alt {
		return
	}
	if text := string(b.ed.buf); strings.HasPrefix(text, "#") {
		b.readShown()
		rule := b.check(text[1:])
		b.shown = ""
		if rule != "" {
			b.refuse(text, rule, i, b.ed.truncated)
			return
		}
	}
	b.submit(i)
}

// acceptAndHold submits the line at p[i] and keeps its text for editing.
func (b *LineBuilder) acceptAndHold(i int) {
	if b.scr.alt {
		return
	}
	text := string(b.ed.buf)
	b.submit(i)
	if !b.denied {
		b.edit().show([]byte(text))
	}
}
