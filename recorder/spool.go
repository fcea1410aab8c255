package recorder

import (
	"io"
	"sync"
	"unsafe"
)

// spool is the recorder's buffered writer. Full buffers go to a goroutine
// that feeds the file and the SHA-256, so the session's byte path never
// waits on hashing or the disk while a buffer is being filled: on bulk
// output the bridge's goroutine and the spool's run on both cores. At most
// two buffers are in flight; a slow disk then slows the session down
// rather than letting memory grow.
//
// A recording with nothing to write holds no buffer and no goroutine, so
// a thousand idle sessions do not each keep a bulk-sized buffer and a
// sleeping writer: buffers are taken when bytes arrive and given back once
// written, and the writing goroutine runs only while a handed-over buffer
// waits (it is started by the handoff that finds none running). The first
// buffer after a flush is small (spoolWaitSize, plenty for what a terminal
// prints in a second); only after a buffer filled up is the next one of
// the full size.
//
// A bulk buffer starts at the offset within it whose address matches, modulo
// align, the file offset its first byte goes to, so that a full buffer
// covers whole blocks of the file, in memory aligned as the blocks are: the
// file can then take it without the page cache (castFile).
type spool struct {
	dst   sink
	size  int    // the bulk buffer size
	align int    // the block size bulk buffers line up with; 0: none
	end   int64  // the file offset just past the last byte buffered
	buf   []byte // the pool buffer cur lies in; nil while nothing is buffered
	cur   []byte // the bytes buffered, a slice of buf; owned by the caller
	bulk  bool   // the last buffer handed over was full: take a large one next

	mu      sync.Mutex
	cond    sync.Cond // signalled when next is taken and when writing ends
	next    chunk     // handed over, not yet taken by the writer; buf nil if none
	writing bool      // the writing goroutine runs
	err     error     // the first write error, sticky
}

// chunk is a buffer handed to the writing goroutine: data, a slice of the
// pool buffer buf, goes to the file at off.
type chunk struct {
	buf, data []byte
	off       int64
}

// sink takes the recording's bytes in order, each call continuing where
// the last one ended: off is the file offset of p's first byte.
type sink interface {
	writeAt(p []byte, off int64) error
}

// seqSink is a sink that writes to an io.Writer in order (tests).
type seqSink struct{ w io.Writer }

func (s seqSink) writeAt(p []byte, _ int64) error {
	_, err := s.w.Write(p)
	return err
}

// spoolWaitSize is the first buffer's size after a flush.
const spoolWaitSize = 4 << 10

// spoolPools hold buffers of the two sizes the recorder uses; a spool of
// another size (tests) allocates its own.
var spoolPools = map[int]*sync.Pool{
	spoolWaitSize: {New: func() any { b := make([]byte, 0, spoolWaitSize); return &b }},
	bufferSize:    {New: func() any { b := make([]byte, 0, bufferSize); return &b }},
}

func getBuffer(size int) []byte {
	if p := spoolPools[size]; p != nil {
		return (*p.Get().(*[]byte))[:0]
	}
	return make([]byte, 0, size)
}

func putBuffer(b []byte) {
	if p := spoolPools[cap(b)]; p != nil {
		b = b[:0]
		p.Put(&b)
	}
}

// newSpool returns a spool writing to dst from file offset start, with bulk
// buffers lined up to align (0: not).
func newSpool(dst sink, size, align int, start int64) *spool {
	s := &spool{dst: dst, size: size, align: align, end: start}
	s.cond.L = &s.mu
	return s
}

// run writes handed-over buffers until none waits; s.mu is not held.
func (s *spool) run() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.next.buf != nil {
		c, failed := s.next, s.err != nil
		s.next = chunk{}
		s.cond.Broadcast()
		s.mu.Unlock()
		var err error
		if !failed {
			err = s.dst.writeAt(c.data, c.off)
		}
		putBuffer(c.buf)
		s.mu.Lock()
		if err != nil && s.err == nil {
			s.err = err
		}
	}
	s.writing = false
	s.cond.Broadcast()
}

// Err returns the first write error.
func (s *spool) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Write appends p, handing the buffer over whenever it is full. It returns
// the first error the writing goroutine met, if any.
func (s *spool) Write(p []byte) (int, error) {
	if err := s.Err(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		if s.cur == nil {
			s.take(len(p))
		}
		k := min(len(p), cap(s.cur)-len(s.cur))
		s.cur = append(s.cur, p[:k]...)
		s.end += int64(k)
		p = p[k:]
		if len(s.cur) == cap(s.cur) {
			s.handoff(true)
		}
	}
	return n, nil
}

// take takes the buffer for the next bytes, want of them: a small one after
// a flush, unless they or the last buffer handed over need a large one.
func (s *spool) take(want int) {
	size := min(spoolWaitSize, s.size)
	if s.bulk || want > size {
		size = s.size
	}
	s.buf = getBuffer(size)
	r := 0
	if size == s.size && s.align > 0 {
		r = lineUp(s.buf, s.end, s.align)
	}
	s.cur = s.buf[r:r]
}

// room returns the free part of the current buffer, empty but with its
// capacity, for the caller to build bytes in place, without a copy
// (Writer.event escapes output into it); commit then counts what was
// built. A buffer is taken if none is held, as Write would for want bytes.
// The caller must check Err first, as Write does.
func (s *spool) room(want int) []byte {
	if s.cur == nil {
		s.take(want)
	}
	return s.cur[len(s.cur):len(s.cur):cap(s.cur)]
}

// commit adds to the buffer the k bytes built after it through room, and
// hands it over if that filled it.
func (s *spool) commit(k int) {
	s.cur = s.cur[:len(s.cur)+k]
	s.end += int64(k)
	if len(s.cur) == cap(s.cur) {
		s.handoff(true)
	}
}

// Buffered is how many bytes wait in the current buffer.
func (s *spool) Buffered() int { return len(s.cur) }

// Flush hands the current buffer over without waiting for it to be
// written: the file is at most this buffer behind once the goroutine runs.
func (s *spool) Flush() error {
	if len(s.cur) > 0 {
		s.handoff(false)
	}
	return s.Err()
}

// handoff gives cur to the writer, waiting while another buffer still
// waits for it; full says whether cur was full.
func (s *spool) handoff(full bool) {
	s.mu.Lock()
	for s.next.buf != nil {
		s.cond.Wait()
	}
	s.next = chunk{buf: s.buf, data: s.cur, off: s.end - int64(len(s.cur))}
	if !s.writing {
		s.writing = true
		go s.run()
	}
	s.mu.Unlock()
	s.buf, s.cur, s.bulk = nil, nil, full
}

// lineUp returns the offset in b at which a byte's address is congruent,
// modulo align (a power of two), to the file offset off.
func lineUp(b []byte, off int64, align int) int {
	addr := int64(uintptr(unsafe.Pointer(unsafe.SliceData(b[:1]))))
	return int((off - addr) & int64(align-1))
}

// Close writes what is left and waits until everything is written.
func (s *spool) Close() error {
	if len(s.cur) > 0 {
		s.handoff(false)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.writing {
		s.cond.Wait()
	}
	return s.err
}
