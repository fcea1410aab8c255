// Warden: checks and measures the patched chacha20-poly1305 packet cipher
// (README.warden.md) against x/crypto's own chacha20 code path.

package ssh

import (
	"bytes"
	"crypto/rand"
	"io"
	"testing"
)

func chachaPair(t testing.TB, generic bool) (w, r *chacha20Poly1305Cipher) {
	key := make([]byte, 64)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	pw, err := newChaCha20Cipher(key, nil, nil, DirectionAlgorithms{})
	if err != nil {
		t.Fatal(err)
	}
	pr, _ := newChaCha20Cipher(key, nil, nil, DirectionAlgorithms{})
	w, r = pw.(*chacha20Poly1305Cipher), pr.(*chacha20Poly1305Cipher)
	if generic {
		w.content, r.content = nil, nil
	}
	return w, r
}

// TestChaChaPatchedMatchesGeneric: for payloads of many sizes and sequence
// numbers, the patched writer's packets are byte for byte those of the
// generic one (same random padding), and each reader opens the other's.
func TestChaChaPatchedMatchesGeneric(t *testing.T) {
	pw, pr := chachaPair(t, false)
	gw, gr := chachaPair(t, false)
	*gw, *gr = *pw, *pr // same keys
	gw.content, gr.content, gw.buf, gr.buf = nil, nil, make([]byte, 256), make([]byte, 256)
	if pw.content == nil {
		t.Skip("no AEAD on this architecture: the patch is inactive")
	}
	for _, n := range []int{1, 15, 16, 17, 63, 64, 65, 255, 256, 1000, 4096, 32768, 65536, 200000} {
		for _, seq := range []uint32{0, 1, 7, 1 << 31, ^uint32(0)} {
			payload := make([]byte, n)
			rand.Read(payload)
			pad := make([]byte, 64)
			rand.Read(pad)
			var p, g bytes.Buffer
			if err := pw.writeCipherPacket(seq, &p, bytes.NewReader(pad), payload); err != nil {
				t.Fatal(err)
			}
			if err := gw.writeCipherPacket(seq, &g, bytes.NewReader(pad), payload); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(p.Bytes(), g.Bytes()) {
				t.Fatalf("payload %d seq %d: patched packet differs from generic", n, seq)
			}
			for _, r := range []*chacha20Poly1305Cipher{pr, gr} {
				got, err := r.readCipherPacket(seq, bytes.NewReader(p.Bytes()))
				if err != nil || !bytes.Equal(got, payload) {
					t.Fatalf("payload %d seq %d: read back %v", n, seq, err)
				}
			}
			// A flipped bit anywhere fails the MAC, before decryption.
			bad := bytes.Clone(p.Bytes())
			bad[len(bad)/2] ^= 1
			if _, err := pr.readCipherPacket(seq, bytes.NewReader(bad)); err == nil {
				t.Fatalf("payload %d seq %d: corrupted packet accepted", n, seq)
			}
		}
	}
}

func benchmarkChaCha(b *testing.B, generic bool) {
	w, r := chachaPair(b, generic)
	payload := make([]byte, 32768)
	var pkt bytes.Buffer
	b.SetBytes(int64(len(payload)))
	for i := 0; i < b.N; i++ {
		pkt.Reset()
		if err := w.writeCipherPacket(uint32(i), &pkt, rand.Reader, payload); err != nil {
			b.Fatal(err)
		}
		if _, err := r.readCipherPacket(uint32(i), io.Reader(&pkt)); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChaChaPacket: one 32 KiB packet sealed and opened.
func BenchmarkChaChaPacket(b *testing.B) {
	b.Run("patched", func(b *testing.B) { benchmarkChaCha(b, false) })
	b.Run("generic", func(b *testing.B) { benchmarkChaCha(b, true) })
}
