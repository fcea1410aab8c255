package recorder

import (
	"encoding/binary"
	"math/bits"
	"strconv"
	"unicode"
	"unicode/utf8"
)

// Quote makes a stored value safe to print in a listing on a person's
// terminal: every CLI table and the SSH command interface's listings go
// through it. A value of printable characters only is returned as it is;
// any other value is returned quoted in Go syntax, with every character that
// is not graphic escaped: C0 controls and DEL (escape sequences, a pasted
// newline, a tab that would shift the columns), C1 controls U+0080 to
// U+009F (which some terminals read as CSI, OSC, ...), bytes that are not
// UTF-8 (a raw 0x9b is CSI to an 8-bit terminal), and the invisible format
// characters, bidi controls among them (U+202A-U+202E, U+2066-U+2069,
// U+200E, U+200F, U+061C), which make a line read differently from what it
// holds. Values come from the database, which anyone who can write its file
// can edit, and from what users typed, so none is trusted.
func Quote(s string) string {
	if !utf8.ValidString(s) {
		return strconv.QuoteToGraphic(s)
	}
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.QuoteToGraphic(s)
		}
	}
	return s
}

// jsonSafe[c] reports whether byte c may be copied into a JSON string as it
// is. Bytes from 0x80 up are false here: they go through UTF-8 validation.
var jsonSafe = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

const (
	hexDigits   = "0123456789abcdef"
	replacement = "\uFFFD"
)

// heldRune holds the leading bytes of a rune that a chunk ended in the
// middle of, until the next chunk of the same stream completes it. They are
// always a valid prefix of a UTF-8 encoding, so at most three bytes.
type heldRune struct {
	b [utf8.UTFMax - 1]byte
	n int
}

// absorbs reports whether p, appended to the held bytes, still only makes an
// incomplete rune; if so it keeps them all and nothing is to be written.
func (h *heldRune) absorbs(p []byte) bool {
	if h.n+len(p) > len(h.b) {
		return false
	}
	var t [utf8.UTFMax]byte
	n := copy(t[:], h.b[:h.n])
	n += copy(t[n:], p)
	if utf8.FullRune(t[:n]) {
		return false
	}
	h.n = copy(h.b[:], t[:n])
	return true
}

// appendEscaped appends p to dst as the inside of a JSON string. It first
// completes a rune held from the previous chunk, and holds back an
// incomplete rune at the end of p; bytes that are not UTF-8 become U+FFFD,
// one per byte, as utf8.DecodeRune reads them, so that the output does not
// depend on where the stream was cut into chunks.
func appendEscaped(dst, p []byte, h *heldRune) []byte {
	return appendEscapedScan(dst, p, h, true)
}

// appendEscapedScan is appendEscaped, with the block scan (unsafeMasks)
// used only if blocks: the tests compare the two ways.
func appendEscapedScan(dst, p []byte, h *heldRune, blocks bool) []byte {
	for h.n > 0 && len(p) > 0 {
		var t [utf8.UTFMax]byte
		k := copy(t[:], h.b[:h.n])
		m := copy(t[k:], p)
		if !utf8.FullRune(t[:k+m]) {
			// Only possible when all of p fitted in t: keep waiting.
			h.n = copy(h.b[:], t[:k+m])
			return dst
		}
		if r, size := utf8.DecodeRune(t[:k+m]); r != utf8.RuneError || size > 1 {
			dst = append(dst, t[:size]...)
			p = p[size-k:]
			h.n = 0
			break
		}
		// The held lead byte is not followed by what it promised; the
		// held continuation bytes after it are invalid on their own.
		dst = append(dst, replacement...)
		h.n = copy(h.b[:], h.b[1:h.n])
	}
	i := 0
	if blocks && len(p) >= 2*32 {
		i, dst = appendEscapedBlocks(dst, p, h)
		if i < 0 {
			return dst // a rune held at the end of p
		}
	}
	for i < len(p) {
		c := p[i]
		if jsonSafe[c] {
			j := i + 1
			for j+8 <= len(p) && safe8(binary.LittleEndian.Uint64(p[j:])) {
				j += 8
			}
			for j < len(p) && jsonSafe[p[j]] {
				j++
			}
			dst = append(dst, p[i:j]...)
			i = j
			continue
		}
		var held bool
		if dst, i, held = appendUnsafe(dst, p, i, h); held {
			return dst
		}
	}
	return dst
}

