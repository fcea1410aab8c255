package recorder

import "bytes"

// screenState is where the host→client parser is in an escape sequence.
type screenState uint8

const (
	scrGround    screenState = iota
	scrEsc                   // after ESC
	scrEscInter              // ESC and intermediates, e.g. ESC ( B
	scrCSI                   // ESC [ ...
	scrString                // OSC, DCS, SOS, PM or APC, until BEL or ST
	scrStringEsc             // ESC inside a string: ST if '\' follows
)

const (
	// maxEcho bounds the echo window; when it is exceeded the oldest half
	// is dropped. A line's echo is at its end, so only output that floods
	// the screen while a line is typed can push it out.
	maxEcho = 4 * MaxLineBytes
	// maxModeParams bounds the parameters of a mode-setting sequence.
	maxModeParams = 32
)

// screen follows what the host sends to the terminal, as far as the line
// rebuilder needs it: whether a full-screen program holds the alternate
// screen, whether the line editor asked for bracketed paste, and the
// printable text the host displayed.
type screen struct {
	state    screenState
	params   [maxModeParams]byte
	np       int
	overflow bool

	alt         bool // a full-screen program holds the keys: altScreen, and no line editor seen on it
	altScreen   bool // alternate screen (DEC modes 47, 1047, 1049)
	altPasteOns int  // bracketed paste turned on since the alternate screen was
	paste       bool // bracketed paste (DEC mode 2004)
	changes     int  // alternate screen switches seen

	echo  []byte // printable output while collecting
	fresh []byte // printable output collected by the current feed

	tail     []byte // output since the last LF (screen_row.go)
	tailLong bool   // the row outgrew maxTail: it is not read
	rr       rowReader
	rowRead  bool // rr holds the reading of tail
}

// feed parses p. When collect is set, the printable bytes of p go to the
// echo window: control characters and escape sequences do not, bytes of
// UTF-8 runes do.
func (s *screen) feed(p []byte, collect bool) {
	s.keepTail(p)
	for i := 0; i < len(p); {
		c := p[i]
		switch s.state {
		case scrGround:
			if !collect {
				// Fast path for bulk output: only escapes matter.
				k := bytes.IndexByte(p[i:], 0x1b)
				if k < 0 {
					return
				}
				i += k + 1
				s.state = scrEsc
				continue
			}
			j := i
			for j < len(p) && p[j] >= 0x20 && p[j] != 0x7f {
				j++
			}
			if j > i {
				s.collect(p[i:j])
				i = j
				continue
			}
			if c == 0x1b {
				s.state = scrEsc
			}
		case scrEsc:
			s.escape(c)
		case scrEscInter:
			switch {
			case c == 0x1b:
				s.state = scrEsc
			case c < 0x20 || c > 0x2f:
				s.state = scrGround
			}
		case scrCSI:
			s.csi(c)
		case scrString:
			k := bytes.IndexAny(p[i:], "\x07\x1b\x18\x1a")
			if k < 0 {
				return
			}
			i += k
			if p[i] == 0x1b {
				s.state = scrStringEsc
			} else {
				s.state = scrGround
			}
		case scrStringEsc:
			if c != '\\' {
				// Not ST: the string was cut short by a new escape.
				s.state = scrEsc
				continue
			}
			s.state = scrGround
		}
		i++
	}
}

func (s *screen) escape(c byte) {
	s.state = scrGround
	switch {
	case c == '[':
		s.state, s.np, s.overflow = scrCSI, 0, false
	case c == ']', c == 'P', c == 'X', c == '^', c == '_':
		s.state = scrString
	case c == 0x1b:
		s.state = scrEsc
	case c >= 0x20 && c <= 0x2f:
		s.state = scrEscInter
	case c == 'c':
		// RIS, full reset: main screen, no bracketed paste.
		s.setAlt(false)
		s.paste = false
	}
}

func (s *screen) csi(c byte) {
	switch {
	case c >= 0x20 && c <= 0x3f:
		if s.np < len(s.params) {
			s.params[s.np] = c
			s.np++
		} else {
			s.overflow = true
		}
	case c >= 0x40 && c <= 0x7e:
		s.state = scrGround
		if (c == 'h' || c == 'l') && !s.overflow && s.np > 0 && s.params[0] == '?' {
			s.setModes(s.params[1:s.np], c == 'h')
		}
	case c == 0x1b:
		s.state = scrEsc
	case c == 0x18, c == 0x1a, c > 0x7e:
		s.state = scrGround
	}
	// Other C0 controls inside a sequence are executed by terminals and do
	// not end it.
}

// setModes applies CSI ? Pm h (set) or l (reset), e.g. "1049;2004".
func (s *screen) setModes(params []byte, on bool) {
	for len(params) > 0 {
		field := params
		if k := bytes.IndexByte(params, ';'); k >= 0 {
			field, params = params[:k], params[k+1:]
		} else {
			params = nil
		}
		switch string(field) {
		case "47", "1047", "1049":
			s.setAlt(on)
		case "2004":
			if on && !s.paste && s.altScreen {
				s.altPasteOns++
			}
			s.paste = on
			s.setAlt(s.altScreen)
		}
	}
}

// setAlt sets the alternate screen mode. A line editor turns bracketed
// paste on at each prompt (bash, zsh, python's readline), a full-screen
// program once (vim) or never: the second time it is turned on while the
// alternate screen is, a line editor is reading there (a shell in tmux or
// screen, or one left on the alternate screen by printf '\e[?1049h'), and
// keys are lines again. Only the first line typed there escapes.
func (s *screen) setAlt(on bool) {
	if s.altScreen != on {
		s.altScreen = on
		s.altPasteOns = 0
		s.changes++
	}
	s.alt = s.altScreen && s.altPasteOns < 2
}

func (s *screen) collect(p []byte) {
	s.fresh = append(s.fresh, p...)
	if len(s.echo)+len(p) > maxEcho {
		keep := maxEcho / 2
		if len(p) >= keep {
			s.echo = append(s.echo[:0], p[len(p)-keep:]...)
			return
		}
		drop := len(s.echo) + len(p) - keep
		s.echo = append(s.echo[:0], s.echo[drop:]...)
	}
	s.echo = append(s.echo, p...)
}
