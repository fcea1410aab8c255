package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
)

// fakeChain is an audit store that can be down. Like audit.Store, it
// refuses an invalid event (type "bad") whether or not it is up.
type fakeChain struct {
	mu     sync.Mutex
	down   bool
	closed bool // audit.ErrClosed, as after Store.Close
	events []audit.Event
	tries  map[string]int // appends tried, by subject
}

func (f *fakeChain) append(_ context.Context, e audit.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.tries == nil {
		f.tries = map[string]int{}
	}
	f.tries[e.Subject]++
	if e.Type == "bad" {
		return fmt.Errorf("audit: append event bad: %w", audit.ErrInvalid)
	}
	if f.closed {
		return audit.ErrClosed
	}
	if f.down {
		return errors.New("audit: commit: database or disk is full")
	}
	f.events = append(f.events, e)
	return nil
}

func (f *fakeChain) setDown(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

// written returns the subjects of the events written, in chain order, and
// the events.
func (f *fakeChain) written() ([]string, []audit.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var subj []string
	for _, e := range f.events {
		subj = append(subj, e.Subject)
	}
	return subj, append([]audit.Event(nil), f.events...)
}

func (f *fakeChain) triesOf(subject string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.tries[subject]
}

// syncBuffer is a log sink for several goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// retryTimer is the hold's injected clock for retries: each wait the loop
// asks for arrives on asks, and fires when the test says.
type retryTimer struct {
	asks   chan time.Duration
	timers chan chan time.Time
}

func newRetryTimer() *retryTimer {
	return &retryTimer{asks: make(chan time.Duration, 64), timers: make(chan chan time.Time, 64)}
}

func (r *retryTimer) after(d time.Duration) <-chan time.Time {
	c := make(chan time.Time, 1)
	r.timers <- c
	r.asks <- d
	return c
}

// expect waits for the loop's next wait and checks its length: the loop
// is then idle until fire.
func (r *retryTimer) expect(t *testing.T, want time.Duration) {
	t.Helper()
	select {
	case d := <-r.asks:
		if d != want {
			t.Fatalf("retry after %v, want %v", d, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("no retry scheduled (want one after %v)", want)
	}
}

// fire ends the wait expect saw: the loop retries.
func (r *retryTimer) fire() { (<-r.timers) <- time.Time{} }

// next is expect, then fire.
func (r *retryTimer) next(t *testing.T, want time.Duration) {
	t.Helper()
	r.expect(t, want)
	r.fire()
}

// idle fails if the loop schedules a retry.
func (r *retryTimer) idle(t *testing.T) {
	t.Helper()
	select {
	case d := <-r.asks:
		t.Fatalf("retry scheduled after %v with nothing held", d)
	default:
	}
}

func newTestHold(t *testing.T, f *fakeChain, max int) (*auditHold, *retryTimer, *syncBuffer) {
	t.Helper()
	logs := &syncBuffer{}
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(time.Second)
		return clock
	}
	q := newAuditHold(f.append, slog.New(slog.NewTextHandler(logs, nil)), now)
	q.first, q.most, q.max = time.Second, 5*time.Second, max
	rt := newRetryTimer()
	q.after = rt.after
	return q, rt, logs
}

func ev(subject string, ts time.Time) audit.Event {
	return audit.Event{TS: ts, Type: "session.refused", Actor: "alice", Subject: subject}
}

// While the store is down, events are held in the order they were
// produced; retries back off from the first interval to the cap; once the
// store is back they are written in that order with their own times, then
// one audit.delayed; an invalid event among them is tried once and
// dropped, never retried; after that, events go straight to the store.
func TestHeldAuditEventsKeepOrderAndTime(t *testing.T) {
	f := &fakeChain{down: true}
	q, rt, logs := newTestHold(t, f, 100)
	stop := q.start()
	defer stop()

	t0 := time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)
	q.write(context.Background(), ev("one", t0))
	q.write(context.Background(), audit.Event{TS: t0.Add(time.Second), Type: "bad", Subject: "invalid"})
	// The store is up for this one, but two are held before it: it must
	// not overtake them.
	f.setDown(false)
	q.write(context.Background(), ev("two", t0.Add(2*time.Second)))
	f.setDown(true)
	q.write(context.Background(), audit.Event{Type: "identity.access_removed", Subject: "three"}) // no TS: stamped when held
	if subj, _ := f.written(); len(subj) != 0 {
		t.Fatalf("written while older events were held: %v", subj)
	}
	for _, d := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 5 * time.Second} {
		rt.next(t, d)
	}
	rt.expect(t, 5*time.Second) // each retry failed, and the loop waits again
	f.setDown(false)
	rt.fire()

	subj, evs := waitWritten(t, f, 4)
	if want := "one two three audit_events"; strings.Join(subj, " ") != want {
		t.Fatalf("chain order %v, want %s", subj, want)
	}
	if !evs[0].TS.Equal(t0) || !evs[1].TS.Equal(t0.Add(2*time.Second)) || evs[2].TS.IsZero() {
		t.Fatalf("held events lost their time: %v %v %v", evs[0].TS, evs[1].TS, evs[2].TS)
	}
	sum := evs[3]
	if sum.Type != "audit.delayed" || sum.Actor != "warden" || sum.Data["held"] != 3 || sum.Data["dropped"] != 0 ||
		sum.Data["since"] != t0.Format(time.RFC3339Nano) || sum.Data["until"] == "" {
		t.Fatalf("summary: %+v", sum)
	}
	if n := f.triesOf("invalid"); n != 1 {
		t.Fatalf("the invalid event was tried %d times, want once", n)
	}
	if !strings.Contains(logs.String(), "audit event not written") || !strings.Contains(logs.String(), "subject=invalid") {
		t.Fatalf("the dropped invalid event was not logged:\n%s", logs)
	}

	// Drained: the next event goes straight to the store, no retry, no
	// second summary.
	q.write(context.Background(), ev("after", t0.Add(time.Hour)))
	if subj, _ := f.written(); len(subj) != 5 || subj[4] != "after" {
		t.Fatalf("after the drain: %v", subj)
	}
	rt.idle(t)

	// An invalid event with nothing held is not held either.
	q.write(context.Background(), audit.Event{Type: "bad", Subject: "invalid-direct"})
	rt.idle(t)
	if n := f.triesOf("invalid-direct"); n != 1 {
		t.Fatalf("the invalid event was tried %d times, want once", n)
	}
	for i, l := range strings.Split(strings.TrimSuffix(logs.String(), "\n"), "\n") {
		if !strings.HasPrefix(l, "time=") {
			t.Fatalf("log line %d is not one record: %q", i, l)
		}
	}
}

