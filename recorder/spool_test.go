package recorder

import (
	"bytes"
	"errors"
	"sync"
	"testing"
)

// slowWriter records what it is given, optionally failing after n bytes.
type slowWriter struct {
	mu      sync.Mutex
	b       bytes.Buffer
	failAt  int
	written int
}

var errDisk = errors.New("disk full")

func (w *slowWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failAt > 0 && w.written+len(p) > w.failAt {
		return 0, errDisk
	}
	w.written += len(p)
	return w.b.Write(p)
}

func TestSpoolWritesEverythingInOrder(t *testing.T) {
	dst := &slowWriter{}
	s := newSpool(dst, 64)
	var want bytes.Buffer
	for i := 0; i < 1000; i++ {
		chunk := bytes.Repeat([]byte{byte('a' + i%26)}, i%150)
		want.Write(chunk)
		if _, err := s.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if i%97 == 0 {
			s.Flush()
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(dst.b.Bytes(), want.Bytes()) {
		t.Fatalf("spool wrote %d bytes, want %d in the same order", dst.b.Len(), want.Len())
	}
}

func TestSpoolErrorIsSticky(t *testing.T) {
	dst := &slowWriter{failAt: 100}
	s := newSpool(dst, 64)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = s.Write(make([]byte, 64))
	}
	if !errors.Is(err, errDisk) {
		t.Fatalf("write error never surfaced: %v", err)
	}
	if _, err2 := s.Write([]byte("x")); !errors.Is(err2, errDisk) {
		t.Fatalf("error not sticky: %v", err2)
	}
	if err := s.Close(); !errors.Is(err, errDisk) {
		t.Fatalf("Close = %v", err)
	}
}
