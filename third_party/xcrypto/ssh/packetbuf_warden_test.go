// Warden: checks that ciphers and channels keep no large packet buffer
// once a bulk transfer is over (packetbuf_warden.go, README.warden.md).

package ssh

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"testing"
)

// heldBuffers is what a cipher keeps between packets: its small buffer's
// capacity and whether it still holds a large one.
func heldBuffers(t *testing.T, c packetCipher) (small int, big bool) {
	switch c := c.(type) {
	case *gcmCipher:
		return cap(c.buf), c.big != nil
	case *chacha20Poly1305Cipher:
		return cap(c.buf), c.big != nil
	case *streamPacketCipher:
		return max(cap(c.packetData), cap(c.writeData)), c.bigData != nil || c.bigWrite != nil
	}
	t.Fatalf("unexpected cipher %T", c)
	return 0, false
}

// TestCiphersKeepNoBigBufferAfterBulk: after a 32 KiB packet and a 200 KB
// one, written and read, then a small one, each cipher, writing and
// reading, holds only a buffer of at most packetBufKeep bytes; every
// packet still reads back as written.
func TestCiphersKeepNoBigBufferAfterBulk(t *testing.T) {
	kr := &kexResult{Hash: crypto.SHA256}
	for _, algs := range []DirectionAlgorithms{
		{Cipher: CipherAES128GCM, compression: compressionNone},
		{Cipher: CipherChaCha20Poly1305, compression: compressionNone},
		{Cipher: CipherAES128CTR, MAC: HMACSHA256, compression: compressionNone},
		{Cipher: CipherAES128CTR, MAC: HMACSHA256ETM, compression: compressionNone},
	} {
		t.Run(algs.Cipher+"/"+algs.MAC, func(t *testing.T) {
			w, err := newPacketCipher(clientKeys, algs, kr)
			if err != nil {
				t.Fatal(err)
			}
			r, err := newPacketCipher(clientKeys, algs, kr)
			if err != nil {
				t.Fatal(err)
			}
			var wire bytes.Buffer
			var sent [][]byte
			for seq, n := range []int{32 << 10, 200000, 40, 32 << 10, 1, 500} {
				p := make([]byte, n)
				rand.Read(p)
				sent = append(sent, append([]byte(nil), p...)) // upstream, the stream cipher encrypted p in place
				if err := w.writeCipherPacket(uint32(seq), &wire, rand.Reader, p); err != nil {
					t.Fatal(err)
				}
				if small, big := heldBuffers(t, w); big || small > packetBufKeep {
					t.Fatalf("writer after a %d-byte packet holds %d bytes, large buffer %v", n, small, big)
				}
			}
			for seq, want := range sent {
				got, err := r.readCipherPacket(uint32(seq), &wire)
				if err != nil || !bytes.Equal(got, want) {
					t.Fatalf("packet %d (%d bytes): read back %d bytes, %v", seq, len(want), len(got), err)
				}
			}
			// The reader gives its large buffer back when it starts the
			// next read, before it waits for data: an idle connection's.
			if _, err := r.readCipherPacket(uint32(len(sent)), bytes.NewReader(nil)); err != io.EOF {
				t.Fatalf("read of nothing: %v", err)
			}
			if small, big := heldBuffers(t, r); big || small > packetBufKeep {
				t.Fatalf("idle reader holds %d bytes, large buffer %v", small, big)
			}
		})
	}
}

// TestChannelKeepsNoBigPacketAfterBulk: a channel that wrote 1 MB, then a
// line, keeps only a small packet for later writes, and the data arrive
// whole and in order.
func TestChannelKeepsNoBigPacketAfterBulk(t *testing.T) {
	reader, writer, mux := channelPair(t)
	defer reader.Close()
	defer writer.Close()
	defer mux.Close()

	bulk := make([]byte, 1<<20)
	rand.Read(bulk)
	line := []byte("bulk-42\n")
	got := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(io.LimitReader(reader, int64(len(bulk)+len(line))))
		got <- b
	}()
	for _, data := range [][]byte{bulk, line} {
		if _, err := writer.Write(data); err != nil {
			t.Fatal(err)
		}
	}
	if b := <-got; !bytes.Equal(b, append(bulk, line...)) {
		t.Fatalf("read %d bytes, not what was written", len(b))
	}
	writer.writeMu.Lock()
	kept := cap(writer.packetPool[0])
	writer.writeMu.Unlock()
	if kept > packetBufKeep {
		t.Fatalf("channel keeps a %d-byte packet after bulk", kept)
	}
}

