package recorder

import (
	"io"
	"strconv"
	"unicode/utf8"
)

// ViewFilter passes a host's terminal output to a viewer's terminal (warden
// play, ssh gw watch) without the sequences that act on the viewer's machine
// rather than on the picture: OSC 52 writes the viewer's clipboard, OSC 0/1/2
// set its window title, OSC 8 plants hyperlinks, OSC 7 and the rest of OSC,
// DCS (e.g. DECRQSS), SOS, PM and APC strings are all dropped whole; so are
// requests that make the terminal answer into the viewer's keyboard input
// (ENQ, DA, DSR, DECRQM, window reports such as CSI 21 t), mouse and focus
// reporting, and keyboard modes. The host chose these bytes, and an auditor
// replaying a session must not run them.
//
// What is kept is an allow-list of what draws the screen: printable text,
// BEL, BS, HT, LF, VT, FF, CR, SO, SI; CSI cursor movement, erase, insert and
// delete, scrolling, SGR colours, tab stops, cursor style, insert mode and
// the DEC private modes of cursor visibility, wrap, origin, reverse video and
// the alternate screen (?5, ?6, ?7, ?12, ?25, ?47, ?1047, ?1048, ?1049); and
// the ESC sequences for saving the cursor, index, reverse index, keypad
// modes, reset and character sets. C1 controls, as raw bytes or as the
// runes U+0080 to U+009F, are read as their ESC forms (so 0x9d starts an
// OSC that is dropped) and never written; bytes that are not UTF-8 become
// U+FFFD.
//
// It is a streaming filter: a sequence split across writes is recognised as
// a whole, and memory is bounded. A CSI longer than maxCSI bytes is dropped;
// a string (OSC, DCS, ...) is dropped without being buffered, and one that
// runs past maxString bytes without its terminator is abandoned, the rest of
// it shown as text, so that an unterminated OSC cannot hide the remainder
// of a session from the auditor. A ViewFilter is not safe for concurrent use.
type ViewFilter struct {
	w     io.Writer
	state filterState
	held  heldRune // an incomplete UTF-8 sequence from the previous write
	seq   []byte   // the CSI or ESC sequence being read, without ESC [
	n     int      // bytes of the current string, towards maxString
	osc   bool     // the string is an OSC, which BEL also ends
	out   []byte
}

type filterState uint8

const (
	stGround    filterState = iota
	stEsc                   // after ESC
	stEscInter              // ESC and intermediates (0x20-0x2f)
	stCSI                   // reading a CSI
	stCSIIgnore             // a CSI too long to keep: dropped up to its final byte
	stString                // inside OSC, DCS, SOS, PM or APC: dropped
	stStringEsc             // ESC inside a string: ST if a '\' follows
)

const (
	maxCSI    = 64
	maxString = 4096
)

// NewViewFilter returns a filter writing to w.
func NewViewFilter(w io.Writer) *ViewFilter {
	return &ViewFilter{w: w, seq: make([]byte, 0, maxCSI)}
}

// Write filters p and writes what is kept to the underlying writer in one
// call. It reports len(p) on success: dropped bytes are consumed.
func (f *ViewFilter) Write(p []byte) (int, error) {
	f.out = f.out[:0]
	n := len(p)
	for f.held.n > 0 && len(p) > 0 {
		var t [utf8.UTFMax]byte
		k := copy(t[:], f.held.b[:f.held.n])
		m := copy(t[k:], p)
		if !utf8.FullRune(t[:k+m]) {
			f.held.n = copy(f.held.b[:], t[:k+m])
			p = nil
			break
		}
		r, size := utf8.DecodeRune(t[:k+m])
		if r == utf8.RuneError && size == 1 {
			// The held lead byte was not followed by what it promised.
			f.rune(rune(f.held.b[0]), true, f.held.b[:1])
			f.held.n = copy(f.held.b[:], f.held.b[1:f.held.n])
			continue
		}
		f.rune(r, false, t[:size])
		p = p[size-k:]
		f.held.n = 0
	}
	for i := 0; i < len(p); {
		c := p[i]
		if c < utf8.RuneSelf {
			f.rune(rune(c), false, p[i:i+1])
			i++
			continue
		}
		r, size := utf8.DecodeRune(p[i:])
		if r == utf8.RuneError && size == 1 {
			if !utf8.FullRune(p[i:]) {
				f.held.n = copy(f.held.b[:], p[i:])
				break
			}
			f.rune(rune(c), true, p[i:i+1])
			i++
			continue
		}
		f.rune(r, false, p[i:i+size])
		i += size
	}
	if len(f.out) > 0 {
		if _, err := f.w.Write(f.out); err != nil {
			return 0, err
		}
	}
	return n, nil
}

// rune advances the state machine by one rune. invalid marks a byte that is
// not UTF-8 (r is then the byte's value); raw is the rune's encoding.
func (f *ViewFilter) rune(r rune, invalid bool, raw []byte) {
	if r >= 0x80 && r <= 0x9f {
		// A C1 control, raw or encoded: read as ESC plus its 7-bit form,
		// so that terminals which honour either see neither.
		f.rune(0x1b, false, nil)
		f.rune(r-0x40, false, []byte{byte(r - 0x40)})
		return
	}
	if invalid {
		r, raw = utf8.RuneError, []byte(replacement)
	}
	switch f.state {
	case stString:
		f.inString(r)
		return
	case stStringEsc:
		if r == '\\' {
			f.state = stGround // ST: the string ends, dropped
			return
		}
		// ESC ends the string and starts a new sequence, as in VT parsers.
		f.state = stEsc
	}
	if r < 0x20 || r == 0x7f {
		f.control(byte(r))
		return
	}
	switch f.state {
	case stGround:
		f.out = append(f.out, raw...)
	case stEsc, stEscInter:
		f.escape(r)
	case stCSI, stCSIIgnore:
		f.csi(r)
	}
}

