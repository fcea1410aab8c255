package jit

import (
	"context"
	"testing"
	"time"

	"github.com/warden-gw/warden/notify"
)

func TestRestartEndsWhatExpiredWhileDown(t *testing.T) {
	dir := t.TempDir()
	e1 := openEnv(t, dir, newClock(t0), mustPolicy(t))
	e1.run()
	g := e1.grant(time.Hour)
	pending := e1.request("bob", "prod-root", time.Hour, "y", "")
	e1.close()

	// The gateway comes back two hours later, past the grant's expiry and
	// the request's TTL (both at t0+1h).
	e2 := openEnv(t, dir, newClock(t0.Add(2*time.Hour)), mustPolicy(t))
	e2.run()
	end := e2.nextEnd()
	if end.ID != g.ID || end.EndReason != EndExpired || !end.EndedAt.Equal(g.ExpiresAt) {
		t.Errorf("ended %+v; ended_at must be the expiry, when access stopped", end)
	}
	// Deadlines at the same time run request first, so it is done too.
	if row := e2.requestRow(pending.ID); row.State != StateExpired || !row.DecidedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("pending request after restart: %+v", row)
	}
	if n := len(e2.events(EventGrantExpiring)); n != 0 {
		t.Errorf("%d warnings for a grant that had already expired", n)
	}
	e2.verifyChain()
}

func TestRestartKeepsPendingRequestsAndGrantsOnTime(t *testing.T) {
	dir := t.TempDir()
	e1 := openEnv(t, dir, newClock(t0), mustPolicy(t))
	e1.run()
	g := e1.grant(time.Hour)
	pending := e1.request("bob", "prod-root", time.Hour, "y", "")
	e1.close()

	clock := newClock(t0.Add(30 * time.Minute))
	e2 := openEnv(t, dir, clock, mustPolicy(t))
	e2.run()
	ctx := context.Background()
	if got, ok, err := e2.svc.ActiveGrant(ctx, "alice", "prod-root"); !ok || err != nil || got.ID != g.ID {
		t.Fatalf("grant lost in restart: %+v %v %v", got, ok, err)
	}
	reqs, err := e2.svc.Requests(ctx, e2.user("carol"), true)
	if err != nil || len(reqs) != 1 || reqs[0].ID != pending.ID {
		t.Fatalf("pending requests after restart: %+v %v", reqs, err)
	}

	warnAt := g.ExpiresAt.Add(-warnBefore)
	clock.WaitArmed(t, warnAt)
	clock.Set(warnAt)
	e2.notes.next(t, notify.TypeGrantExpiring)
	clock.WaitArmed(t, g.ExpiresAt)
	clock.Set(g.ExpiresAt)
	if end := e2.nextEnd(); end.ID != g.ID || !end.EndedAt.Equal(g.ExpiresAt) {
		t.Errorf("ended %+v", end)
	}
	if evs := e2.events(EventGrantExpired); len(evs) != 1 || !evs[0].TS.Equal(g.ExpiresAt) {
		t.Errorf("expiry not on time after restart: %+v", evs)
	}
	if st := e2.requestRow(pending.ID).State; st != StateExpired {
		t.Errorf("pending request %s", st)
	}
}

func TestRestartDoesNotWarnTwice(t *testing.T) {
	dir := t.TempDir()
	c1 := newClock(t0)
	e1 := openEnv(t, dir, c1, mustPolicy(t))
	e1.run()
	g := e1.grant(time.Hour)
	warnAt := g.ExpiresAt.Add(-warnBefore)
	c1.WaitArmed(t, warnAt)
	c1.Set(warnAt)
	e1.notes.next(t, notify.TypeGrantExpiring)
	e1.close()

	c2 := newClock(warnAt.Add(2 * time.Minute))
	e2 := openEnv(t, dir, c2, mustPolicy(t))
	e2.run()
	// The warning deadline is past and runs first; the expiry is armed
	// only after it has been handled.
	c2.WaitArmed(t, g.ExpiresAt)
	c2.Set(g.ExpiresAt)
	e2.nextEnd()
	if n, m := len(e2.events(EventGrantExpiring)), len(e2.notes.ofType(notify.TypeGrantExpiring)); n != 1 || m != 0 {
		t.Errorf("%d warning events, %d alerts after restart; want 1 and 0", n, m)
	}
}

func TestRestartDeprovisionsWhatThePolicyNoLongerAllows(t *testing.T) {
	dir := t.TempDir()
	e1 := openEnv(t, dir, newClock(t0), mustPolicy(t))
	g := e1.grant(time.Hour)
	e1.close()

	e2 := openEnv(t, dir, newClock(t0.Add(time.Minute)),
		mustPolicy(t, "{name: alice, groups: [sysadmins]}=>{name: alice, groups: [helpdesk]}"))
	e2.run()
	if end := e2.nextEnd(); end.ID != g.ID || end.EndReason != EndDeprovisioned || !end.EndedAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("ended %+v", end)
	}
}
