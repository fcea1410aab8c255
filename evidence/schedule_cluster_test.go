package evidence

import (
	"context"
	"testing"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/pgtest"
	"github.com/warden-gw/warden/internal/storetest"
)

// The leader's monthly packet is built from the configured store (review
// of issue 12). With store.driver postgres, RunMonthly built it from
// DATA/warden.db: a SQLite file left in the data directory (the database
// before `warden migrate --to postgres`, or an empty one) gave a signed,
// anchored packet of the wrong data, and no file gave a failed packet
// every month. Here DATA/warden.db is an empty stale store and the month's
// data is in PostgreSQL: acme's packet must hold its 6 overdue items.
func TestRunMonthlyReadsTheConfiguredStore(t *testing.T) {
	if on, _ := pgtest.Postgres(); on {
		t.Skip("the harness switch chooses the backend of a zero Backend; this test sets both itself")
	}
	w := octoberOn(t, audit.Backend{Driver: audit.DriverPostgres, DSN: storetest.Server.Database(t)})
	stale, err := audit.Open(w.ctx, w.dir, audit.Options{}) // DATA/warden.db, empty
	if err != nil {
		t.Fatal(err)
	}
	stale.Close()
	w.clk.Set(at("2026-11-30T23:00:00Z"))
	timer, notes := newFakeTimer(), &recorder{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- RunMonthly(ctx, ScheduleOptions{Schedule: ScheduleMonthly, DataDir: w.dir, Backend: w.be, Policy: w.cfg,
			Notifier: notes, Store: w.st, Now: w.clk.Now, After: timer.After})
	}()
	<-timer.waits
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	evs := notes.take()
	if len(evs) != 2 || evs[0].Type != EventPacket || evs[0].Fields["tenant"] != "acme" {
		t.Fatalf("notifications = %+v", evs)
	}
	if items, _ := evs[0].Fields["overdue"].([]OverdueItem); len(items) != 6 {
		t.Fatalf("acme's packet has %d overdue items, want 6: built from another database than the store's", len(items))
	}
}

// A new leader does not write and anchor again a month another node's
// schedule wrote (review of issue 12): "already written" was a manifest on
// the leader's own disk, so each hand-over of the lead (a restart, a node
// lost) appended a second evidence.packet event for the month and sent
// its notifications again.
func TestRunMonthlyOnANewLeaderDoesNotRepeat(t *testing.T) {
	if on, _ := pgtest.Postgres(); on {
		t.Skip("the harness switch chooses the backend of a zero Backend; this test sets both itself")
	}
	w := octoberOn(t, audit.Backend{Driver: audit.DriverPostgres, DSN: storetest.Server.Database(t)})
	w.clk.Set(at("2026-11-30T23:00:00Z"))
	for node, dir := range []string{w.dir, t.TempDir()} { // two nodes' data directories
		timer, notes := newFakeTimer(), &recorder{}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- RunMonthly(ctx, ScheduleOptions{Schedule: ScheduleMonthly, DataDir: dir, Backend: w.be, Policy: w.cfg,
				Notifier: notes, Store: w.st, Now: w.clk.Now, After: timer.After})
		}()
		<-timer.waits
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if got, want := len(notes.take()), 2*(1-node); got != want {
			t.Errorf("leader %d: %d notifications, want %d", node, got, want)
		}
	}
	evs, err := w.st.Events(w.ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if e.Type == EventPacket {
			n++
		}
	}
	if n != 2 {
		t.Fatalf("%d evidence.packet events for one month of two tenants, want 2", n)
	}
}