// shortWriter accepts at most limit bytes in all, then fails.
type shortWriter struct {
	bytes.Buffer
	limit  int
	writes int
}

func (s *shortWriter) Write(p []byte) (int, error) {
	s.writes++
	if s.Len()+len(p) > s.limit {
		n := s.limit - s.Len()
		s.Buffer.Write(p[:n])
		return n, io.ErrClosedPipe
	}
	return s.Buffer.Write(p)
}

// TestFlushWriterHoldsNoBufferWhenFlushed: the transport's writer passes
// every byte in order, with as few writes as bufio.Writer (small pieces
// coalesced until Flush, a large piece written directly), holds a buffer
// only between a Write and its Flush, and keeps a write error.
func TestFlushWriterHoldsNoBufferWhenFlushed(t *testing.T) {
	var out shortWriter
	out.limit = 1 << 30
	f := newFlushWriter(&out)
	var want []byte
	for _, n := range []int{4, 100, 0, 5000, 4, 32 << 10, 3, 4096, 4095, 1} {
		p := make([]byte, n)
		rand.Read(p)
		want = append(want, p...)
		if k, err := f.Write(p); k != n || err != nil {
			t.Fatalf("write %d: %d, %v", n, k, err)
		}
		if err := f.Flush(); err != nil {
			t.Fatal(err)
		}
		if f.buf != nil || f.n != 0 {
			t.Fatalf("after Flush of %d bytes: buffer %v, %d waiting", n, f.buf != nil, f.n)
		}
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Fatal("bytes out differ from bytes in")
	}
	// Two small writes and a flush are one write below, as in bufio.
	out.writes = 0
	f.Write([]byte("abcd"))
	f.Write([]byte("efgh"))
	if out.writes != 0 || f.buf == nil {
		t.Fatalf("small writes reached the socket (%d) or were not buffered", out.writes)
	}
	f.Flush()
	if out.writes != 1 || !bytes.HasSuffix(out.Bytes(), []byte("abcdefgh")) {
		t.Fatalf("flush: %d writes", out.writes)
	}
	// An error sticks.
	bad := newFlushWriter(&shortWriter{limit: 10})
	bad.Write(make([]byte, 8))
	if err := bad.Flush(); err != nil {
		t.Fatal(err)
	}
	bad.Write(make([]byte, 8))
	if err := bad.Flush(); err == nil {
		t.Fatal("no error past the limit")
	}
	if _, err := bad.Write([]byte{1}); err == nil {
		t.Fatal("the error did not stick")
	}
}

