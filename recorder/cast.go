package recorder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"sync"
	"time"
)

// Meta is Warden's own object in the asciicast header, under "warden": it
// ties a recording to the session row and the grant that allowed it.
type Meta struct {
	// SessionID is the sessions.id of the session channel recorded; it is
	// also the file name, so it must pass [ValidSessionID].
	SessionID string `json:"session_id"`
	// User is the Warden user who opened the session.
	User string `json:"user"`
	// Login is the account on the managed host.
	Login string `json:"login"`
	// Host is the managed host's name.
	Host string `json:"host"`
	// Tenant is the tenant the host belongs to.
	Tenant string `json:"tenant"`
	// Role is the policy role that granted the access.
	Role string `json:"role"`
	// GrantID is the just-in-time grant used, or zero for standing access.
	GrantID int64 `json:"grant_id,omitempty"`
}

// Header is the first line of an asciicast v2 file.
type Header struct {
	// Version is the asciicast format version; [Create] always writes 2.
	Version int `json:"version"`
	// Width is the terminal's initial width in columns; [Create] uses 80
	// when it is not positive (a command run without a pty).
	Width int `json:"width"`
	// Height is the terminal's initial height in rows; [Create] uses 24
	// when it is not positive.
	Height int `json:"height"`
	// Timestamp is the Unix time of the recording's start; [Create] sets it
	// from Options.Now, the clock that times the events.
	Timestamp int64 `json:"timestamp"`
	// Env holds the client's environment that affects playback, TERM.
	Env map[string]string `json:"env,omitempty"`
	// Title names the session for players, e.g. "alice as root@web01".
	Title string `json:"title,omitempty"`
	// Command is the command line of an exec session; empty for a shell.
	Command string `json:"command,omitempty"`
	// Warden is Warden's own metadata about the session.
	Warden Meta `json:"warden"`
}

// Options tunes a [Writer]. The zero value is ready to use.
type Options struct {
	// Now is the clock for the header timestamp, the file's date directory
	// and event times; time.Now if nil.
	Now func() time.Time
	// FlushInterval is how often buffered events reach the file, which
	// bounds how far a recording on disk lags the session; 1s if not
	// positive.
	FlushInterval time.Duration
}

// ErrClosed is returned by writes to a [Writer] after [Writer.Close].
var ErrClosed = errors.New("recorder: writer closed")

const (
	bufferSize = 256 << 10
	// segment is the most input escaped at a time into the buffer.
	segment = 16 << 10
)

// file is what a Writer needs of its *os.File.
type file interface {
	io.Writer
	Sync() error
	Close() error
}

// Writer appends the events of one session channel to an asciicast v2
// file. Its methods are safe for concurrent use.
type Writer struct {
	path, rel string
	now       func() time.Time
	start     time.Time

	mu     sync.Mutex
	f      file
	sum    hash.Hash
	bw     *spool
	buf    []byte // event being built, reused
	lastUS int64  // time of the last event, in µs since start
	out    heldRune
	in     heldRune
	err    error // first write error, sticky
	closed bool

	interval  time.Duration // FlushInterval
	timer     *time.Timer   // the flush, armed while bytes wait in bw; under mu
	armed     bool
	closeOnce sync.Once
	digest    string
	closeErr  error
}

