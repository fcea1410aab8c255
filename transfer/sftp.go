package transfer

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
)

// Limits on the state an SFTP parser keeps. A client may pipeline requests
// faster than the host answers them, and each one it must report holds an
// entry until its reply; without caps a hostile client could grow the
// gateway's memory without bound. Exceeding one stops the parser (ErrLimit),
// which the gateway treats like any other parse failure: it fails closed.
//
// maxPending is the most requests awaiting a reply: 262144, the highest
// pipeline OpenSSH's sftp accepts (-X nrequests; its default is 64, and
// scp's is the same). Only requests that are reported count (opens, closes
// and I/O on tracked files, and path operations), at a few dozen bytes each.
//
// maxHeld caps the bytes of paths and handles held by those requests and by
// open files. OpenSSH's clients wait for the answer to every request that
// carries a path, so they hold a handful; 16 MiB is room for sixty-four
// paths of the longest packet.
const (
	maxPending = 256 << 10
	maxHeld    = 16 << 20
)

// entryCost is the bookkeeping charged per path-carrying request or handle
// on top of its strings, so that many empty paths still count.
const entryCost = 64

// SFTP follows one SFTP v3 session (both directions) and reports the file
// operations in it. The zero value is not usable; call NewSFTP.
//
// ClientData and HostData may be called from different goroutines, one per
// direction; each chunk must be fed before it is forwarded, so that the
// parser sees every request before its reply.
type SFTP struct {
	mu      sync.Mutex
	client  framer
	host    framer
	pending map[uint32]request // requests awaiting a reply, by id
	handles map[string]*file   // files opened and not yet closed
	held    int                // bytes of paths and handles, against maxHeld
	started [2]bool            // the client's INIT, the host's VERSION seen
	seq     int                // numbers files in the order they were opened
	reading *file              // file of the DATA packet being skipped
	readN   int64              // its data length
	out     []Op               // ops produced by the current call
	err     error
	closed  bool
}

// file is a file opened through SFTP, reported when its handle is closed.
type file struct {
	op  Op
	seq int
}

// reqPathOp marks a request that acts on paths (remove, rename, ...) and is
// reported as it stands once the host answers it.
const reqPathOp = 0

// request is a client request whose reply decides what gets reported. It
// is kept by value and small: a pipelined READ or WRITE needs only its file
// and length.
type request struct {
	typ  byte  // SFTP packet type, or reqPathOp
	op   *Op   // path operations: reported on the STATUS reply
	f    *file // OPEN, READ, WRITE and CLOSE: the file concerned
	n    int64 // WRITE: data length, counted once the host acknowledges it
	cost int   // bytes charged against maxHeld
}

// NewSFTP returns a parser for a new SFTP session.
func NewSFTP() *SFTP {
	return &SFTP{
		client:  framer{skipType: fxpWrite},
		host:    framer{skipType: fxpData},
		pending: make(map[uint32]request),
		handles: make(map[string]*file),
	}
}

// ClientData parses client→host bytes and returns the operations they
// complete (in practice none: outcomes arrive with the host's replies).
func (s *SFTP) ClientData(p []byte) []Op {
	return s.feed(&s.client, p, s.clientPacket, func() {})
}

// HostData parses host→client bytes and returns the operations whose
// outcome they carry.
func (s *SFTP) HostData(p []byte) []Op {
	return s.feed(&s.host, p, s.hostPacket, s.readDone)
}

func (s *SFTP) feed(f *framer, p []byte, packet frameHandler, done func()) []Op {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.closed {
		return nil
	}
	s.out = nil
	s.err = f.feed(p, packet, done)
	return s.out
}

// Close ends the session and reports the files still open (or whose close
// the host never answered) with the bytes counted so far, in the order they
// were opened. Requests that never got a reply are not reported: their
// outcome is unknown. Files are reported even after Err, since they were
// seen before parsing stopped. Later calls return nil.
func (s *SFTP) Close() []Op {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var files []*file
	for _, f := range s.handles {
		files = append(files, f)
	}
	for _, r := range s.pending {
		if r.typ == fxpClose {
			files = append(files, r.f)
		}
	}
	slices.SortFunc(files, func(a, b *file) int { return cmp.Compare(a.seq, b.seq) })
	ops := make([]Op, 0, len(files))
	for _, f := range files {
		ops = append(ops, f.op)
	}
	s.pending, s.handles = nil, nil
	return ops
}

// Err reports why parsing stopped, or nil while it goes on. Once set it does
// not change.
func (s *SFTP) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// hold charges n bytes of paths and handles, failing once the session
// holds too much.
func (s *SFTP) hold(n int) error {
	if s.held+n > maxHeld {
		return fmt.Errorf("transfer: sftp paths awaiting replies above %d bytes: %w", maxHeld, ErrLimit)
	}
	s.held += n
	return nil
}

// await records a request until its reply. A reused id replaces the older
// request, whose reply can no longer be told apart.
func (s *SFTP) await(id uint32, r request) error {
	s.take(id)
	if len(s.pending) >= maxPending {
		return fmt.Errorf("transfer: sftp client has more than %d requests awaiting replies: %w", maxPending, ErrLimit)
	}
	if err := s.hold(r.cost); err != nil {
		return err
	}
	s.pending[id] = r
	return nil
}

// take removes and returns the request with the given id; ok is false when
// there is none.
func (s *SFTP) take(id uint32) (r request, ok bool) {
	r, ok = s.pending[id]
	if ok {
		delete(s.pending, id)
		s.held -= r.cost
	}
	return r, ok
}

// open starts tracking a file under the host's handle. A handle the host
// hands out again while still open can only mean the old file is gone, so
// the old file is reported.
func (s *SFTP) open(handle string, f *file) error {
	if old := s.handles[handle]; old != nil {
		s.closeHandle(handle)
		s.out = append(s.out, old.op)
	}
	if err := s.hold(entryCost + len(handle) + len(f.op.Path)); err != nil {
		return err
	}
	s.handles[handle] = f
	return nil
}

// closeHandle stops tracking a handle and returns its file, or nil when the
// handle is unknown (a directory, or one opened before parsing began).
func (s *SFTP) closeHandle(handle string) *file {
	f := s.handles[handle]
	if f != nil {
		delete(s.handles, handle)
		s.held -= entryCost + len(handle) + len(f.op.Path)
	}
	return f
}
