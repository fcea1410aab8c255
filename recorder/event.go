package recorder

import (
	"io"
	"strconv"
)

// Output records p, bytes the host sent to the client, as an "o" event. It
// does not keep p. A rune cut at the end of p is held until the next Output.
// An empty p writes nothing.
func (w *Writer) Output(p []byte) error { return w.event('o', p, &w.out) }

// Input records p, bytes the client sent to the host, as an "i" event.
// Keystrokes include passwords typed at prompts: the gateway calls it only
// when recording.input is on.
func (w *Writer) Input(p []byte) error { return w.event('i', p, &w.in) }

// Resize records a terminal size change as an "r" event "COLSxROWS". A size
// that is not positive in both directions means nothing to a player and is
// not written.
func (w *Writer) Resize(cols, rows int) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil || cols <= 0 || rows <= 0 {
		return err
	}
	b := w.appendPrefix(w.buf[:0], 'r')
	b = strconv.AppendInt(b, int64(cols), 10)
	b = append(b, 'x')
	b = strconv.AppendInt(b, int64(rows), 10)
	b = append(b, "\"]\n"...)
	w.write(b)
	w.buf = b[:0]
	return w.err
}

// OutputWriter returns an io.Writer whose Write calls [Writer.Output], to
// wrap the host→client stream.
func (w *Writer) OutputWriter() io.Writer { return streamWriter{w, 'o'} }

// InputWriter returns an io.Writer whose Write calls [Writer.Input], to wrap
// the client→host stream.
func (w *Writer) InputWriter() io.Writer { return streamWriter{w, 'i'} }

type streamWriter struct {
	w    *Writer
	kind byte
}

func (s streamWriter) Write(p []byte) (int, error) {
	var err error
	if s.kind == 'o' {
		err = s.w.Output(p)
	} else {
		err = s.w.Input(p)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// usable returns why nothing more may be written, or nil; w.mu is held.
func (w *Writer) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.closed {
		return ErrClosed
	}
	return nil
}

func (w *Writer) event(kind byte, p []byte, h *heldRune) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	// A write that failed on the spool's goroutine is returned now, even
	// by a call that would write nothing yet (a held rune's first byte).
	if err := w.bw.Err(); err != nil {
		w.fail(err)
		return w.err
	}
	if len(p) == 0 || h.absorbs(p) {
		return nil
	}
	// The output is escaped straight into the spool's buffer, not built
	// apart and copied in: on bulk output that copy cost as much as a
	// tenth of the escaping. A buffer of the size the event needs is
	// taken before the prefix goes in.
	w.bw.room(len(p) + escapeSlack)
	w.write(w.appendPrefix(w.buf[:0], kind))
	for len(p) > 0 && w.err == nil {
		if err := w.bw.Err(); err != nil {
			w.fail(err)
			break
		}
		room := w.bw.room(len(p))
		n := min(len(p), segment, (cap(room)-escapeSlack)/6)
		if n < inPlaceMin {
			// The buffer is nearly full: the rest of it is filled
			// through write, which goes on in the next one.
			k := min(len(p), inPlaceMin)
			w.buf = appendEscaped(w.buf[:0], p[:k], h)
			w.write(w.buf)
			p = p[k:]
			continue
		}
		out := appendEscaped(room, p[:n], h)
		p = p[n:]
		if cap(out) != cap(room) {
			// Grown elsewhere: the bound below was wrong. The bytes
			// are not in the buffer, so they go in as a copy rather
			// than be counted unwritten.
			w.write(out)
			continue
		}
		w.bw.commit(len(out))
		w.arm()
	}
	if w.err == nil {
		w.write(append(w.buf[:0], '"', ']', '\n'))
	}
	return w.err
}

const (
	// escapeSlack and the factor 6 bound what appendEscaped makes of n
	// bytes: at most six bytes each (a control byte becomes \u00XX),
	// and at most 9 more when a rune held from the last chunk is given
	// up (U+FFFD for each of its three bytes); completing it adds at
	// most 3 bytes for the one byte that completes it, within the six.
	// TestEscapeStaysWithinInPlaceBound finds the worst case to be 9.
	escapeSlack = 16
	// inPlaceMin is the least input escaped in place; when the buffer
	// has room for less, the rest goes through w.buf and write.
	inPlaceMin = 256
)

// appendPrefix appends `[SECONDS, "KIND", "` with SECONDS since the start,
// six decimals. Times never go backwards, even if the clock does: players
// sleep for the difference between events.
func (w *Writer) appendPrefix(b []byte, kind byte) []byte {
	us := w.now().Sub(w.start).Microseconds()
	if us < w.lastUS {
		us = w.lastUS
	}
	w.lastUS = us
	b = append(b, '[')
	b = strconv.AppendInt(b, us/1e6, 10)
	var frac [7]byte
	frac[0] = '.'
	for i, f := 6, us%1e6; i > 0; i, f = i-1, f/10 {
		frac[i] = byte('0' + f%10)
	}
	b = append(b, frac[:]...)
	return append(b, ',', ' ', '"', kind, '"', ',', ' ', '"')
}
