package recorder

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// directWorks reports whether files in dir take an aligned O_DIRECT write,
// as the recorder would make it.
func directWorks(t *testing.T, dir string) bool {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(dir, "probe"), os.O_WRONLY|os.O_CREATE|syscall.O_DIRECT, 0o600)
	if err != nil {
		return false
	}
	defer f.Close()
	b := make([]byte, 2*directAlign)
	b = b[lineUp(b, 0, directAlign):][:directAlign]
	_, err = f.WriteAt(b, 0)
	return err == nil
}

// writeMixed records output in pieces of every size, from a keystroke's
// echo to several bulk buffers, with flushes between some of them (as the
// one-second timer makes them), so that bulk writes start at every offset
// modulo the block size. It returns the output it recorded.
func writeMixed(t *testing.T, w *Writer, seed uint64) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	var want strings.Builder
	line := "total 42 drwxr-xr-x  2 root root 4096 Mar 14 15:09 é \"q\" \\ \x1b[1m\r\n"
	for i := 0; i < 60; i++ {
		var n int
		switch rng.IntN(3) {
		case 0:
			n = 1 + rng.IntN(200)
		case 1:
			n = 1 + rng.IntN(20<<10)
		default:
			n = 1 + rng.IntN(3*bufferSize)
		}
		p := []byte(strings.Repeat(line, n/len(line)+1)[:n])
		// Cut only between runes, so the output decodes back as it was.
		for len(p) > 0 && p[len(p)-1]&0xc0 == 0x80 || len(p) > 0 && p[len(p)-1] >= 0xc0 {
			p = p[:len(p)-1]
		}
		want.Write(p)
		if err := w.Output(p); err != nil {
			t.Fatal(err)
		}
		if rng.IntN(4) == 0 {
			w.mu.Lock()
			w.flush()
			w.mu.Unlock()
		}
	}
	return want.String()
}

// checkCast checks that the file holds exactly the output recorded, as
// valid asciicast, and that the digest Close returned is the file's.
func checkCast(t *testing.T, path, want, digest string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	_, evs := parseCast(t, raw)
	if got := concat(evs, "o"); got != want {
		t.Fatalf("the cast holds %d bytes of output, want %d (first difference at %d)", len(got), len(want), firstDiff(got, want))
	}
	if sum := sha256.Sum256(raw); hex.EncodeToString(sum[:]) != digest {
		t.Fatalf("Close returned %s, the file's SHA-256 is %x", digest, sum)
	}
}

func firstDiff(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestBulkOutputGoesDirect: on a file system that takes direct I/O, most
// of a bulk recording bypasses the page cache, and the file still holds
// every byte in order, with the digest of what is on disk.
func TestBulkOutputGoesDirect(t *testing.T) {
	dir := t.TempDir()
	for seed := uint64(1); seed <= 4; seed++ {
		w, err := Create(dir, testHeader(fmt.Sprintf("sess_000000000%d", seed)), Options{
			Now: (&fakeClock{t: testStart, step: time.Millisecond}).Now, FlushInterval: time.Hour,
		})
		if err != nil {
			t.Fatal(err)
		}
		want := writeMixed(t, w, seed)
		digest := mustClose(t, w)
		checkCast(t, w.Path(), want, digest)
		cf := w.bw.dst.(*castFile)
		if directWorks(t, dir) {
			// Bulk buffers line up after at most one block: nearly all
			// of the file goes direct.
			if st, _ := os.Stat(w.Path()); cf.directBytes < st.Size()/2 {
				t.Fatalf("seed %d: %d of %d bytes went direct", seed, cf.directBytes, st.Size())
			}
		} else {
			t.Logf("%s takes no direct I/O: only the page cache was used", dir)
		}
	}
}

// failingDirect is a direct writer that writes the first n bytes it is
// given through the page cache and then fails, as a file system that
// refuses O_DIRECT, or runs out of space half-way, does.
type failingDirect struct {
	f     *os.File
	n     int
	calls int
}

func (d *failingDirect) write(p []byte, off int64) (int, bool) {
	d.calls++
	k := min(d.n, len(p))
	if _, err := d.f.WriteAt(p[:k], off); err != nil {
		return 0, false
	}
	return k, false
}

func (d *failingDirect) buffered() bool { return true }

// TestDirectRefusedFallsBackToPageCache: whatever direct I/O does not take
// is written through the page cache at the same offset, nothing is lost or
// doubled, and direct I/O is not tried again on that file.
func TestDirectRefusedFallsBackToPageCache(t *testing.T) {
	for _, n := range []int{0, 1, directAlign, directMin + 3} {
		w, f := openedWriter(t, time.Hour)
		fd := &failingDirect{f: f, n: n}
		w.mu.Lock()
		w.bw.dst.(*castFile).direct = fd
		w.bw.align = directAlign
		w.mu.Unlock()
		want := writeMixed(t, w, uint64(n))
		digest := mustClose(t, w)
		checkCast(t, f.Name(), want, digest)
		if fd.calls != 1 {
			t.Fatalf("n=%d: direct I/O tried %d times, want once", n, fd.calls)
		}
	}
}

// TestLineUp: a bulk buffer's first byte sits where its address matches
// the file offset modulo the block size.
func TestLineUp(t *testing.T) {
	b := make([]byte, 0, bufferSize)
	for _, off := range []int64{0, 1, 4095, 4096, 4097, 123457} {
		r := lineUp(b, off, directAlign)
		addr := int64(uintptr(unsafe.Pointer(unsafe.SliceData(b[r : r+1]))))
		if r < 0 || r >= directAlign || (addr-off)%directAlign != 0 {
			t.Fatalf("lineUp(off %d) = %d: address %#x", off, r, addr)
		}
	}
}

// TestBulkOutputOnFullDisk: bulk output that fills the file system (a
// small tmpfs; tests run as root) fails with the disk's own error whether
// direct I/O or the page cache met it, and Close leaves a file of whole
// events holding a prefix of the output.
func TestBulkOutputOnFullDisk(t *testing.T) {
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m,mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs on %s (tests run as root): %v: %s", dir, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	t.Logf("tmpfs takes direct I/O: %v", directWorks(t, dir))
	w, err := Create(dir, testHeader("sess_0123456789"), Options{
		Now: (&fakeClock{t: testStart, step: time.Millisecond}).Now, FlushInterval: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	chunk := []byte(strings.Repeat("0123456789abcdef\r\n", 4000))
	for i := 0; i < 100 && err == nil; i++ {
		want.Write(chunk)
		err = w.Output(chunk)
	}
	if err == nil {
		w.mu.Lock()
		w.flush()
		w.mu.Unlock()
		err = w.bw.Close()
	}
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing 7 MB to a 1 MB file system: %v, want ENOSPC", err)
	}
	if sum, cerr := w.Close(); sum != "" || !errors.Is(cerr, syscall.ENOSPC) {
		t.Fatalf("Close = %q, %v; want no digest and ENOSPC", sum, cerr)
	}
	raw, rerr := os.ReadFile(w.Path())
	if rerr != nil {
		t.Fatal(rerr)
	}
	_, evs := parseCast(t, raw)
	got := concat(evs, "o")
	if len(got) < 256<<10 || !strings.HasPrefix(want.String(), got) {
		t.Fatalf("the cut file holds %d bytes of output, not a prefix of the %d written", len(got), want.Len())
	}
}
