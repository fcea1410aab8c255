package audit

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"unicode/utf8"

	"github.com/warden-gw/warden/recorder"
)

// MaxOutputText caps the screen text indexed per session: 8 MiB. Text past
// it is not indexed (session_output_index.truncated says so); the
// recording itself is unaffected, and the player still shows it all.
const MaxOutputText = 8 << 20

// maxIndexCastLine bounds one line of a cast read for indexing, as the
// player bounds it, so a corrupt file cannot make the indexer buffer
// without limit.
const maxIndexCastLine = 16 << 20

// maxScreenLine bounds the line the extractor rebuilds: a stream that never
// sends a newline is emitted in pieces of this many runes.
const maxScreenLine = 4096

// ExtractText reads an asciicast v2 recording and returns the text its
// output events put on screen, one screen line per line, for the output
// index. Escape and control sequences (colours, cursor keys, titles, OSC,
// DCS) are removed; within a line, carriage return, backspace and the
// common cursor moves and erases of shells and line editors are applied,
// so "DROP TABEL\b\bLE" reads as "DROP TABLE", and a line that a carriage
// return lets the next text overwrite is kept as it was before (progress
// bars and prompts are then in the text more than once, which only costs
// space). Absolute cursor positioning (full-screen programs) starts a new
// line. A sequence or a word split across events is joined, since the
// extractor keeps its state from one event to the next.
//
// At most max bytes of text are returned (truncated reports a cut). A
// recording that stops parsing part-way returns the text up to there and
// the error: what was read is still worth finding.
func ExtractText(r io.Reader, max int) (text []byte, truncated bool, err error) {
	br := bufio.NewReaderSize(r, 64<<10)
	line, err := readCastLine(br)
	if err != nil {
		if errors.Is(err, io.EOF) {
			err = errors.New("empty recording")
		}
		return nil, false, fmt.Errorf("audit: cast header: %w", err)
	}
	if _, err := recorder.ReadHeader(line); err != nil {
		return nil, false, err
	}
	x := &screenText{max: max}
	for n := 2; ; n++ {
		line, err := readCastLine(br)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			x.finish()
			return x.out, x.truncated, fmt.Errorf("audit: cast line %d: %w", n, err)
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		ev, err := recorder.ParseEvent(line)
		if err != nil {
			x.finish()
			return x.out, x.truncated, fmt.Errorf("audit: cast line %d: %w", n, err)
		}
		if ev.Code != "o" {
			continue
		}
		x.feed(ev.Data)
		if x.truncated {
			return x.out, true, nil
		}
	}
	x.finish()
	return x.out, x.truncated, nil
}

// readCastLine reads one line without its newline; io.EOF only when nothing
// is left. A last line without a newline is returned as a line.
func readCastLine(br *bufio.Reader) ([]byte, error) {
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if len(line) > maxIndexCastLine {
			return nil, fmt.Errorf("line longer than %d bytes", maxIndexCastLine)
		}
		switch {
		case err == nil:
			return line[:len(line)-1], nil
		case errors.Is(err, bufio.ErrBufferFull):
			continue
		case errors.Is(err, io.EOF) && len(line) > 0:
			return line, nil
		default:
			return nil, err
		}
	}
}

// Parser states of screenText.
const (
	stGround = iota
	stEsc    // after ESC
	stEscInt // ESC and intermediates (charset designation, ...): until a final byte
	stCSI    // ESC [ or U+009B: parameters until a final byte
	stString // OSC, DCS, SOS, PM, APC: until BEL or ST, content dropped
	stStrEsc // ESC inside a string: ST if '\' follows
)

// screenText rebuilds screen lines from terminal output. It models one
// line and a cursor in it; that is what shells and line editors redraw,
// and what a search for a command or its output needs.
type screenText struct {
	max       int
	out       []byte
	truncated bool

	line  []rune
	col   int
	cr    bool // a carriage return left the cursor at 0 over text
	state int
	param []byte // CSI parameter bytes, bounded
}

func (x *screenText) feed(s string) {
	for _, r := range s {
		if x.truncated {
			return
		}
		x.rune(r)
	}
}

func (x *screenText) rune(r rune) {
	switch x.state {
	case stEsc:
		x.escape(r)
		return
	case stEscInt:
		if r >= 0x30 && r <= 0x7e || r == 0x18 || r == 0x1a {
			x.state = stGround
		}
		return
	case stCSI:
		switch {
		case r >= 0x40 && r <= 0x7e:
			x.csi(r)
			x.state = stGround
		case r == 0x18 || r == 0x1a:
			x.state = stGround
		case r == 0x1b:
			x.state = stEsc
		case len(x.param) < 64:
			x.param = append(x.param, byte(r))
		}
		return
	case stString:
		switch r {
		case 0x07, 0x9c, 0x18, 0x1a:
			x.state = stGround
		case 0x1b:
			x.state = stStrEsc
		}
		return
	case stStrEsc:
		if r == '\\' {
			x.state = stGround
		} else {
			x.state = stString
		}
		return
	}
	switch r {
	case 0x1b:
		x.state = stEsc
	case 0x9b:
		x.state, x.param = stCSI, x.param[:0]
	case 0x90, 0x98, 0x9d, 0x9e, 0x9f:
		x.state = stString
	case '\n', '\v', '\f':
		x.newline()
	case '\r':
		x.col = 0
		x.cr = len(x.line) > 0
	case '\b':
		if x.col > 0 {
			x.col--
		}
	case '\t':
		x.put(' ')
	default:
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return // other controls show nothing
		}
		x.put(r)
	}
}

