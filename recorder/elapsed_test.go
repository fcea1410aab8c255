package recorder

import (
	"testing"
	"time"
)

// Elapsed is where an event written now would be stamped (never before the
// last one); LastEvent is the last event's own time, which a line settled
// only at the session's close is stamped with, inside the recording.
func TestElapsedAndLastEvent(t *testing.T) {
	clock := &fakeClock{t: testStart, step: time.Second}
	w := newTestWriter(t, t.TempDir(), clock)
	if got := w.LastEvent(); got != 0 {
		t.Fatalf("LastEvent before any event: %v", got)
	}
	if err := w.Output([]byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := w.Output([]byte("b")); err != nil {
		t.Fatal(err)
	}
	last := w.LastEvent()
	el := w.Elapsed()
	if last <= 0 || el <= last {
		t.Fatalf("LastEvent %v, Elapsed %v: want 0 < last < elapsed", last, el)
	}
	if again := w.LastEvent(); again != last {
		t.Fatalf("LastEvent moved without an event: %v then %v", last, again)
	}
	mustClose(t, w)
	_, evs := readCast(t, w.Path())
	if got := time.Duration(evs[len(evs)-1].Time * float64(time.Second)); got.Round(time.Millisecond) != last.Round(time.Millisecond) {
		t.Fatalf("last event in the file at %v, LastEvent %v", got, last)
	}
}
