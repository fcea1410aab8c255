package console

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/warden-gw/warden/recorder"
)

// sessionCast serves /sessions/ID.cast: the session's asciicast, for the
// player and, with ?download=1, as a file. It streams the file, gzip
// compressed when the browser accepts it, so a 50 MB recording costs a
// copy buffer, not 50 MB of memory. The stored path is opened through
// recorder.OpenRecording, which refuses anything that would leave the data
// directory (a "..", an absolute path, a symbolic link on the way).
func (c *Console) sessionCast(w http.ResponseWriter, r *http.Request, v *Viewer, id string) {
	s, err := c.visibleSession(r.Context(), r, v, id)
	if err != nil {
		c.noSession(w, r, v, err)
		return
	}
	if s.RecordingPath == "" {
		c.fail(w, r, v, http.StatusNotFound, "This session has no recording.")
		return
	}
	if c.d.Recordings != nil {
		c.sessionCastStored(w, r, v, s) // sessions_cast_store.go
		return
	}
	f, err := recorder.OpenRecording(c.d.DataDir, s.RecordingPath)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			c.fail(w, r, v, http.StatusNotFound, "The recording of this session is missing from the data directory.")
			return
		}
		c.log.Error("console: open recording", "session", s.ID, "err", err)
		c.fail(w, r, v, http.StatusInternalServerError, "The recording could not be opened; the error is in the gateway's log.")
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		c.log.Error("console: stat recording", "session", s.ID, "err", err)
		c.fail(w, r, v, http.StatusInternalServerError, "The recording could not be read; the error is in the gateway's log.")
		return
	}
	size := fi.Size()
	if s.EndedAt.IsZero() {
		// A live session's recorder may be half-way through a line: serve
		// the whole lines written so far, which parse on their own.
		if size, err = wholeLines(f, size); err != nil {
			c.log.Error("console: read recording", "session", s.ID, "err", err)
			c.fail(w, r, v, http.StatusInternalServerError, "The recording could not be read; the error is in the gateway's log.")
			return
		}
	}
	c.sendCast(w, r, s.ID, io.LimitReader(f, size), size)
}

// sendCast streams a recording's first size bytes from body (size -1:
// unknown, no Content-Length).
func (c *Console) sendCast(w http.ResponseWriter, r *http.Request, id string, body io.Reader, size int64) {
	h := w.Header()
	h.Set("Content-Type", "application/x-asciicast")
	h.Set("Vary", "Accept-Encoding")
	if r.URL.Query().Get("download") == "1" {
		h.Set("Content-Disposition", `attachment; filename="`+id+`.cast"`) // a checked ID: no quoting needed
	}
	if !acceptsGzip(r.Header.Get("Accept-Encoding")) {
		if size >= 0 {
			h.Set("Content-Length", strconv.FormatInt(size, 10))
		}
		if _, err := io.Copy(w, body); err != nil {
			c.log.Debug("console: send recording", "session", id, "err", err)
		}
		return
	}
	h.Set("Content-Encoding", "gzip")
	// BestSpeed: the CPU cost of a 50 MB recording stays a fraction of a
	// second, and terminal output still shrinks several times.
	gz, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
	if _, err := io.Copy(gz, body); err != nil {
		c.log.Debug("console: send recording", "session", id, "err", err)
		return
	}
	if err := gz.Close(); err != nil {
		c.log.Debug("console: send recording", "session", id, "err", err)
	}
}

// wholeLines returns the length of f's first size bytes up to and
// including their last newline.
func wholeLines(f io.ReaderAt, size int64) (int64, error) {
	const chunk = 64 << 10
	buf := make([]byte, chunk)
	for end := size; end > 0; {
		start := max(end-chunk, 0)
		n, err := f.ReadAt(buf[:end-start], start)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return start + int64(i) + 1, nil
		}
		end = start
	}
	return 0, nil
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip: gzip
// named with q > 0, or, when gzip is not named, "*" with q > 0.
func acceptsGzip(header string) bool {
	gz, star := -1.0, -1.0
	for _, part := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "gzip" && name != "*" {
			continue
		}
		q := 1.0
		for _, p := range strings.Split(params, ";") {
			k, val, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				f, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
				if err != nil {
					f = 0 // a q we cannot read does not accept
				}
				q = f
			}
		}
		if name == "gzip" {
			gz = q
		} else {
			star = q
		}
	}
	if gz >= 0 {
		return gz > 0
	}
	return star > 0
}