func waitWritten(t *testing.T, f *fakeChain, n int) ([]string, []audit.Event) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		subj, evs := f.written()
		if len(subj) >= n {
			return subj, evs
		}
		if time.Now().After(deadline) {
			t.Fatalf("written %v, want %d events", subj, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// The queue is bounded: past it, the newest events are dropped, so the
// held ones stay an unbroken record from the outage's start, and the
// summary counts the drops.
func TestHeldAuditEventsBoundDropsNewest(t *testing.T) {
	f := &fakeChain{down: true}
	q, rt, logs := newTestHold(t, f, 3)
	stop := q.start()
	defer stop()
	t0 := time.Date(2026, 2, 1, 9, 0, 0, 0, time.UTC)
	for i := range 7 {
		q.write(context.Background(), ev(fmt.Sprint("e", i), t0.Add(time.Duration(i)*time.Second)))
	}
	if n := strings.Count(logs.String(), "exceed the bound"); n != 1 {
		t.Fatalf("the bound was logged %d times, want once:\n%s", n, logs)
	}
	rt.expect(t, time.Second)
	f.setDown(false)
	rt.fire()
	subj, evs := waitWritten(t, f, 4)
	if want := "e0 e1 e2 audit_events"; strings.Join(subj, " ") != want {
		t.Fatalf("chain %v, want %s", subj, want)
	}
	if s := evs[3].Data; s["held"] != 3 || s["dropped"] != 4 {
		t.Fatalf("summary: %+v", s)
	}
}

// At shutdown the hold tries once more: what the store then takes is
// written with its summary; what it still refuses is logged, with a count,
// as lost; and after shutdown nothing is held any more.
func TestHeldAuditEventsAtShutdown(t *testing.T) {
	t.Run("store back", func(t *testing.T) {
		f := &fakeChain{down: true}
		q, _, logs := newTestHold(t, f, 100)
		stop := q.start()
		q.write(context.Background(), ev("one", time.Now()))
		f.setDown(false)
		stop() // no retry fired: only the last try writes it
		if subj, _ := f.written(); strings.Join(subj, " ") != "one audit_events" {
			t.Fatalf("written at shutdown: %v", subj)
		}
		if strings.Contains(logs.String(), "lost") {
			t.Fatalf("logged a loss:\n%s", logs)
		}
	})
	t.Run("store closed", func(t *testing.T) {
		f := &fakeChain{down: true}
		q, _, logs := newTestHold(t, f, 100)
		stop := q.start()
		for i := range 3 {
			q.write(context.Background(), ev(fmt.Sprint("e", i), time.Now()))
		}
		f.mu.Lock()
		f.closed = true
		f.mu.Unlock()
		stop()
		if n := f.triesOf("e1"); n != 0 {
			t.Fatalf("tried the second event %d times after the first met a closed store", n)
		}
		if !strings.Contains(logs.String(), `msg="audit events lost: the database did not take them before the gateway stopped" held=3 dropped=0`) {
			t.Fatalf("no loud count of the lost events:\n%s", logs)
		}
	})
	t.Run("store still down", func(t *testing.T) {
		f := &fakeChain{down: true}
		q, _, logs := newTestHold(t, f, 1)
		stop := q.start()
		q.write(context.Background(), ev("one", time.Now()))
		q.write(context.Background(), ev("two", time.Now()))
		stop()
		if !strings.Contains(logs.String(), `level=ERROR msg="audit events lost: the database did not take them before the gateway stopped" held=1 dropped=1`) {
			t.Fatalf("no loud count of the lost events:\n%s", logs)
		}
		q.write(context.Background(), ev("late", time.Now()))
		if !strings.Contains(logs.String(), "subject=late") {
			t.Fatalf("an event after shutdown was not logged as lost:\n%s", logs)
		}
		q.mu.Lock()
		defer q.mu.Unlock()
		if len(q.held) != 1 {
			t.Fatalf("held after shutdown: %d events", len(q.held))
		}
	})
}
