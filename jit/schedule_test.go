package jit

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/warden-gw/warden/notify"
)

func TestTimetableOrdersAndDeduplicates(t *testing.T) {
	tt := newTimetable()
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	tt.add(deadline{at(30), jobExpireGrant, 1})
	tt.add(deadline{at(10), jobExpireRequest, 2})
	tt.add(deadline{at(30), jobExpireRequest, 9})
	tt.add(deadline{at(25), jobWarnGrant, 1})
	tt.add(deadline{at(5), jobExpireGrant, 1}) // same job and ID: ignored
	if next, ok := tt.next(); !ok || !next.Equal(at(10)) {
		t.Fatalf("next = %v %v", next, ok)
	}
	if due := tt.due(at(9)); len(due) != 0 {
		t.Fatalf("due before the first deadline: %v", due)
	}
	due := tt.due(at(30))
	got := make([]jobKey, len(due))
	for i, d := range due {
		got[i] = jobKey{d.job, d.id}
	}
	want := []jobKey{{jobExpireRequest, 2}, {jobWarnGrant, 1}, {jobExpireRequest, 9}, {jobExpireGrant, 1}}
	if !slices.Equal(got, want) {
		t.Errorf("due order %v, want %v", got, want)
	}
	if _, ok := tt.next(); ok || len(tt.keys) != 0 {
		t.Errorf("timetable not empty: %+v", tt)
	}
	tt.add(deadline{at(40), jobExpireGrant, 1}) // may be queued again once run
	if tt.Len() != 1 {
		t.Errorf("re-add after run: %d items", tt.Len())
	}
}

func TestGrantLifecycleOnTime(t *testing.T) {
	e := newEnv(t)
	e.run()
	r := e.request("alice", "prod-root", 30*time.Minute, "INC-4711", "")
	e.clock.WaitArmed(t, t0.Add(time.Hour)) // the request's TTL
	e.clock.Advance(10 * time.Minute)
	_, g := e.approve("carol", r.ID)
	if !g.ExpiresAt.Equal(t0.Add(40 * time.Minute)) {
		t.Fatalf("grant %+v", g)
	}

	warnAt := g.ExpiresAt.Add(-5 * time.Minute)
	e.clock.WaitArmed(t, warnAt)
	e.clock.Set(warnAt.Add(-time.Microsecond))
	if n := len(e.events(EventGrantExpiring)); n != 0 {
		t.Fatalf("warned %d times before the warning time", n)
	}
	e.clock.Set(warnAt)
	if ev := e.notes.next(t, notify.TypeGrantExpiring); ev.Text != "grant 1 (alice, prod-root on acme) expires at 09:40:00Z, in 5m" {
		t.Errorf("warning %q", ev.Text)
	}

	e.clock.WaitArmed(t, g.ExpiresAt)
	e.clock.Set(g.ExpiresAt.Add(-time.Microsecond))
	if _, ok, _ := e.svc.ActiveGrant(context.Background(), "alice", "prod-root"); !ok {
		t.Fatal("grant ended early")
	}
	if row := e.grantRow(g.ID); !row.EndedAt.IsZero() {
		t.Fatalf("grant ended early: %+v", row)
	}
	e.clock.Set(g.ExpiresAt)
	end := e.nextEnd()
	if end.ID != g.ID || end.EndReason != EndExpired || !end.EndedAt.Equal(g.ExpiresAt) {
		t.Errorf("ended %+v", end)
	}
	if evs := e.events(EventGrantExpired); len(evs) != 1 || !evs[0].TS.Equal(g.ExpiresAt) || evs[0].Actor != "warden" {
		t.Errorf("expiry events %+v", evs)
	}
	if ev := e.notes.next(t, notify.TypeGrantEnded); ev.Text != "grant 1 (alice, prod-root on acme) expired at 09:40:00Z" {
		t.Errorf("ended alert %q", ev.Text)
	}

	// The approved request's TTL passes without effect, and the warning
	// went out exactly once. Run arms the later request's TTL only after
	// it has handled the first.
	later := e.request("bob", "prod-root", time.Hour, "y", "")
	e.clock.WaitArmed(t, t0.Add(time.Hour))
	e.clock.Set(t0.Add(time.Hour))
	e.clock.WaitArmed(t, later.CreatedAt.Add(time.Hour))
	e.stop()
	if st := e.requestRow(r.ID).State; st != StateApproved {
		t.Errorf("request state %s", st)
	}
	if n, m := len(e.events(EventGrantExpiring)), len(e.notes.ofType(notify.TypeGrantExpiring)); n != 1 || m != 1 {
		t.Errorf("%d warning events, %d warning alerts; want 1 each", n, m)
	}
	e.verifyChain()
}