// TestTransportIdleAfterBulkHoldsSmallBuffers: a transport that wrote and
// read packets of up to 200 KB, then small ones, holds no write buffer
// and no large packet buffer, writing or reading.
func TestTransportIdleAfterBulkHoldsSmallBuffers(t *testing.T) {
	a, b := net.Pipe()
	ta := newTransport(a, rand.Reader, true)
	tb := newTransport(b, rand.Reader, false)
	kr := &kexResult{Hash: crypto.SHA256}
	algs := DirectionAlgorithms{Cipher: CipherAES128GCM, compression: compressionNone}
	for _, st := range []*connectionState{&ta.writer, &tb.reader} {
		c, err := newPacketCipher(clientKeys, algs, kr)
		if err != nil {
			t.Fatal(err)
		}
		st.packetCipher = c
	}
	sizes := []int{200000, 32 << 10, 10, 1}
	done := make(chan error, 1)
	go func() {
		for _, n := range sizes {
			p, err := tb.readPacket()
			if err != nil || len(p) != n {
				done <- fmt.Errorf("read %d bytes, want %d: %v", len(p), n, err)
				return
			}
		}
		done <- nil
	}()
	for _, n := range sizes {
		p := make([]byte, n)
		p[0] = msgIgnore + 100 // not ignored, not a key change
		if err := ta.writePacket(p); err != nil {
			t.Fatal(err)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if ta.bufWriter.buf != nil {
		t.Fatal("the writer holds its buffer while idle")
	}
	if small, big := heldBuffers(t, ta.writer.packetCipher); big || small > packetBufKeep {
		t.Fatalf("writer's cipher holds %d bytes, large buffer %v", small, big)
	}
	// The reader's last packet was small: its large buffer went back
	// when that packet's read began.
	if small, big := heldBuffers(t, tb.reader.packetCipher); big || small > packetBufKeep {
		t.Fatalf("reader's cipher holds %d bytes, large buffer %v", small, big)
	}
}

// segmentReader returns its segments one read at a time, as a socket
// returns what has arrived: at most one segment per read, and notes the
// size of each read's buffer.
type segmentReader struct {
	segs  [][]byte
	sizes []int
}

func (s *segmentReader) Read(p []byte) (int, error) {
	s.sizes = append(s.sizes, len(p))
	if len(s.segs) == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.segs[0])
	if s.segs[0] = s.segs[0][n:]; len(s.segs[0]) == 0 {
		s.segs = s.segs[1:]
	}
	return n, nil
}

// TestReadBufferWaitsSmall: the transport's reader passes every byte in
// order whatever the sizes read, takes its readBufSize buffer only after
// a read that filled its buffer (bulk), gives it back once drained, and so
// waits for the next packet through its readBufSmall buffer alone; a
// large read goes straight to the connection; the end of the stream comes
// after the last bytes.
func TestReadBufferWaitsSmall(t *testing.T) {
	bulk := make([]byte, 100000)
	rand.Read(bulk)
	line := []byte("bulk-42\r\n")
	src := &segmentReader{segs: [][]byte{append([]byte(nil), line...), append([]byte(nil), bulk...), append([]byte(nil), line...)}}
	b := newReadBuffer(src)
	var got []byte
	sizes := []int{4, 5, 16, 100, 3000, 5000, 40000, 1} // none readBufSize: its reads are the pool's
	for i := 0; ; i++ {
		p := make([]byte, sizes[i%len(sizes)])
		n, err := b.Read(p)
		got = append(got, p[:n]...)
		if b.p == b.n && b.big != nil {
			t.Fatalf("read %d: drained but holds its large buffer", i)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	want := append(append(append([]byte(nil), line...), bulk...), line...)
	if !bytes.Equal(got, want) {
		t.Fatalf("read %d bytes, not the %d written", len(got), len(want))
	}
	// The reads that waited for a packet after the bulk (the last line's,
	// and the one that met the end) used only the small buffer.
	last := src.sizes[len(src.sizes)-2:]
	for _, n := range last {
		if n == readBufSize {
			t.Fatalf("a waiting read used a %d-byte buffer (reads %v)", n, src.sizes)
		}
	}
	sawBig := false
	for _, n := range src.sizes {
		sawBig = sawBig || n == readBufSize
	}
	if !sawBig {
		t.Fatalf("bulk never read through the %d-byte buffer: %v", readBufSize, src.sizes)
	}
}

// TestBufferDropsReadPacket: once a channel's reader has read a packet to
// its end, the buffer no longer refers to it, even while the packet's
// element is still the list's only one (an idle channel).
func TestBufferDropsReadPacket(t *testing.T) {
	b := newBuffer()
	b.write(make([]byte, 32<<10))
	p := make([]byte, 5000)
	for total := 0; total < 32<<10; {
		n, err := b.Read(p)
		if err != nil {
			t.Fatal(err)
		}
		total += n
	}
	if b.head != b.tail || cap(b.head.buf) != 0 {
		t.Fatalf("the read packet is still referenced: head==tail %v, cap %d", b.head == b.tail, cap(b.head.buf))
	}
}
