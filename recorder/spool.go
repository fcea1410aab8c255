package recorder

import (
	"io"
	"sync"
)

// spool is the recorder's buffered writer. Full buffers go to one goroutine
// that feeds the file and the SHA-256, so the session's byte path never
// waits on hashing or the disk while a buffer is being filled: on bulk
// output the bridge's goroutine and the spool's run on both cores. At most
// two buffers are in flight; a slow disk then slows the session down
// rather than letting memory grow.
type spool struct {
	dst  io.Writer // the file and the hash
	size int
	cur  []byte

	full chan []byte // buffers to write, in order
	free chan []byte // written buffers, for reuse
	done chan struct{}

	mu  sync.Mutex
	err error // the first write error, sticky
}

func newSpool(dst io.Writer, size int) *spool {
	s := &spool{
		dst: dst, size: size, cur: make([]byte, 0, size),
		full: make(chan []byte, 1), free: make(chan []byte, 2), done: make(chan struct{}),
	}
	s.free <- make([]byte, 0, size)
	go s.run()
	return s
}

// run writes buffers until full is closed.
func (s *spool) run() {
	defer close(s.done)
	for b := range s.full {
		if s.Err() == nil {
			if _, err := s.dst.Write(b); err != nil {
				s.mu.Lock()
				s.err = err
				s.mu.Unlock()
			}
		}
		s.free <- b[:0]
	}
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
		k := min(len(p), s.size-len(s.cur))
		s.cur = append(s.cur, p[:k]...)
		p = p[k:]
		if len(s.cur) == s.size {
			s.handoff()
		}
	}
	return n, nil
}

// Buffered is how many bytes wait in the current buffer.
func (s *spool) Buffered() int { return len(s.cur) }

// Flush hands the current buffer over without waiting for it to be
// written: the file is at most this buffer behind once the goroutine runs.
func (s *spool) Flush() error {
	if len(s.cur) > 0 {
		s.handoff()
	}
	return s.Err()
}

func (s *spool) handoff() {
	s.full <- s.cur
	s.cur = <-s.free
}

// Close writes what is left and waits until everything is written.
func (s *spool) Close() error {
	if len(s.cur) > 0 {
		s.full <- s.cur
		s.cur = nil
	}
	close(s.full)
	<-s.done
	return s.Err()
}