func TestShortGrantHasNoWarning(t *testing.T) {
	e := newEnv(t)
	e.run()
	g := e.grant(3 * time.Second)
	e.clock.WaitArmed(t, g.ExpiresAt) // the warning would come first if there were one
	e.clock.Set(g.ExpiresAt)
	if end := e.nextEnd(); end.ID != g.ID || end.EndReason != EndExpired {
		t.Errorf("ended %+v", end)
	}
	if n := len(e.events(EventGrantExpiring)); n != 0 {
		t.Errorf("%d warnings for a 3-second grant", n)
	}
}

func TestRequestExpiresAtTTL(t *testing.T) {
	e := newEnv(t)
	e.run()
	r := e.request("alice", "prod-root", time.Hour, "x", "")
	ttl := t0.Add(time.Hour)
	e.clock.WaitArmed(t, ttl)
	e.clock.Advance(time.Minute)
	// A later request gives Run something to wait for after the first
	// expiry, which tells the test that the expiry has been handled.
	later := e.request("bob", "prod-root", time.Hour, "y", "")
	e.clock.WaitArmed(t, ttl)
	e.clock.Set(ttl.Add(-time.Microsecond))
	if st := e.requestRow(r.ID).State; st != StatePending {
		t.Fatalf("request %s before its TTL", st)
	}
	e.clock.Set(ttl)
	e.clock.WaitArmed(t, later.CreatedAt.Add(time.Hour))
	row := e.requestRow(r.ID)
	if row.State != StateExpired || !row.DecidedAt.Equal(ttl) {
		t.Errorf("request %+v", row)
	}
	if evs := e.events(EventRequestExpired); len(evs) != 1 || evs[0].Subject != "request:1" || !evs[0].TS.Equal(ttl) {
		t.Errorf("events %+v", evs)
	}
	if st := e.requestRow(later.ID).State; st != StatePending {
		t.Errorf("later request %s", st)
	}
}

func TestRequestTTLFollowsPolicy(t *testing.T) {
	e := newEnv(t)
	e.run()
	r := e.request("alice", "prod-root", time.Hour, "x", "")
	e.clock.WaitArmed(t, t0.Add(time.Hour))
	e.pol.Store(mustPolicy(t, "request_ttl: 1h=>request_ttl: 2h"))
	e.clock.Set(t0.Add(time.Hour))
	e.clock.WaitArmed(t, t0.Add(2*time.Hour)) // re-armed for the longer TTL
	if st := e.requestRow(r.ID).State; st != StatePending {
		t.Fatalf("request %s under the longer TTL", st)
	}
	if _, g := e.approve("carol", r.ID); g == nil {
		t.Error("request could not be approved within the longer TTL")
	}
}

func TestRevokedGrantDoesNotEndTwice(t *testing.T) {
	e := newEnv(t)
	e.run()
	g := e.grant(30 * time.Minute)
	if _, err := e.svc.Revoke(context.Background(), e.user("carol"), g.ID, "stop"); err != nil {
		t.Fatal(err)
	}
	if end := e.nextEnd(); end.EndReason != EndRevoked {
		t.Fatalf("ended %+v", end)
	}
	for _, at := range []time.Time{g.ExpiresAt.Add(-warnBefore), g.ExpiresAt} {
		e.clock.WaitArmed(t, at)
		e.clock.Set(at)
	}
	// Run arms the request's TTL only after it has handled the expiry.
	e.clock.WaitArmed(t, t0.Add(time.Hour))
	e.stop()
	select {
	case end := <-e.ends:
		t.Errorf("grant ended again: %+v", end)
	default:
	}
	if n := len(e.events(EventGrantExpiring)) + len(e.events(EventGrantExpired)); n != 0 {
		t.Errorf("%d warning/expiry events for a revoked grant", n)
	}
}

func TestRunFailsWhenStoreIsClosed(t *testing.T) {
	e := newEnv(t)
	e.store.Close()
	if err := e.svc.Run(context.Background()); err == nil {
		t.Fatal("Run on a closed store returned nil")
	}
}
