package recorder

import (
	"bytes"
	"unicode/utf8"
)

// The cursor's row. Keys alone cannot tell what a line says after the
// shell changed it by itself: tab completion, a history line from before
// the session, an incremental search, undo. The host shows it, though, on
// the row where the line is typed. So the screen keeps the output since
// the last LF (the tail), and the rebuilder reads the row off it when a
// line starts (the prompt ends at the cursor) and when it is submitted
// (the line is what lies between the prompt and the cursor). The row is
// read only then, so bulk output costs one search for LF per chunk.
//
// The reading is what the screen showed when the key was pressed: keys
// sent faster than the host's echo (a script) are not on it yet, and a
// redraw that moves the cursor up (a line wrapped by the shell's own
// redisplay, a full-screen redraw) makes the row unknown.

const (
	// maxTail bounds the output kept since the last LF; a longer row is
	// not read.
	maxTail = 4 << 10
	// maxRowCols bounds the columns a row may have, so that a cursor
	// movement sequence cannot make the reading allocate much.
	maxRowCols = 4096
)

// keepTail records the output p for reading the row.
func (s *screen) keepTail(p []byte) {
	if len(p) > 0 {
		s.rowRead = false
	}
	// Only the last maxTail bytes can hold a row that is read, so a chunk
	// without LF is never searched further back than that.
	if len(p) > maxTail {
		p, s.tail, s.tailLong = p[len(p)-maxTail-1:], s.tail[:0], true
	}
	if k := bytes.LastIndexByte(p, '\n'); k >= 0 {
		p = p[k+1:]
		s.tail, s.tailLong = s.tail[:0], false
	}
	if s.tailLong || len(s.tail)+len(p) > maxTail {
		s.tail, s.tailLong = s.tail[:0], true
		return
	}
	s.tail = append(s.tail, p...)
}

// row reads the cursor's row from the tail: its text and the cursor's
// column, or ok false when the row cannot be known.
//
// The reading is kept until more output comes, so keys that submit many
// lines between two outputs cost one reading, not one each: a reading
// costs at most maxTail bytes of parsing per chunk of output.
func (s *screen) row() (row []rune, col int, ok bool) {
	if s.tailLong {
		return nil, 0, false
	}
	if !s.rowRead {
		s.rr = rowReader{row: s.rr.row[:0], ok: true}
		s.rr.read(s.tail)
		s.rowRead = true
	}
	return s.rr.row, s.rr.col, s.rr.ok
}

// rowReader is a small terminal for one row: printable runes overwrite,
// and the sequences line editors use to redraw a line move the cursor and
// edit the row (CR, BS, TAB, CSI C D G K P @ X J). A vertical move makes
// the row unknown. Each rune takes one column.
type rowReader struct {
	row []rune
	col int
	ok  bool
}

func (rr *rowReader) read(p []byte) {
	for i := 0; i < len(p); {
		c := p[i]
		switch {
		case c == 0x1b:
			i = rr.escape(p, i+1)
			continue
		case c == '\r':
			rr.col = 0
		case c == '\b':
			rr.col = max(rr.col-1, 0)
		case c == '\t':
			rr.move((rr.col/8 + 1) * 8)
		case c == '\n':
			rr.row = rr.row[:0]
		case c >= 0x20 && c != 0x7f:
			r, n := utf8.DecodeRune(p[i:])
			rr.put(r)
			i += n
			continue
		}
		i++
	}
}

func (rr *rowReader) move(col int) {
	if col < 0 {
		col = 0
	}
	if col > maxRowCols {
		rr.ok = false
		col = maxRowCols
	}
	rr.col = col
}

func (rr *rowReader) put(r rune) {
	if rr.col >= maxRowCols {
		rr.ok = false
		return
	}
	for len(rr.row) < rr.col {
		rr.row = append(rr.row, ' ')
	}
	if rr.col < len(rr.row) {
		rr.row[rr.col] = r
	} else {
		rr.row = append(rr.row, r)
	}
	rr.col++
}

