package evidence

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeTimer hands each wait RunMonthly asks for to the test, which fires
// it when it has moved the clock.
type fakeTimer struct {
	waits chan time.Duration
	fire  chan time.Time
}

func newFakeTimer() *fakeTimer {
	return &fakeTimer{waits: make(chan time.Duration), fire: make(chan time.Time)}
}

func (f *fakeTimer) After(d time.Duration) <-chan time.Time {
	f.waits <- d
	return f.fire
}

// recorder is a Notifier that keeps what it is sent.
type recorder struct {
	mu     sync.Mutex
	events []Event
	err    error
}

func (r *recorder) Notify(_ context.Context, ev Event) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
	return r.err
}

func (r *recorder) take() []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.events
	r.events = nil
	return out
}

func TestRunMonthlyWritesLastMonthOnTheFirst(t *testing.T) {
	w := october(t)
	w.clk.Set(at("2026-11-30T23:00:00Z"))
	timer, notes := newFakeTimer(), &recorder{err: errors.New("webhook down")} // a failing webhook changes nothing
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunMonthly(ctx, ScheduleOptions{Schedule: ScheduleMonthly, DataDir: w.dir, Policy: w.cfg,
			Notifier: notes, Store: w.st, Now: w.clk.Now, After: timer.After})
	}()

	// Start-up catches up on October, then sleeps until December 1st.
	if d := <-timer.waits; d != time.Hour {
		t.Fatalf("first wait = %v, want 1h (to 2026-12-01)", d)
	}
	oct := notes.take()
	if len(oct) != 2 || oct[0].Fields["tenant"] != "acme" || oct[1].Fields["tenant"] != "beta" {
		t.Fatalf("October notifications = %+v", oct)
	}
	acme := oct[0]
	if acme.Type != EventPacket || acme.Fields["month"] != "2026-10" {
		t.Fatalf("acme notification = %+v", acme)
	}
	for _, want := range []string{"6 overdue item(s)", "expired-exception: exception 1", "stale-admin: user gina",
		"failed-rotation: role break-glass", "pending-request: request 5"} {
		if !strings.Contains(acme.Text, want) {
			t.Errorf("notification text lacks %q:\n%s", want, acme.Text)
		}
	}
	if items, _ := acme.Fields["overdue"].([]OverdueItem); len(items) != 6 {
		t.Errorf("overdue field = %#v", acme.Fields["overdue"])
	}
	for _, tenant := range []string{"acme", "beta"} {
		if _, err := VerifyPacket(PacketDir(w.dir, tenant, at("2026-10-01T00:00:00Z"))); err != nil {
			t.Fatalf("%s October packet: %v", tenant, err)
		}
	}

	// December 1st: November's packets, then a wait until January 1st.
	w.clk.Set(at("2026-12-01T00:00:00Z"))
	timer.fire <- w.clk.Now()
	if d := <-timer.waits; d != 31*24*time.Hour {
		t.Fatalf("second wait = %v, want 744h", d)
	}
	nov := notes.take()
	if len(nov) != 2 || nov[0].Fields["month"] != "2026-11" {
		t.Fatalf("November notifications = %+v", nov)
	}
	if _, err := VerifyPacket(PacketDir(w.dir, "acme", at("2026-11-01T00:00:00Z"))); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("RunMonthly = %v", err)
	}
	// Each packet written is anchored in the audit chain.
	evs, err := w.st.Events(w.ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	anchored := 0
	for _, e := range evs {
		if e.Type == EventPacket && len(e.Data["manifest_sha256"].(string)) == 64 {
			anchored++
		}
	}
	if anchored != 4 {
		t.Fatalf("%d evidence.packet events, want 4", anchored)
	}
}

func TestRunMonthlyAfterRestartDoesNotRepeat(t *testing.T) {
	w := october(t)
	for run := 0; run < 2; run++ {
		timer, notes := newFakeTimer(), &recorder{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- RunMonthly(ctx, ScheduleOptions{Schedule: ScheduleMonthly, DataDir: w.dir, Policy: w.cfg,
				Notifier: notes, Now: w.clk.Now, After: timer.After})
		}()
		<-timer.waits
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got, want := len(notes.take()), 2*(1-run); got != want {
			t.Fatalf("run %d: %d notifications, want %d", run, got, want)
		}
	}
}

func TestRunMonthlyNotifiesAFailedPacket(t *testing.T) {
	w := october(t)
	blocked := PacketDir(w.dir, "acme", at("2026-10-01T00:00:00Z"))
	if err := os.MkdirAll(filepath.Dir(blocked), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, blocked, []byte("not a directory"))
	timer, notes := newFakeTimer(), &recorder{}
	var logged []string
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunMonthly(ctx, ScheduleOptions{Schedule: ScheduleMonthly, DataDir: w.dir, Policy: w.cfg,
			Notifier: notes, Now: w.clk.Now, After: timer.After,
			Logf: func(f string, a ...any) { mu.Lock(); logged = append(logged, f); mu.Unlock() }})
	}()
	<-timer.waits
	cancel()
	<-done
	evs := notes.take()
	if len(evs) != 2 || evs[0].Type != EventPacketFailed || evs[0].Fields["tenant"] != "acme" || evs[1].Type != EventPacket {
		t.Fatalf("notifications = %+v", evs)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(logged) != 1 {
		t.Fatalf("logged %q", logged)
	}
}

func TestRunMonthlySchedules(t *testing.T) {
	for _, s := range []string{"", ScheduleOff} {
		if err := RunMonthly(context.Background(), ScheduleOptions{Schedule: s}); err != nil {
			t.Errorf("schedule %q: %v", s, err)
		}
	}
	if err := RunMonthly(context.Background(), ScheduleOptions{Schedule: "weekly"}); err == nil {
		t.Error("schedule weekly accepted")
	}
}
