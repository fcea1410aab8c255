package recorder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestEventTimesHaveSixDecimalsAndNeverGoBack(t *testing.T) {
	dir := t.TempDir()
	times := []time.Time{
		testStart, // Create
		testStart.Add(1500 * time.Microsecond),
		testStart.Add(62*time.Second + 7*time.Microsecond),
		testStart.Add(time.Second), // clock stepped back
		testStart.Add(-time.Hour),
	}
	var mu sync.Mutex
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := times[0]
		times = times[1:]
		return t
	}
	w, err := Create(dir, testHeader("sess_0123456789"), Options{Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"a", "b", "c", "d"} {
		if err := w.Output([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, w)
	raw, _ := os.ReadFile(w.Path())
	want := `[0.001500, "o", "a"]
[62.000007, "o", "b"]
[62.000007, "o", "c"]
[62.000007, "o", "d"]
`
	if _, events, _ := strings.Cut(string(raw), "\n"); events != want {
		t.Fatalf("events:\n%s\nwant:\n%s", events, want)
	}
}

func TestEmptyChunksWriteNothing(t *testing.T) {
	w := newTestWriter(t, t.TempDir(), &fakeClock{t: testStart, step: time.Second})
	for _, err := range []error{w.Output(nil), w.Input([]byte{}), w.Resize(0, 24), w.Resize(80, -1)} {
		if err != nil {
			t.Fatal(err)
		}
	}
	mustClose(t, w)
	if _, evs := readCast(t, w.Path()); len(evs) != 0 {
		t.Fatalf("events %v, want none", evs)
	}
}

func TestEventsOfEachKind(t *testing.T) {
	w := newTestWriter(t, t.TempDir(), &fakeClock{t: testStart, step: time.Second})
	if err := w.Output([]byte("out")); err != nil {
		t.Fatal(err)
	}
	if err := w.Input([]byte("in")); err != nil {
		t.Fatal(err)
	}
	if err := w.Resize(132, 43); err != nil {
		t.Fatal(err)
	}
	if n, err := io.WriteString(w.OutputWriter(), "via writer"); err != nil || n != 10 {
		t.Fatalf("OutputWriter: %d, %v", n, err)
	}
	if _, err := io.WriteString(w.InputWriter(), "typed"); err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	_, evs := readCast(t, w.Path())
	want := []castEvent{{1, "o", "out"}, {2, "i", "in"}, {3, "r", "132x43"}, {4, "o", "via writer"}, {5, "i", "typed"}}
	if fmt.Sprint(evs) != fmt.Sprint(want) {
		t.Fatalf("events %v, want %v", evs, want)
	}
}

func BenchmarkOutput(b *testing.B) {
	dir := b.TempDir()
	w, err := Create(dir, testHeader("sess_0123456789"), Options{})
	if err != nil {
		b.Fatal(err)
	}
	// Typical terminal output: text, line ends, colour escapes, some UTF-8.
	line := []byte("drwxr-xr-x  2 root root 4096 Mar 14 15:09 \x1b[01;34mcafé\x1b[0m \"q\"\r\n")
	chunk := bytes.Repeat(line, 32<<10/len(line)+1)[:32<<10]
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if err := w.Output(chunk); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if _, err := w.Close(); err != nil {
		b.Fatal(err)
	}
}

// TestOutputEscapedInPlaceAcrossBuffers: output is escaped straight into
// the spool's buffers, in pieces bounded by the room left. Chunks of every
// kind and size, control bytes that grow six times (\u0001), runes cut
// between chunks and bytes that are not UTF-8, with input and resize
// events and flushes between them, must come back from the file exactly as
// the portable escape of the same stream says, with Close's digest the
// file's.
func TestOutputEscapedInPlaceAcrossBuffers(t *testing.T) {
	w := newTestWriter(t, t.TempDir(), &fakeClock{t: testStart, step: time.Millisecond})
	rng := rand.New(rand.NewPCG(3, 5))
	var h heldRune
	var want strings.Builder
	for i := range 80 {
		var p []byte
		switch rng.IntN(4) {
		case 0:
			p = bytes.Repeat([]byte{0x01}, 1+rng.IntN(2*bufferSize)) // six bytes each
		case 1:
			p = randomOutput(rng, 1+rng.IntN(300))
		default:
			p = randomOutput(rng, 1+rng.IntN(3*bufferSize))
		}
		want.Write(appendEscaped(nil, p, &h))
		if err := w.Output(p); err != nil {
			t.Fatal(err)
		}
		switch i % 5 {
		case 1:
			if err := w.Input([]byte("k")); err != nil {
				t.Fatal(err)
			}
		case 2:
			if err := w.Resize(100, 30); err != nil {
				t.Fatal(err)
			}
		case 3:
			w.mu.Lock()
			w.flush()
			w.mu.Unlock()
		}
	}
	if h.n > 0 {
		want.WriteString(replacement)
	}
	sum := mustClose(t, w)
	raw, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	_, evs := parseCast(t, raw)
	expect := decodeJSON(t, want.String())
	if got := concat(evs, "o"); got != expect {
		t.Fatalf("the cast holds %d bytes of output, want %d (first difference at %d)", len(got), len(expect), firstDiff(got, expect))
	}
	if got := concat(evs, "i"); got != strings.Repeat("k", 16) {
		t.Fatalf("input %q", got)
	}
	if s := sha256.Sum256(raw); hex.EncodeToString(s[:]) != sum {
		t.Fatalf("Close returned %s, the file's SHA-256 is %x", sum, s)
	}
}
