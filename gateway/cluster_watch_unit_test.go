package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gw/warden/cluster"
	"github.com/warden-gw/warden/recorder"
)

// The viewer counts gaps in seq as dropped frames, adds the holder's own
// count, follows resizes, and shows the output queued before the end even
// when the end overtook it (its own channel).
func TestRemoteViewCountsGapsAndEnds(t *testing.T) {
	bus := cluster.NewLocal()
	defer bus.Close()
	s := &Server{opt: Options{Bus: bus}, log: slog.Default()}
	s.watches = newClusterWatch(s)
	v := &remoteView{w: s.watches, id: "aaaaaaaaaaaaaaaaaaaaaaaaaa", frames: make(chan watchFrameMsg, 8),
		ends: make(chan watchFrameMsg, 1), unsub: func() {}, hello: watchFrameMsg{Seq: 0, Cols: 80, Rows: 24}}
	v.frames <- watchFrameMsg{Seq: 1, Out: []byte("one "), Cols: 80, Rows: 24}
	v.frames <- watchFrameMsg{Seq: 1, Out: []byte("repeat "), Cols: 80, Rows: 24}
	v.frames <- watchFrameMsg{Seq: 4, Out: []byte("four "), Cols: 100, Rows: 30, Dropped: 5} // 2 lost on the way, 5 by the holder
	v.frames <- watchFrameMsg{Seq: 5, Out: []byte("five"), Cols: 100, Rows: 30}
	v.ends <- watchFrameMsg{Seq: 6, Cols: 100, Rows: 30, End: "session ended"}
	var out strings.Builder
	var dropped int64
	var sizes []string
	end, refused := v.pump(context.Background(), func(f recorder.Frame) bool {
		out.Write(f.Output)
		dropped += f.Dropped
		if f.Output == nil && f.Dropped == 0 {
			sizes = append(sizes, fmt.Sprintf("%dx%d", f.Cols, f.Rows))
		}
		return true
	}, func() bool { return true })
	if end != "session ended" || refused || out.String() != "one four five" || dropped != 7 || fmt.Sprint(sizes) != "[100x30]" {
		t.Fatalf("end %q refused %v out %q dropped %d sizes %v", end, refused, out.String(), dropped, sizes)
	}
}

// A viewer whose oversight ends is refused at the next tick.
func TestRemoteViewRechecksOversight(t *testing.T) {
	bus := cluster.NewLocal()
	defer bus.Close()
	s := &Server{opt: Options{Bus: bus}, log: slog.Default()}
	s.watches = newClusterWatch(s)
	d := defaultWatchTiming()
	d.Tick = time.Millisecond
	s.watches.timing.Store(d)
	v := &remoteView{w: s.watches, id: "aaaaaaaaaaaaaaaaaaaaaaaaaa", frames: make(chan watchFrameMsg, 1),
		ends: make(chan watchFrameMsg, 1), unsub: func() {}}
	end, refused := v.pump(context.Background(), func(recorder.Frame) bool { return true }, func() bool { return false })
	if !refused || !strings.Contains(end, "no longer oversee") {
		t.Fatalf("end %q refused %v", end, refused)
	}
}

func TestWatchBudget(t *testing.T) {
	t0 := time.Unix(1000, 0)
	b := &budget{rate: 1000, tokens: 1000}
	if !b.take(600, t0) || b.take(600, t0) {
		t.Fatal("a second's worth is the burst")
	}
	if !b.take(500, t0.Add(100*time.Millisecond)) { // 400 + 100 refilled
		t.Fatal("refill")
	}
	if b.take(1, t0.Add(100*time.Millisecond)) {
		t.Fatal("empty")
	}
	if !b.take(1000, t0.Add(time.Hour)) || b.take(1, t0.Add(time.Hour)) {
		t.Fatal("the refill is capped at one second's worth")
	}
}

func TestWatchMessagesAreStrict(t *testing.T) {
	var m watchOpenMsg
	for _, p := range []string{
		`{"watch":"x","session":"y","viewer":"v","node":"n","more":1}`,
		`{"watch":"x"} {"watch":"y"}`,
		`[]`,
		`{"watch":"` + strings.Repeat("a", cluster.MaxPayload) + `"}`,
	} {
		if err := decodeMsg([]byte(p), &m); err == nil {
			t.Errorf("accepted %.80q", p)
		}
	}
	id, err := newWatchID()
	if err != nil || !validWatchID(id) || len("watch_"+id) > 40 {
		t.Fatalf("watch ID %q %v", id, err)
	}
	for _, bad := range []string{"", "AAAAAAAAAAAAAAAAAAAAAAAAAA", "aaaaaaaaaaaaaaaaaaaaaaaaa1", "../../../../../../../../..", strings.Repeat("a", 27)} {
		if validWatchID(bad) {
			t.Errorf("watch ID %q accepted", bad)
		}
	}
	for _, f := range []watchFrameMsg{{Seq: -1}, {Dropped: -1}, {Out: make([]byte, maxFrameOut+1)}, {End: "a\x1b[2J"}, {Cols: 1 << 20}} {
		if f.valid() {
			t.Errorf("frame %+v accepted", f)
		}
	}
	// The largest frame fits a message.
	big, err := json.Marshal(watchFrameMsg{Seq: 1 << 62, Out: bytes.Repeat([]byte{0xff}, maxFrameOut), Cols: 10000, Rows: 10000,
		Dropped: 1 << 62, End: strings.Repeat("x", maxEndReason)})
	if err != nil || len(big) > cluster.MaxPayload {
		t.Fatalf("largest frame: %d bytes, %v", len(big), err)
	}
}

// A holder that falls silent (its node died, or the bus lost the way)
// ends the view after Expire without a frame, on the view's clock.
func TestRemoteViewEndsWhenHolderIsSilent(t *testing.T) {
	bus := cluster.NewLocal()
	defer bus.Close()
	s := &Server{opt: Options{Bus: bus}, log: slog.Default()}
	s.watches = newClusterWatch(s)
	var now atomic.Int64
	now.Store(time.Unix(1000, 0).UnixNano())
	d := defaultWatchTiming()
	d.Tick, d.Now = time.Millisecond, func() time.Time { return time.Unix(0, now.Load()) }
	s.watches.timing.Store(d)
	v := &remoteView{w: s.watches, id: "aaaaaaaaaaaaaaaaaaaaaaaaaa", frames: make(chan watchFrameMsg, 1),
		ends: make(chan watchFrameMsg, 1), unsub: func() {}, heard: d.Now()}
	done := make(chan string, 1)
	go func() {
		end, _ := v.pump(context.Background(), func(recorder.Frame) bool { return true }, func() bool { return true })
		done <- end
	}()
	now.Add(int64(15 * time.Second)) // not more than Expire: still on
	select {
	case end := <-done:
		t.Fatalf("ended at the expiry, not after it: %q", end)
	case <-time.After(50 * time.Millisecond):
	}
	now.Add(int64(time.Millisecond))
	select {
	case end := <-done:
		if !strings.Contains(end, "stopped answering") {
			t.Fatalf("end %q", end)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the view runs on after the holder fell silent")
	}
}