// appendEscapedBlocks is appendEscaped's way through p with the block scan,
// a window at a time: the scan marks the bytes to escape, and only those
// are visited; the runs between them are copied whole. A rune may run past
// the window's end: the next window starts after it. It returns where the
// portable loop goes on (fewer than two blocks left, or no scan), or -1 if
// a rune cut at the end of p was held. The masks live here, not in
// appendEscaped, so that a keystroke's event does not clear them.
func appendEscapedBlocks(dst, p []byte, h *heldRune) (int, []byte) {
	var masks [maskBlocks]uint32
	i := 0
	for len(p)-i >= 2*32 {
		win := p[i:min(len(p), i+maskBlocks*32)]
		nb := unsafeMasks(win, masks[:])
		if nb == 0 {
			break
		}
		base, end := i, i+nb*32
		for k, m := range masks[:nb] {
			for ; m != 0; m &= m - 1 {
				q := base + 32*k + bits.TrailingZeros32(m)
				if q < i {
					continue // a continuation byte of a rune already copied
				}
				dst = append(dst, p[i:q]...)
				var held bool
				dst, i, held = appendUnsafe(dst, p, q, h)
				if held {
					return -1, dst
				}
			}
		}
		if i < end {
			dst = append(dst, p[i:end]...)
			i = end
		}
	}
	return i, dst
}

// maskBlocks is how many 32-byte blocks appendEscaped has marked at a time:
// 4 KiB of input, 512 bytes of masks on the stack.
const maskBlocks = 128

// appendUnsafe appends p[i], a byte jsonSafe rejects, escaped: an ASCII
// byte escaped, a UTF-8 rune as it is, a byte that is not UTF-8 as U+FFFD.
// It returns where the next byte is. A rune cut short by the end of p is
// held in h instead (held true): nothing in p comes after it.
func appendUnsafe(dst, p []byte, i int, h *heldRune) (out []byte, next int, held bool) {
	c := p[i]
	if c < utf8.RuneSelf {
		return appendEscapedASCII(dst, c), i + 1, false
	}
	r, size := utf8.DecodeRune(p[i:])
	if r == utf8.RuneError && size == 1 {
		if !utf8.FullRune(p[i:]) {
			h.n = copy(h.b[:], p[i:])
			return dst, len(p), true
		}
		return append(dst, replacement...), i + 1, false
	}
	return append(dst, p[i:i+size]...), i + size, false
}

const (
	ones  = 0x0101010101010101
	highs = 0x8080808080808080
)

// safe8 reports whether all eight bytes packed in x are jsonSafe, without
// looking at them one by one: terminal output is mostly such bytes, and this
// loop is on the path of every byte a session prints.
func safe8(x uint64) bool {
	hasZero := func(v uint64) uint64 { return (v - ones) & ^v & highs }
	return (x&highs)|
		((x-0x20*ones) & ^x & highs)| // a byte below 0x20
		hasZero(x^('"'*ones))|
		hasZero(x^('\\'*ones)) == 0
}

// appendEscapedASCII appends the JSON escape of an ASCII byte that may not
// appear raw in a JSON string: a quote, a backslash or a control character.
func appendEscapedASCII(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\n':
		return append(dst, '\\', 'n')
	case '\r':
		return append(dst, '\\', 'r')
	case '\t':
		return append(dst, '\\', 't')
	case '\b':
		return append(dst, '\\', 'b')
	case '\f':
		return append(dst, '\\', 'f')
	}
	return append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}
