package gateway

import (
	"bytes"
	"io"
	"net"
	"path/filepath"
	"sync/atomic"
	"testing"
)

// bursts is a reader whose data arrives in bursts: a Read returns what is
// left of the current burst, up to len(p), and moves to the next burst only
// once it is drained, as x/crypto's channel buffer does with what the host
// sent at once. It notes the size of every buffer it is given.
type bursts struct {
	queue [][]byte
	sizes []int
}

func (b *bursts) Read(p []byte) (int, error) {
	b.sizes = append(b.sizes, len(p))
	for len(b.queue) > 0 && len(b.queue[0]) == 0 {
		b.queue = b.queue[1:]
	}
	if len(b.queue) == 0 {
		return 0, io.EOF
	}
	n := copy(p, b.queue[0])
	b.queue[0] = b.queue[0][n:]
	return n, nil
}

// TestPumpWaitsSmallGrowsUnderBulkShrinksAfter: a pump reads with its
// small buffer, switches to the bulk one when a read fills it, goes back
// when a read comes back short, and delivers every byte in order.
func TestPumpWaitsSmallGrowsUnderBulkShrinksAfter(t *testing.T) {
	bulk := bytes.Repeat([]byte("0123456789abcdef"), 300<<10/16) // 300 KiB
	src := &bursts{queue: [][]byte{[]byte("prompt$ "), append([]byte(nil), bulk...), []byte("bye")}}
	var dst bytes.Buffer
	var n atomic.Int64
	var tapped int
	err := pump(&dst, src, &n, func(p []byte) ([]byte, error) { tapped += len(p); return p, nil })
	if err != nil {
		t.Fatal(err)
	}
	want := "prompt$ " + string(bulk) + "bye"
	if dst.String() != want || n.Load() != int64(len(want)) || tapped != len(want) {
		t.Fatalf("delivered %d bytes (counted %d, tapped %d), want %d in order", dst.Len(), n.Load(), tapped, len(want))
	}
	w, b := pumpWaitSize, pumpBulkSize
	// prompt (short), bulk's first 2 KiB (full: grow), two full bulk
	// reads, the rest (short: shrink), bye, EOF.
	wantSizes := []int{w, w, b, b, b, w, w}
	if len(src.sizes) != len(wantSizes) {
		t.Fatalf("read sizes %v, want %v", src.sizes, wantSizes)
	}
	for i := range wantSizes {
		if src.sizes[i] != wantSizes[i] {
			t.Fatalf("read sizes %v, want %v", src.sizes, wantSizes)
		}
	}
}

// unixPair returns both ends of a connected Unix stream socket: what one
// end writes is queued at the other at once, which makes the reads below
// deterministic.
func unixPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	w, err := net.Dial("unix", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	r := <-accepted
	if r == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { w.Close(); r.Close() })
	return r, w
}

// TestBurstReaderBuffersOnlyWhatIsQueued: reading 4 KiB at a time, as
// x/crypto does, bulk data goes through the large buffer, every byte
// arrives in order, and once the socket is drained the reader holds no
// buffer; reading an empty socket that way does not wait.
func TestBurstReaderBuffersOnlyWhatIsQueued(t *testing.T) {
	rc, wc := unixPair(t)
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i*7 + i>>12)
	}
	wrote := make(chan error, 1)
	go func() {
		_, err := wc.Write(data)
		wrote <- err
	}()
	br := newBurstReader(rc)
	if br.raw == nil {
		t.Fatal("a Unix socket has a descriptor")
	}
	var got []byte
	buffered := false
	p := make([]byte, 4096)
	for len(got) < len(data) {
		k, err := br.Read(p)
		if err != nil {
			t.Fatalf("after %d bytes: %v", len(got), err)
		}
		got = append(got, p[:k]...)
		buffered = buffered || br.buf != nil
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatal("the bytes read differ from those written")
	}
	if !buffered {
		t.Error("1 MiB of queued data never went through the large buffer")
	}
	if br.buf != nil {
		t.Fatal("a drained reader still holds its large buffer")
	}
	// Nothing queued: fill returns at once, holding nothing.
	br.more = true
	br.fill()
	if br.buf != nil || br.more {
		t.Fatal("fill on an empty socket took a buffer")
	}
	// A keystroke goes straight into the caller's buffer.
	if _, err := wc.Write([]byte("z")); err != nil {
		t.Fatal(err)
	}
	if k, err := br.Read(p); err != nil || string(p[:k]) != "z" || br.buf != nil {
		t.Fatalf("Read = %q, %v; holds a buffer: %v", p[:k], err, br.buf != nil)
	}
	wc.Close()
	if _, err := br.Read(p); err != io.EOF {
		t.Fatalf("Read after the peer closed = %v, want EOF", err)
	}
}
