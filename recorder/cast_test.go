package recorder

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/cast")

// fakeClock returns t, then t+step, t+2*step, ... one step per call.
type fakeClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := c.t
	c.t = c.t.Add(c.step)
	return t
}

var testStart = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

func testHeader(id string) Header {
	return Header{
		Width: 100, Height: 30,
		Env:   map[string]string{"TERM": "xterm-256color"},
		Title: "alice as root@web01",
		Warden: Meta{
			SessionID: id, User: "alice", Login: "root", Host: "web01",
			Tenant: "acme", Role: "prod-root", GrantID: 42,
		},
	}
}

func newTestWriter(t *testing.T, dir string, clock *fakeClock) *Writer {
	t.Helper()
	w, err := Create(dir, testHeader("sess_0123456789"), Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

func mustClose(t *testing.T, w *Writer) string {
	t.Helper()
	sum, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	return sum
}

// castEvent is one event line as encoding/json reads it.
type castEvent struct {
	Time float64
	Code string
	Data string
}

// readCast parses a cast file strictly with encoding/json: every line must
// be valid JSON and every event a [number, string, string] triple.
func readCast(t *testing.T, path string) (Header, []castEvent) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return parseCast(t, raw)
}

func parseCast(t *testing.T, raw []byte) (Header, []castEvent) {
	t.Helper()
	if !bytes.HasSuffix(raw, []byte("\n")) {
		t.Fatalf("cast does not end with a newline: %q", raw)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	var h Header
	if err := json.Unmarshal([]byte(lines[0]), &h); err != nil {
		t.Fatalf("header %q: %v", lines[0], err)
	}
	var evs []castEvent
	for _, l := range lines[1:] {
		var triple []any
		if err := json.Unmarshal([]byte(l), &triple); err != nil {
			t.Fatalf("event %q: %v", l, err)
		}
		if len(triple) != 3 {
			t.Fatalf("event %q: %d fields", l, len(triple))
		}
		tm, ok1 := triple[0].(float64)
		code, ok2 := triple[1].(string)
		data, ok3 := triple[2].(string)
		if !ok1 || !ok2 || !ok3 {
			t.Fatalf("event %q: wrong types", l)
		}
		evs = append(evs, castEvent{tm, code, data})
	}
	return h, evs
}

// concat joins the data of the events with the given code.
func concat(evs []castEvent, code string) string {
	var b strings.Builder
	for _, e := range evs {
		if e.Code == code {
			b.WriteString(e.Data)
		}
	}
	return b.String()
}

func TestGoldenBasicCast(t *testing.T) {
	dir := t.TempDir()
	w := newTestWriter(t, dir, &fakeClock{t: testStart, step: 250 * time.Millisecond})
	steps := []func() error{
		func() error { return w.Output([]byte("\x1b[1;32malice@web01\x1b[0m:~# ")) },
		func() error { return w.Input([]byte("l")) },
		func() error { return w.Output([]byte("l")) },
		func() error { return w.Input([]byte("s\r")) },
		func() error { return w.Output([]byte("s\r\n\"quoted\" back\\slash\ttab\x07bell\r\n")) },
		func() error { return w.Resize(120, 40) },
		func() error { return w.Output([]byte("caf\xc3")) }, // é split across events
		func() error { return w.Output([]byte("\xa9 \xe2\x98\x83 bad:\xff\r\n")) },
		func() error { return w.Output([]byte("\xe2\x82")) }, // held until Close
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	mustClose(t, w)
	got, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("..", "testdata", "cast", "basic.cast")
	if *update {
		if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(golden, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("cast differs from %s (go test -update rewrites it)\ngot:\n%s\nwant:\n%s", golden, got, want)
	}
	// The golden file itself must hold what was written.
	_, evs := parseCast(t, got)
	if o := concat(evs, "o"); !strings.Contains(o, "café ☃ bad:\uFFFD\r\n") || !strings.HasSuffix(o, "\uFFFD") {
		t.Fatalf("output data %q", o)
	}
}

func TestCreateWritesHeaderAndPlace(t *testing.T) {
	dir := t.TempDir()
	// 23:30 in UTC-5 is the next day in UTC: the directory follows UTC.
	local := time.Date(2025, 3, 14, 23, 30, 0, 0, time.FixedZone("EST", -5*3600))
	clock := &fakeClock{t: local, step: time.Second}
	w, err := Create(dir, Header{Warden: Meta{SessionID: "Ab-_0123456789", User: "bob"}}, Options{Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)

	wantRel := "recordings/2025-03-15/Ab-_0123456789.cast"
	if w.RelPath() != wantRel {
		t.Fatalf("RelPath = %q, want %q", w.RelPath(), wantRel)
	}
	if !filepath.IsAbs(w.Path()) || w.Path() != filepath.Join(dir, filepath.FromSlash(wantRel)) {
		t.Fatalf("Path = %q", w.Path())
	}
	h, evs := readCast(t, w.Path())
	if h.Version != 2 || h.Width != 80 || h.Height != 24 || h.Timestamp != local.Unix() {
		t.Fatalf("header defaults: %+v", h)
	}
	if h.Warden.SessionID != "Ab-_0123456789" || h.Warden.User != "bob" || len(evs) != 0 {
		t.Fatalf("header %+v, events %v", h, evs)
	}
	for p, want := range map[string]os.FileMode{
		w.Path():                         0o600,
		filepath.Dir(w.Path()):           0o700 | os.ModeDir,
		filepath.Join(dir, "recordings"): 0o700 | os.ModeDir,
	} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != want {
			t.Errorf("mode of %s = %v, want %v", p, fi.Mode(), want)
		}
	}
}

func TestHeaderFieldsAsJSON(t *testing.T) {
	dir := t.TempDir()
	h := testHeader("sess_0123456789")
	h.Command = "uptime"
	w, err := Create(dir, h, Options{Now: (&fakeClock{t: testStart}).Now})
	if err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	raw, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	first, _, _ := bytes.Cut(raw, []byte("\n"))
	var m map[string]any
	if err := json.Unmarshal(first, &m); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"version": 2.0, "width": 100.0, "height": 30.0, "timestamp": float64(testStart.Unix()),
		"env": map[string]any{"TERM": "xterm-256color"}, "title": "alice as root@web01", "command": "uptime",
		"warden": map[string]any{
			"session_id": "sess_0123456789", "user": "alice", "login": "root", "host": "web01",
			"tenant": "acme", "role": "prod-root", "grant_id": 42.0,
		},
	}
	if fmt.Sprint(m) != fmt.Sprint(want) {
		t.Fatalf("header\n got %v\nwant %v", m, want)
	}
}

func TestCreateRefusesExistingFile(t *testing.T) {
	dir := t.TempDir()
	clock := &fakeClock{t: testStart}
	w := newTestWriter(t, dir, clock)
	if err := w.Output([]byte("first")); err != nil {
		t.Fatal(err)
	}
	mustClose(t, w)
	before, _ := os.ReadFile(w.Path())
	if _, err := Create(dir, testHeader("sess_0123456789"), Options{Now: clock.Now}); !errors.Is(err, os.ErrExist) {
		t.Fatalf("second Create: %v, want ErrExist", err)
	}
	after, _ := os.ReadFile(w.Path())
	if !bytes.Equal(before, after) {
		t.Fatal("existing recording changed")
	}
}

func TestCloseReturnsDigestOfFile(t *testing.T) {
	w := newTestWriter(t, t.TempDir(), &fakeClock{t: testStart, step: time.Millisecond})
	// More than the buffer, so some bytes reach the file before Close.
	chunk := bytes.Repeat([]byte("0123456789abcdef\r\n"), 4096)
	for range 5 {
		if err := w.Output(chunk); err != nil {
			t.Fatal(err)
		}
	}
	sum := mustClose(t, w)
	raw, err := os.ReadFile(w.Path())
	if err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(raw)
	if sum != hex.EncodeToString(want[:]) {
		t.Fatalf("Close digest %s, file digest %x", sum, want)
	}
	again, err := w.Close()
	if again != sum || err != nil {
		t.Fatalf("second Close = %q, %v", again, err)
	}
	if err := w.Output([]byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Output after Close: %v", err)
	}
	if err := w.Err(); err != nil {
		t.Fatalf("Err after clean Close: %v", err)
	}
}

func TestFlusherMakesEventsVisibleWithoutClose(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, testHeader("sess_0123456789"), Options{
		Now:           (&fakeClock{t: testStart, step: time.Second}).Now,
		FlushInterval: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := w.Output([]byte("visible before close")); err != nil {
		t.Fatal(err)
	}
	want := `[1.000000, "o", "visible before close"]` + "\n"
	deadline := time.Now().Add(20 * time.Second)
	for {
		raw, err := os.ReadFile(w.Path())
		if err != nil {
			t.Fatal(err)
		}
		if bytes.HasSuffix(raw, []byte(want)) {
			// What is on disk is a whole, valid cast.
			if _, evs := parseCast(t, raw); len(evs) != 1 {
				t.Fatalf("events on disk: %v", evs)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("event not flushed; file holds %q", raw)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// openedWriter builds a Writer over a real file through the internal
// constructor, so a test can break the file underneath it.
func openedWriter(t *testing.T, flush time.Duration) (*Writer, *os.File) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(t.TempDir(), "x.cast"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{t: testStart, step: time.Second}
	w, err := newWriter(f, testHeader("sess_0123456789"), clock.Now(), Options{Now: clock.Now, FlushInterval: flush})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w, f
}

func TestWriteErrorIsSticky(t *testing.T) {
	w, f := openedWriter(t, time.Hour)
	f.Close() // the disk is gone
	big := bytes.Repeat([]byte("x"), 2*bufferSize)
	first := w.Output(big)
	if first == nil {
		// The full buffers fail on the spool's goroutine, which may not
		// have written them yet when this call returns (a busy machine,
		// the race detector): the next call after the failure returns it.
		waitSpoolFailed(t, w)
		first = w.Output([]byte("y"))
	}
	if first == nil || !errors.Is(first, os.ErrClosed) {
		t.Fatalf("Output to a closed file: %v", first)
	}
	for name, err := range map[string]error{
		"Output": w.Output([]byte("more")),
		"Input":  w.Input([]byte("keys")),
		"Resize": w.Resize(80, 24),
		"Err":    w.Err(),
	} {
		if err != first {
			t.Errorf("%s = %v, want the first error %v", name, err, first)
		}
	}
	if sum, err := w.Close(); sum != "" || err != first {
		t.Fatalf("Close = %q, %v; want no digest and the first error", sum, err)
	}
}

// A write that failed on the writer's goroutine is returned by the next
// call, even one that would write nothing yet (a rune's first byte, held
// for the next chunk): every call after the first error returns it.
func TestRuneFragmentAfterWriteErrorReturnsIt(t *testing.T) {
	w, f := openedWriter(t, time.Hour)
	f.Close() // the disk is gone
	// A full buffer is handed to the writer's goroutine, which fails; the
	// call may or may not see that yet.
	_ = w.Output(bytes.Repeat([]byte("x"), bufferSize))
	waitSpoolFailed(t, w)
	if err := w.Output([]byte("\xe2")); err == nil || !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Output of a rune's first byte after a write error: %v", err)
	}
}

// waitSpoolFailed waits until a write on w's spool goroutine has failed.
func waitSpoolFailed(t *testing.T, w *Writer) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for w.bw.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the writer's goroutine did not fail")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestFlusherReportsWriteError(t *testing.T) {
	w, f := openedWriter(t, time.Millisecond)
	f.Close()
	if err := w.Output([]byte("buffered")); err != nil {
		t.Fatalf("a buffered write cannot fail yet: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for w.Err() == nil {
		if time.Now().After(deadline) {
			t.Fatal("the flusher did not report the write error")
		}
		time.Sleep(time.Millisecond)
	}
	if err := w.Output([]byte("x")); err != w.Err() {
		t.Fatalf("Output after flush error: %v", err)
	}
}

func TestHeaderWriteFailureOnFullDevice(t *testing.T) {
	f, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := newWriter(f, testHeader("sess_0123456789"), testStart, Options{Now: time.Now}); err == nil {
		t.Fatal("newWriter on a full device succeeded")
	}
}

func TestConcurrentWritersMakeValidCast(t *testing.T) {
	dir := t.TempDir()
	w, err := Create(dir, testHeader("sess_0123456789"), Options{
		Now:           (&fakeClock{t: testStart, step: time.Millisecond}).Now,
		FlushInterval: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 6, 200
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				var err error
				switch (g + i) % 3 {
				case 0:
					err = w.Output([]byte(fmt.Sprintf("o%d-%d é\r\n", g, i)))
				case 1:
					err = w.Input([]byte(fmt.Sprintf("i%d-%d", g, i)))
				default:
					err = w.Resize(80+i, 24+g)
				}
				if err == nil {
					err = w.Err()
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	mustClose(t, w)
	_, evs := readCast(t, w.Path())
	if len(evs) != goroutines*each {
		t.Fatalf("%d events, want %d", len(evs), goroutines*each)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Time < evs[i-1].Time {
			t.Fatalf("event %d goes back in time: %v", i, evs[i-1:i+1])
		}
	}
}
