package recorder

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"
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
	s := newSpool(seqSink{dst}, 64, 0, 0)
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
	s := newSpool(seqSink{dst}, 64, 0, 0)
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

// spoolIdle reports whether the spool holds no buffer and runs no writer.
func spoolIdle(s *spool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur == nil && s.next.buf == nil && !s.writing
}

// TestSpoolHoldsNothingWhenIdle: a few bytes take a small buffer, a full
// buffer makes the next one large, a flush after a quiet spell goes back
// to small, and once written, the spool holds no buffer and no goroutine.
func TestSpoolHoldsNothingWhenIdle(t *testing.T) {
	dst := &slowWriter{}
	s := newSpool(seqSink{dst}, bufferSize, 0, 0)
	if !spoolIdle(s) {
		t.Fatal("a new spool holds a buffer or a writer")
	}
	var want bytes.Buffer
	write := func(p []byte) {
		t.Helper()
		want.Write(p)
		if _, err := s.Write(p); err != nil {
			t.Fatal(err)
		}
	}
	write([]byte("$ ls\r\n"))
	if cap(s.cur) != spoolWaitSize {
		t.Fatalf("a keystroke took a %d-byte buffer, want %d", cap(s.cur), spoolWaitSize)
	}
	// Bulk: the small buffer fills, and the next one is large.
	write(bytes.Repeat([]byte("y"), spoolWaitSize+100))
	if cap(s.cur) != bufferSize {
		t.Fatalf("after a full buffer the next is %d bytes, want %d", cap(s.cur), bufferSize)
	}
	write(bytes.Repeat([]byte("z"), 3*bufferSize))
	s.Flush()
	waitIdle(t, s)
	write([]byte("$ "))
	if cap(s.cur) != spoolWaitSize {
		t.Fatalf("after a flush the buffer is %d bytes, want %d", cap(s.cur), spoolWaitSize)
	}
	s.Flush()
	waitIdle(t, s)
	dst.mu.Lock()
	got := dst.b.String()
	dst.mu.Unlock()
	if got != want.String() {
		t.Fatalf("wrote %d bytes, want %d in order", len(got), want.Len())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
}

func waitIdle(t *testing.T, s *spool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !spoolIdle(s) {
		if time.Now().After(deadline) {
			t.Fatal("the spool still holds a buffer or a writer after its flush")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestWriterKeepsNoBulkEventBuffer: after a large output the writer keeps
// at most 4 KiB for the next event.
func TestWriterKeepsNoBulkEventBuffer(t *testing.T) {
	w, _ := openedWriter(t, time.Hour)
	if err := w.Output(bytes.Repeat([]byte("bulk "), 100<<10)); err != nil {
		t.Fatal(err)
	}
	w.mu.Lock()
	kept := cap(w.buf)
	w.mu.Unlock()
	if kept > 4<<10 {
		t.Fatalf("the writer keeps a %d-byte event buffer after bulk output", kept)
	}
	if err := w.Output([]byte("$ ")); err != nil {
		t.Fatal(err)
	}
}