// Create starts the recording of session h.Warden.SessionID in
// dataDir/recordings/YYYY-MM-DD/SESSION_ID.cast, the date being the UTC day
// of opt.Now(), and writes the header. The file must not exist yet. Create
// sets h.Version to 2 and h.Timestamp to the start, and defaults the size to
// 80x24. The session ID must pass [ValidSessionID]: it becomes part of a
// path, so anything else is refused with [ErrInvalidSessionID].
func Create(dataDir string, h Header, opt Options) (*Writer, error) {
	if !ValidSessionID(h.Warden.SessionID) {
		return nil, ErrInvalidSessionID
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	start := opt.Now()
	rel := relPath(h.Warden.SessionID, start)
	f, full, err := createFile(dataDir, rel)
	if err != nil {
		return nil, err
	}
	w, err := newWriter(f, h, start, opt)
	if err != nil {
		f.Close()
		os.Remove(full)
		return nil, err
	}
	w.path, w.rel = full, rel
	return w, nil
}

// newWriter writes the header of a recording starting at start to f and
// starts the flusher. opt.Now must be set.
func newWriter(f *os.File, h Header, start time.Time, opt Options) (*Writer, error) {
	h.Version = 2
	h.Timestamp = start.Unix()
	if h.Width <= 0 {
		h.Width = 80
	}
	if h.Height <= 0 {
		h.Height = 24
	}
	var line bytes.Buffer
	enc := json.NewEncoder(&line)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(h); err != nil {
		return nil, fmt.Errorf("recorder: header: %w", err)
	}
	sum := sha256.New()
	dst := newCastFile(f, sum)
	// The header reaches the file at once, so the file is valid asciicast
	// from the start (and a full disk is known before the session starts).
	if err := dst.writeAt(line.Bytes(), 0); err != nil {
		return nil, fmt.Errorf("recorder: write: %w", err)
	}
	w := &Writer{
		now: opt.Now, start: start, f: f, sum: sum,
		bw:       newSpool(dst, bufferSize, dst.align(), int64(line.Len())),
		interval: opt.FlushInterval,
	}
	if w.interval <= 0 {
		w.interval = time.Second
	}
	// Stopped at once: write arms it when the first byte is buffered.
	w.timer = time.AfterFunc(w.interval, w.flushTick)
	w.timer.Stop()
	return w, nil
}

// Path returns the recording's absolute path.
func (w *Writer) Path() string { return w.path }

// RelPath returns the recording's path relative to the data directory,
// "recordings/YYYY-MM-DD/SESSION_ID.cast", as stored in the sessions table.
func (w *Writer) RelPath() string { return w.rel }

// Err returns the first error met writing the file, or nil. Once set it
// never changes: the recording is incomplete from that point on.
func (w *Writer) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Close writes what is buffered, including a rune left incomplete at the end
// of a stream (as U+FFFD), syncs and closes the file, and returns the hex
// SHA-256 of the whole file. After a write error it returns "" and that
// error: the digest of a file with a hole would certify nothing. The file
// is then cut back to its last whole event, so that what reached the disk
// before the failure (a full disk) still plays. Later calls return the same
// results.
func (w *Writer) Close() (sha256hex string, err error) {
	w.closeOnce.Do(func() {
		w.mu.Lock()
		defer w.mu.Unlock()
		// A flush that fires now waits for mu, then finds w closed.
		w.timer.Stop()
		w.digest, w.closeErr = w.finish()
		w.closed = true
	})
	return w.digest, w.closeErr
}

func (w *Writer) finish() (string, error) {
	for _, s := range [...]struct {
		kind byte
		h    *heldRune
	}{{'o', &w.out}, {'i', &w.in}} {
		if s.h.n > 0 && w.err == nil {
			s.h.n = 0
			b := w.appendPrefix(w.buf[:0], s.kind)
			w.write(append(b, replacement+"\"]\n"...))
		}
	}
	if err := w.bw.Close(); err != nil {
		w.fail(err)
	}
	if w.err == nil {
		if err := w.f.Sync(); err != nil {
			w.fail(err)
		}
	}
	if err := w.f.Close(); err != nil && w.err == nil {
		w.fail(err)
	}
	if w.err != nil {
		if w.path != "" {
			// A failed write may have left half an event.
			cutFailed(w.path)
		}
		return "", w.err
	}
	return hex.EncodeToString(w.sum.Sum(nil)), nil
}

// flushTick flushes the buffer an interval after the first byte was
// buffered, so the file on disk is never more than about one interval
// behind, and comes back once after a flush. It runs on the timer's own goroutine, which exists only while it
// runs: an idle recording costs no goroutine and no wake-ups. The flush
// happens under the mutex, between events, so the file then ends with a
// whole event.
func (w *Writer) flushTick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.armed = false
	if w.err != nil || w.closed {
		return
	}
	if err := w.bw.Err(); err != nil {
		w.fail(err)
	} else if w.bw.Buffered() > 0 {
		w.flush()
		// Once more, to report an error of the write just handed over
		// (Err) even if nothing else is written.
		w.armed = true
		w.timer.Reset(w.interval)
	}
}

// write buffers b and arms the flush; w.mu is held and w.err is nil.
func (w *Writer) write(b []byte) {
	if _, err := w.bw.Write(b); err != nil {
		w.fail(err)
	}
	w.arm()
}

// arm arms the flush if bytes wait in the buffer; w.mu is held.
func (w *Writer) arm() {
	if !w.armed && w.bw.Buffered() > 0 {
		w.armed = true
		w.timer.Reset(w.interval)
	}
}

// flush moves buffered bytes to the file; w.mu is held and w.err is nil.
func (w *Writer) flush() {
	if err := w.bw.Flush(); err != nil {
		w.fail(err)
	}
}

// fail records the first write error; w.mu is held.
func (w *Writer) fail(err error) {
	if w.err == nil {
		w.err = fmt.Errorf("recorder: write: %w", err)
	}
}
