// Warden: checks that ciphers and channels keep no large packet buffer
// once a bulk transfer is over (packetbuf_warden.go, README.warden.md).

package ssh

import (
	"bytes"
	"crypto"
	"crypto/rand"
	"io"
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
		return cap(c.packetData), c.bigData != nil
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
				sent = append(sent, append([]byte(nil), p...)) // the stream cipher encrypts p in place
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