// escape handles the byte after ESC.
func (x *screenText) escape(r rune) {
	switch {
	case r == '[':
		x.state, x.param = stCSI, x.param[:0]
	case r == ']' || r == 'P' || r == 'X' || r == '^' || r == '_':
		x.state = stString
	case r >= 0x20 && r <= 0x2f:
		x.state = stEscInt
	case r == 'E': // next line
		x.state = stGround
		x.newline()
	default: // a two-byte sequence (ESC 7, ESC =, ESC M, ...): no text
		x.state = stGround
	}
}

// csi applies the sequences that move within or erase the current line;
// sequences that move the cursor to another line end the line.
func (x *screenText) csi(final rune) {
	n := x.firstParam()
	switch final {
	case 'C': // cursor forward
		x.col = min(x.col+max(n, 1), maxScreenLine)
		if x.col > len(x.line) {
			x.flushCR()
		}
	case 'D': // cursor back
		x.col = max(x.col-max(n, 1), 0)
	case 'G', '`': // cursor to column
		x.col = min(max(n, 1)-1, maxScreenLine)
	case 'K': // erase in line: 0 right of the cursor, 1 left, 2 all
		switch n {
		case 0:
			if x.col < len(x.line) {
				x.line = x.line[:x.col]
			}
		case 1:
			for i := 0; i < x.col && i < len(x.line); i++ {
				x.line[i] = ' '
			}
		case 2:
			x.line = x.line[:0]
		}
	case 'P': // delete characters at the cursor
		if x.col < len(x.line) {
			k := min(max(n, 1), len(x.line)-x.col)
			x.line = append(x.line[:x.col], x.line[x.col+k:]...)
		}
	case '@': // insert blanks at the cursor
		if x.col < len(x.line) {
			k := min(max(n, 1), maxScreenLine-len(x.line))
			if k > 0 {
				x.line = append(x.line[:x.col], append(make([]rune, k), x.line[x.col:]...)...)
				for i := x.col; i < x.col+k; i++ {
					x.line[i] = ' '
				}
			}
		}
	case 'X': // erase characters
		for i := x.col; i < x.col+max(n, 1) && i < len(x.line); i++ {
			x.line[i] = ' '
		}
	case 'A', 'B', 'E', 'F', 'H', 'f', 'd', 'J', 'S', 'T', 'L', 'M', 'r':
		// Another line, or the screen redrawn: this line is done.
		x.newline()
	}
}

// firstParam is the CSI's first numeric parameter, 0 when absent.
func (x *screenText) firstParam() int {
	p := x.param
	for len(p) > 0 && (p[0] == '?' || p[0] == '>' || p[0] == '<' || p[0] == '=') {
		p = p[1:]
	}
	if i := bytes.IndexAny(p, ";:"); i >= 0 {
		p = p[:i]
	}
	n, err := strconv.Atoi(string(p))
	if err != nil || n < 0 {
		return 0
	}
	return min(n, maxScreenLine)
}

// put writes r at the cursor.
func (x *screenText) put(r rune) {
	if x.cr {
		// The text the return went back over is about to change: keep it
		// as it was shown.
		x.cr = false
		x.emit(x.line)
	}
	for len(x.line) < x.col {
		x.line = append(x.line, ' ')
	}
	if x.col < len(x.line) {
		x.line[x.col] = r
	} else {
		x.line = append(x.line, r)
	}
	x.col++
	if x.col >= maxScreenLine {
		x.newline()
	}
}

// flushCR keeps the text a return went back over before the cursor leaves
// it behind.
func (x *screenText) flushCR() {
	if x.cr {
		x.cr = false
		x.emit(x.line)
	}
}

func (x *screenText) newline() {
	x.cr = false
	x.emit(x.line)
	x.line, x.col = x.line[:0], 0
}

// finish emits the line still open at the end.
func (x *screenText) finish() {
	if !x.truncated && len(x.line) > 0 {
		x.newline()
	}
}

// emit appends a line of text and a newline, up to max bytes.
func (x *screenText) emit(line []rune) {
	for len(line) > 0 && line[len(line)-1] == ' ' {
		line = line[:len(line)-1]
	}
	if len(line) == 0 || x.truncated {
		return
	}
	var b [utf8.UTFMax]byte
	start := len(x.out)
	for _, r := range line {
		n := utf8.EncodeRune(b[:], r)
		if len(x.out)+n+1 > x.max {
			x.truncated = true
			if len(x.out) == start {
				return
			}
			break
		}
		x.out = append(x.out, b[:n]...)
	}
	x.out = append(x.out, '\n')
}