// escape reads the sequence after an ESC at p[i-1] and returns the index
// after it.
func (rr *rowReader) escape(p []byte, i int) int {
	if i >= len(p) {
		return i
	}
	switch c := p[i]; {
	case c == '[':
		return rr.csi(p, i+1)
	case c == ']' || c == 'P' || c == 'X' || c == '^' || c == '_':
		// A string, until BEL or ST: it shows nothing.
		for i++; i < len(p); i++ {
			if p[i] == 0x07 {
				return i + 1
			}
			if p[i] == 0x1b && i+1 < len(p) && p[i+1] == '\\' {
				return i + 2
			}
		}
		return i
	case c == 'M' || c == '8':
		rr.ok = false // reverse index, restore cursor: another row
	case c == 'D' || c == 'E':
		rr.row = rr.row[:0] // index, next line
		if c == 'E' {
			rr.col = 0
		}
	case c == 'c':
		rr.row, rr.col, rr.ok = rr.row[:0], 0, true
	case c >= 0x20 && c <= 0x2f:
		for i++; i < len(p) && p[i] >= 0x20 && p[i] <= 0x2f; i++ {
		}
	}
	return i + 1
}

// csi reads CSI params final from p[i:] and returns the index after it.
func (rr *rowReader) csi(p []byte, i int) int {
	start := i
	for i < len(p) && p[i] >= 0x20 && p[i] <= 0x3f {
		i++
	}
	if i >= len(p) {
		return i
	}
	params, final := p[start:i], p[i]
	i++
	if len(params) > 0 && params[0] >= '<' {
		return i // private (?, >, <, =): modes, not movement
	}
	n, m := csiParams(params)
	count := max(n, 1)
	switch final {
	case 'C', 'a':
		rr.move(rr.col + count)
	case 'D':
		rr.move(rr.col - count)
	case 'G', '`':
		rr.move(count - 1)
	case 'K':
		rr.erase(n)
	case 'P':
		if rr.col < len(rr.row) {
			end := min(rr.col+count, len(rr.row))
			rr.row = append(rr.row[:rr.col], rr.row[end:]...)
		}
	case '@':
		if rr.col < len(rr.row) {
			if len(rr.row)+count > maxRowCols {
				rr.ok = false
				break
			}
			blanks := make([]rune, count)
			for k := range blanks {
				blanks[k] = ' '
			}
			rr.row = append(rr.row[:rr.col], append(blanks, rr.row[rr.col:]...)...)
		}
	case 'X':
		for k := rr.col; k < min(rr.col+count, len(rr.row)); k++ {
			rr.row[k] = ' '
		}
	case 'H', 'f':
		rr.ok = false
		rr.move(max(m, 1) - 1)
	case 'A', 'B', 'E', 'F', 'd', 'S', 'T', 'L', 'M':
		rr.ok = false
	case 'J':
		if n >= 2 {
			rr.row, rr.ok = rr.row[:0], true // the screen is blank
		} else {
			rr.erase(n)
		}
	}
	return i
}

// erase is EL (and the row's part of ED): 0 to the end, 1 to the cursor,
// 2 the whole row.
func (rr *rowReader) erase(n int) {
	switch n {
	case 0:
		if rr.col < len(rr.row) {
			rr.row = rr.row[:rr.col]
		}
	case 1:
		for k := 0; k <= rr.col && k < len(rr.row); k++ {
			rr.row[k] = ' '
		}
	case 2:
		rr.row = rr.row[:0]
	}
}

// csiParams returns the first two numeric parameters (0 when absent),
// each capped so that arithmetic on them cannot overflow.
func csiParams(params []byte) (n, m int) {
	var v [2]int
	k := 0
	for _, c := range params {
		switch {
		case c >= '0' && c <= '9':
			if k < 2 && v[k] < 1<<20 {
				v[k] = v[k]*10 + int(c-'0')
			}
		case c == ';':
			k++
		}
	}
	return v[0], v[1]
}
