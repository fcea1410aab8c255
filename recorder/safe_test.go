package recorder

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"unicode/utf8"
)

// TestUnsafeMasksAgreeWithTable: every byte value at every position of a
// block, with a length that leaves a partial block, marks exactly the bytes
// jsonSafe rejects; the scan stops at the last whole block and at the end
// of masks. Without AVX2 the scan must do nothing at all.
func TestUnsafeMasksAgreeWithTable(t *testing.T) {
	var masks [4]uint32
	if !haveAVX2 {
		if n := unsafeMasks(make([]byte, 256), masks[:]); n != 0 {
			t.Fatalf("without AVX2 the scan did %d blocks", n)
		}
		return
	}
	for c := range 256 {
		for k := range 3 * 32 {
			p := bytes.Repeat([]byte{'a'}, 3*32+17)
			p[k] = byte(c)
			clear(masks[:])
			masks[3] = 0xdeadbeef // past the last whole block: untouched
			if n := unsafeMasks(p, masks[:]); n != 3 {
				t.Fatalf("did %d blocks of %d bytes, want 3", n, len(p))
			}
			for j := range 3 * 32 {
				got := masks[j/32]>>(j%32)&1 == 1
				if want := !jsonSafe[p[j]]; got != want {
					t.Fatalf("byte %#x at %d: bit %d of block %d is %v, want %v", c, k, j%32, j/32, got, want)
				}
			}
			if masks[3] != 0xdeadbeef {
				t.Fatalf("the partial block was scanned")
			}
		}
	}
	if n := unsafeMasks(make([]byte, 10*32), masks[:2]); n != 2 {
		t.Fatalf("with room for 2 masks the scan did %d blocks", n)
	}
	if n := unsafeMasks(make([]byte, 31), masks[:]); n != 0 {
		t.Fatalf("31 bytes: %d blocks", n)
	}
}

// randomOutput returns n bytes of what a terminal might get: text, line
// ends, escapes, quotes, runes of every length (some cut or broken), and
// bytes that are not UTF-8, in runs of random length so that every kind
// lands on block and window edges.
func randomOutput(rng *rand.Rand, n int) []byte {
	pieces := [][]byte{
		[]byte("plain text of a log line 0123456789"), []byte("\r\n"), []byte("\n"),
		[]byte("\x1b[01;34m"), []byte(`"`), []byte(`\`), []byte("\t"), []byte("\x00\x7f"),
		[]byte("é"), []byte("☃"), []byte("𝄞"), []byte("日本語"), []byte("\xff"), []byte("\xe2\x82"),
		[]byte("\xed\xa0\x80"), []byte("\xf0\x9f"), []byte("\uFFFD"),
	}
	var b []byte
	for len(b) < n {
		if rng.IntN(3) == 0 {
			b = append(b, bytes.Repeat([]byte{'x'}, rng.IntN(200))...)
		}
		b = append(b, pieces[rng.IntN(len(pieces))]...)
	}
	return b[:n]
}

// TestEscapeBlockScanAgreesWithPortable: the block scan's way through a
// chunk gives the same bytes, and holds the same cut rune, as the portable
// loop, for chunks of every size around the block (32) and window (4 KiB)
// sizes, cut anywhere.
func TestEscapeBlockScanAgreesWithPortable(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	sizes := []int{63, 64, 65, 95, 96, 97, 4095, 4096, 4097, 4096 + 31, 8192 + 64, 16 << 10}
	for range 300 {
		sizes = append(sizes, rng.IntN(20000))
	}
	for _, n := range sizes {
		in := randomOutput(rng, n)
		var hb, hp heldRune
		cut := 0
		if n > 0 {
			cut = rng.IntN(n)
		}
		var got, want []byte
		for _, part := range [][]byte{in[:cut], in[cut:]} {
			got = appendEscapedScan(got, part, &hb, true)
			want = appendEscapedScan(want, part, &hp, false)
		}
		if !bytes.Equal(got, want) || hb != hp {
			i := 0
			for i < min(len(got), len(want)) && got[i] == want[i] {
				i++
			}
			t.Fatalf("%d bytes cut at %d: block scan and portable loop part at output byte %d: %q vs %q (held %v vs %v)",
				n, cut, i, got[i:min(len(got), i+20)], want[i:min(len(want), i+20)], hb, hp)
		}
		if s := decodeJSON(t, string(got)); utf8.Valid(in) && hb.n == 0 && s != string(in) {
			t.Fatalf("%d bytes: valid input did not come back", n)
		}
	}
}

// BenchmarkEscapePlainText: lines of printable ASCII, as in the
// throughput benchmark's file (logs, listings).
func BenchmarkEscapePlainText(b *testing.B) {
	benchEscape(b, "warden throughput line of text 0123456789 warden throughput line of text 0123456789 \n")
}
