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
	"github.com/warden-gw/warden/policy"
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

// countingBus is a Local bus that counts subscriptions by topic.
type countingBus struct {
	*cluster.Local
	subs atomic.Int64
}

func (b *countingBus) Subscribe(topic string, fn func([]byte)) func() {
	b.subs.Add(1)
	return b.Local.Subscribe(topic, fn)
}

// However many remote views a node opens, it listens on one frames topic:
// a topic per view would leave a handler in the listening connection for
// every view ever opened (pgxlisten cannot forget one), LISTENed again at
// every reconnection. Frames reach their own view only; a frame for a view
// that ended, or that names no view, is dropped.
func TestRemoteViewsShareOneFramesTopic(t *testing.T) {
	bus := &countingBus{Local: cluster.NewLocal()}
	defer bus.Close()
	s := &Server{opt: Options{Bus: bus}, log: slog.Default(), policy: &policy.Config{NodeID: "gw-b"}}
	s.watches = newClusterWatch(s)
	mk := func(id string) *remoteView {
		v := &remoteView{w: s.watches, id: id, frames: make(chan watchFrameMsg, 8), ends: make(chan watchFrameMsg, 1)}
		s.watches.addView(v)
		v.unsub = func() { s.watches.dropView(id) }
		return v
	}
	for i := 0; i < 100; i++ {
		id, err := newWatchID()
		if err != nil {
			t.Fatal(err)
		}
		mk(id).unsub()
	}
	a, b := mk("aaaaaaaaaaaaaaaaaaaaaaaaaa"), mk("bbbbbbbbbbbbbbbbbbbbbbbbbb")
	if n := bus.subs.Load(); n != 1 {
		t.Fatalf("%d subscriptions for 102 views, want 1", n)
	}
	send := func(f watchFrameMsg) {
		p, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := bus.Publish(context.Background(), framesTopic("gw-b"), p); err != nil {
			t.Fatal(err)
		}
	}
	send(watchFrameMsg{Watch: "cccccccccccccccccccccccccc", Seq: 1, Out: []byte("nobody's")})
	send(watchFrameMsg{Watch: "../../etc", Seq: 1, Out: []byte("bad id")})
	send(watchFrameMsg{Watch: b.id, Seq: 1, Out: []byte("for b")})
	send(watchFrameMsg{Watch: a.id, Seq: 1, Out: []byte("for a")})
	send(watchFrameMsg{Watch: a.id, Seq: 2, End: "session ended"})
	select {
	case f := <-a.frames:
		if string(f.Out) != "for a" {
			t.Fatalf("a got %q", f.Out)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a got nothing")
	}
	if f := <-a.ends; f.End != "session ended" {
		t.Fatalf("a's end: %+v", f)
	}
	if f := <-b.frames; string(f.Out) != "for b" {
		t.Fatalf("b got %q", f.Out)
	}
	select {
	case f := <-b.frames:
		t.Fatalf("b got another view's frame: %+v", f)
	case f := <-a.frames:
		t.Fatalf("a got another view's frame: %+v", f)
	default:
	}
	if len(framesTopic("gw-b")) > 40 || framesTopic("gw-b") == framesTopic("gw-a") {
		t.Fatalf("frames topics %q %q", framesTopic("gw-b"), framesTopic("gw-a"))
	}
}