// control handles a C0 control or DEL in any state but a string.
func (f *ViewFilter) control(c byte) {
	switch c {
	case 0x1b:
		f.state, f.seq = stEsc, f.seq[:0]
	case 0x18, 0x1a: // CAN, SUB abort a sequence
		f.state = stGround
	case 0x07, 0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0x0f:
		// Executed even inside a sequence, as terminals do.
		f.out = append(f.out, c)
	}
	// Everything else (NUL, ENQ and its answerback, DEL, ...) is dropped.
}

// escape reads the rune after ESC or its intermediates.
func (f *ViewFilter) escape(r rune) {
	if r > 0x7e {
		f.state = stGround // not a sequence: drop the ESC, show the rune
		f.rune(r, false, utf8.AppendRune(nil, r))
		return
	}
	c := byte(r)
	if f.state == stEsc {
		switch c {
		case '[':
			f.state, f.seq = stCSI, f.seq[:0]
			return
		case ']', 'P', 'X', '^', '_':
			f.state, f.n, f.osc = stString, 0, c == ']'
			return
		}
	}
	if c >= 0x20 && c <= 0x2f {
		if len(f.seq) < 4 {
			f.seq = append(f.seq, c)
		}
		f.state = stEscInter
		return
	}
	f.state = stGround
	if escAllowed(f.seq, c) {
		f.out = append(f.out, 0x1b)
		f.out = append(f.out, f.seq...)
		f.out = append(f.out, c)
	}
}

// escAllowed is the allow-list of ESC sequences (intermediates, final).
func escAllowed(inter []byte, final byte) bool {
	switch len(inter) {
	case 0:
		switch final {
		case '7', '8', '=', '>', 'D', 'E', 'H', 'M', 'c':
			return true
		}
	case 1:
		switch inter[0] {
		case '(', ')', '*', '+', '-', '.', '/': // designate a character set
			return final >= 0x30
		case '#':
			return final >= '3' && final <= '8' && final != '7'
		}
	}
	return false
}

// csi reads one rune of a CSI sequence.
func (f *ViewFilter) csi(r rune) {
	if r > 0x7e {
		f.state = stGround // malformed: drop what was read, show the rune
		f.rune(r, false, utf8.AppendRune(nil, r))
		return
	}
	c := byte(r)
	if c >= 0x40 { // the final byte
		if f.state == stCSI && csiAllowed(f.seq, c) {
			f.out = append(f.out, 0x1b, '[')
			f.out = append(f.out, f.seq...)
			f.out = append(f.out, c)
		}
		f.state = stGround
		return
	}
	if f.state == stCSIIgnore {
		return
	}
	if len(f.seq) >= maxCSI {
		f.state = stCSIIgnore
		return
	}
	f.seq = append(f.seq, c)
}

// csiAllowed is the allow-list of CSI sequences: seq holds the parameter
// and intermediate bytes, final the final byte.
func csiAllowed(seq []byte, final byte) bool {
	var private byte
	if len(seq) > 0 && seq[0] >= '<' && seq[0] <= '?' {
		private, seq = seq[0], seq[1:]
	}
	i := 0
	for i < len(seq) && seq[i] >= 0x30 && seq[i] <= 0x3b { // digits, ':' and ';'
		i++
	}
	params, inter := seq[:i], seq[i:]
	for _, c := range inter {
		if c < 0x20 || c > 0x2f {
			return false // a parameter byte after an intermediate, or a misplaced '<=>?'
		}
	}
	if len(inter) > 0 {
		// DECSCUSR, the cursor's shape, is the one sequence with an
		// intermediate that only draws.
		return private == 0 && string(inter) == " " && final == 'q'
	}
	switch private {
	case 0:
		switch final {
		case 'A', 'B', 'C', 'D', 'E', 'F', 'G', 'H', 'I', 'J', 'K', 'L', 'M', 'P', 'S', 'T', 'X', 'Z',
			'@', '`', 'a', 'b', 'd', 'e', 'f', 'g', 'm', 'r', 's', 'u':
			return true
		case 'h', 'l':
			return modesAllowed(params, ansiModes)
		}
	case '?':
		switch final {
		case 'J', 'K':
			return true
		case 'h', 'l':
			return modesAllowed(params, decModes)
		}
	}
	return false
}

var (
	ansiModes = map[int]bool{4: true}
	decModes  = map[int]bool{5: true, 6: true, 7: true, 12: true, 25: true, 47: true, 1047: true, 1048: true, 1049: true}
)

// modesAllowed reports whether every ';'-separated mode in params is in set.
func modesAllowed(params []byte, set map[int]bool) bool {
	start := 0
	for i := 0; i <= len(params); i++ {
		if i < len(params) && params[i] != ';' {
			continue
		}
		n, err := strconv.Atoi(string(params[start:i]))
		if err != nil || !set[n] {
			return false
		}
		start = i + 1
	}
	return true
}

// inString drops one rune of an OSC, DCS, SOS, PM or APC string and watches
// for its end.
func (f *ViewFilter) inString(r rune) {
	switch {
	case r == 0x1b:
		f.state = stStringEsc
		return
	case r == 0x07 && f.osc, r == 0x18, r == 0x1a:
		f.state = stGround // BEL ends an OSC (xterm); CAN and SUB abort
		return
	}
	f.n += utf8.RuneLen(r)
	if f.n > maxString {
		// Too long to be anything but an attempt to hide what follows:
		// give up on it and show the rest as text.
		f.state = stGround
	}
}
