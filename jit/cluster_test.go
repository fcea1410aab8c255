package jit

import (
	"context"
	"log/slog"
	"maps"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/cluster"
	"github.com/warden-gw/warden/internal/storetest"
	"github.com/warden-gw/warden/notify"
)

// openClusterBus opens a cluster bus on dsn, closed at cleanup.
func openClusterBus(t *testing.T, dsn string) *cluster.Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := cluster.Open(ctx, dsn, cluster.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// Two gateways on one PostgreSQL store, wired as internal/cli/serve.go
// wires them: each publishes "jit" on the bus when it creates a request or
// a grant, and only the leader runs Run and resyncs on "jit". A grant
// approved on the other gateway expires on time, once: one grant, one
// warning, one grant.expired event, ended by the leader alone.
func TestClusterGrantApprovedOnAnotherGatewayExpiresOnceOnTheLeader(t *testing.T) {
	dsn := storetest.Server.Database(t) // PostgreSQL whatever the switch says: the point is two nodes
	clock := newClock(t0)
	pol := mustPolicy(t)
	backend := audit.Backend{Driver: audit.DriverPostgres, DSN: dsn}
	leader := openEnvWith(t, t.TempDir(), audit.Options{Now: clock.Now, Backend: backend, NodeID: "gw-a"}, clock, pol)
	other := openEnvWith(t, t.TempDir(), audit.Options{Now: clock.Now, Backend: backend, NodeID: "gw-b"}, clock, pol)
	ctx := context.Background()
	for _, e := range []*env{leader, other} {
		bus := openClusterBus(t, dsn)
		e.svc.OnChange(func() {
			if err := bus.Publish(ctx, "jit", []byte("{}")); err != nil {
				t.Errorf("publish: %v", err)
			}
		})
		if e == leader {
			bus.Subscribe("jit", func([]byte) {
				if err := leader.svc.Resync(ctx); err != nil {
					t.Errorf("Resync: %v", err)
				}
			})
		}
	}
	leader.run()

	g := other.grant(time.Hour)
	warnAt := g.ExpiresAt.Add(-warnBefore)
	clock.WaitArmed(t, warnAt) // the leader has it: only its Run arms timers
	clock.Set(warnAt)
	leader.notes.next(t, notify.TypeGrantExpiring)
	clock.WaitArmed(t, g.ExpiresAt)
	clock.Set(g.ExpiresAt)
	if end := leader.nextEnd(); end.ID != g.ID || end.EndReason != EndExpired || !end.EndedAt.Equal(g.ExpiresAt) {
		t.Fatalf("ended %+v", end)
	}

	// Asking again changes nothing: the grant has ended, and a second
	// resync after the deadline finds nothing to do.
	if err := leader.svc.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := other.svc.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	leader.svc.mu.Lock()
	left := leader.svc.queue.keys[jobKey{jobExpireGrant, g.ID}] || leader.svc.queue.keys[jobKey{jobWarnGrant, g.ID}]
	leader.svc.mu.Unlock()
	if left {
		t.Fatal("an ended grant is queued again")
	}
	clock.Advance(time.Hour)
	for _, e := range []*env{leader, other} {
		if n, m := len(e.events(EventGrantExpired)), len(e.events(EventGrantExpiring)); n != 1 || m != 1 {
			t.Errorf("%d grant.expired and %d grant.expiring events, want 1 and 1", n, m)
		}
	}
	if n := leader.count(`SELECT COUNT(*) FROM grants`); n != 1 {
		t.Errorf("%d grants, want 1", n)
	}
	select {
	case g := <-other.ends:
		t.Errorf("the gateway without Run ended grant %d", g.ID)
	case g := <-leader.ends:
		t.Errorf("grant %d ended twice", g.ID)
	default:
	}
}

// queued is a copy of the timetable's keys.
func queued(s *Service) map[jobKey]bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.queue.keys)
}

// Resync queues each pending request and running grant once however often
// it runs; OnChange is called for a new request and a new grant, not for
// an approval that starts nothing. The deadlines then act once each.
func TestResyncIsIdempotent(t *testing.T) {
	e := newEnv(t)
	changes := 0
	e.svc.OnChange(func() { changes++ })
	e.run()
	ctx := context.Background()
	g := e.grant(time.Hour)
	pending := e.request("bob", "db-admin", time.Hour, "", "CHG-1")
	if _, g2 := e.approve("carol", pending.ID); g2 != nil {
		t.Fatal("db-admin needs two approvals")
	}
	if changes != 3 {
		t.Fatalf("OnChange called %d times for 2 requests and 1 grant, want 3", changes)
	}
	before := queued(e.svc)
	want := map[jobKey]bool{{jobExpireRequest, g.RequestID}: true, {jobWarnGrant, g.ID}: true, {jobExpireGrant, g.ID}: true, {jobExpireRequest, pending.ID}: true}
	if !maps.Equal(before, want) {
		t.Fatalf("queued %v, want %v", before, want)
	}
	for range 3 {
		if err := e.svc.Resync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if after := queued(e.svc); !maps.Equal(after, before) {
		t.Fatalf("after Resync queued %v, want %v", after, before)
	}
	e.svc.mu.Lock()
	n := e.svc.queue.Len()
	e.svc.mu.Unlock()
	if n != len(before) {
		t.Fatalf("%d deadlines in the heap for %d keys", n, len(before))
	}

	warnAt := g.ExpiresAt.Add(-warnBefore)
	e.clock.WaitArmed(t, warnAt)
	e.clock.Set(warnAt)
	e.notes.next(t, notify.TypeGrantExpiring)
	if err := e.svc.Resync(ctx); err != nil { // the warning is queued again; its event is its memory
		t.Fatal(err)
	}
	e.clock.WaitArmed(t, g.ExpiresAt)
	e.clock.Set(g.ExpiresAt)
	if end := e.nextEnd(); end.ID != g.ID {
		t.Fatalf("ended %+v", end)
	}
	if err := e.svc.Resync(ctx); err != nil {
		t.Fatal(err)
	}
	ttl := pending.CreatedAt.Add(requestTTL(e.pol.Load().Role("db-admin")))
	e.clock.WaitArmed(t, ttl)
	e.clock.Set(ttl)
	for e.requestRow(pending.ID).State == StatePending {
		time.Sleep(10 * time.Millisecond) // Run is expiring it; the test's deadline is the hang guard
	}
	if st := e.requestRow(pending.ID).State; st != StateExpired {
		t.Fatalf("pending request %s after its TTL", st)
	}
	for typ, want := range map[string]int{EventGrantExpiring: 1, EventGrantExpired: 1, EventRequestExpired: 1} {
		if n := len(e.events(typ)); n != want {
			t.Errorf("%d %s events, want %d", n, typ, want)
		}
	}
	if n := len(e.notes.ofType(notify.TypeGrantExpiring)); n != 1 {
		t.Errorf("%d expiry warnings sent, want 1", n)
	}
	select {
	case g := <-e.ends:
		t.Errorf("grant %d ended twice", g.ID)
	default:
	}
}
