package jit

import (
	"context"
	"testing"
	"time"
)

// deny denies request id as approver and must succeed.
func (e *env) deny(approver string, id int64, reason string) {
	e.t.Helper()
	if _, err := e.svc.Deny(context.Background(), e.user(approver), id, reason); err != nil {
		e.t.Fatalf("Deny(%s, %d): %v", approver, id, err)
	}
}

// clear clears user's denial for role as approver.
func (e *env) clear(approver, user, role, reason string) (Denial, error) {
	return e.svc.ClearDenial(context.Background(), e.user(approver), user, role, reason)
}

// tryRequest asks for role as user; the caller checks the outcome.
func (e *env) tryRequest(user, role string) error {
	_, err := e.svc.Request(context.Background(), e.user(user), role, time.Hour, "again", "CHG-2")
	return err
}

func TestDenyHoldsForTheCooldown(t *testing.T) {
	e := newEnv(t)
	r := e.request("alice", "prod-root", time.Hour, "INC-1", "")
	e.clock.Advance(2*time.Minute + 30*time.Second)
	deniedAt := e.clock.Now()
	e.deny("carol", r.ID, "not during the freeze")

	// The hold ends at 10:02:30; the message rounds up to the minute, so
	// the time it names is never a moment still refused.
	const held = "request for prod-root denied by carol at 09:02Z; you may ask again after 10:03Z or ask an approver to clear it"
	wantRefusal(t, e.tryRequest("alice", "prod-root"), ErrState, held)
	e.clock.Set(deniedAt.Add(time.Hour - time.Microsecond))
	wantRefusal(t, e.tryRequest("alice", "prod-root"), ErrState, held)
	if n := e.count(`SELECT count(*) FROM requests`); n != 1 {
		t.Fatalf("refused requests stored: %d rows", n)
	}
	e.clock.Set(deniedAt.Add(time.Hour)) // deny_cooldown defaults to 1h
	if err := e.tryRequest("alice", "prod-root"); err != nil {
		t.Fatalf("request after the cooldown: %v", err)
	}
}

func TestDenyHoldsOnlyThatUserAndRole(t *testing.T) {
	e := newEnv(t)
	r := e.request("alice", "prod-root", time.Hour, "INC-1", "")
	e.deny("carol", r.ID, "no")
	if err := e.tryRequest("bob", "prod-root"); err != nil {
		t.Errorf("another user: %v", err)
	}
	if err := e.tryRequest("alice", "db-admin"); err != nil {
		t.Errorf("another role: %v", err)
	}
	wantRefusal(t, e.tryRequest("alice", "prod-root"), ErrState,
		"request for prod-root denied by carol at 09:00Z; you may ask again after 10:00Z or ask an approver to clear it")
}

func TestDenyCooldownFromThePolicy(t *testing.T) {
	t.Run("0s turns it off", func(t *testing.T) {
		e := newEnv(t)
		e.pol.Store(mustPolicy(t, "request_ttl: 1h=>request_ttl: 1h\n    deny_cooldown: 0s"))
		r := e.request("alice", "prod-root", time.Hour, "INC-1", "")
		e.deny("carol", r.ID, "no")
		if err := e.tryRequest("alice", "prod-root"); err != nil {
			t.Fatalf("request with deny_cooldown 0s: %v", err)
		}
	})
	t.Run("a long cooldown names the dates", func(t *testing.T) {
		e := newEnv(t)
		e.pol.Store(mustPolicy(t, "request_ttl: 1h=>request_ttl: 1h\n    deny_cooldown: 720h"))
		r := e.request("alice", "prod-root", time.Hour, "INC-1", "")
		e.deny("carol", r.ID, "no")
		e.clock.Advance(24 * time.Hour)
		wantRefusal(t, e.tryRequest("alice", "prod-root"), ErrState,
			"request for prod-root denied by carol at 2026-11-29 09:00Z; you may ask again after 2026-12-29 09:00Z or ask an approver to clear it")
	})
	t.Run("the cooldown in force when asking applies", func(t *testing.T) {
		e := newEnv(t)
		r := e.request("alice", "prod-root", time.Hour, "INC-1", "")
		e.deny("carol", r.ID, "no")
		e.clock.Advance(20 * time.Minute)
		e.pol.Store(mustPolicy(t, "request_ttl: 1h=>request_ttl: 1h\n    deny_cooldown: 15m"))
		if err := e.tryRequest("alice", "prod-root"); err != nil {
			t.Fatalf("request after a shortened cooldown: %v", err)
		}
	})
}

// TestBreakGlassDenyHoldsUntilCleared: one approver's veto is not outvoted
// by asking the others, however long the requester waits.
func TestBreakGlassDenyHoldsUntilCleared(t *testing.T) {
	e := newEnv(t)
	r := e.request("oscar", "break-glass", time.Hour, "prod down", "")
	e.approve("carol", r.ID)
	e.deny("erin", r.ID, "use the runbook first")
	const held = "request for break-glass denied by erin at 2026-11-29 09:00Z; a break-glass denial holds until an approver clears it"
	for _, later := range []time.Duration{24 * time.Hour, 30 * 24 * time.Hour, 365 * 24 * time.Hour} {
		e.clock.Set(t0.Add(later))
		wantRefusal(t, e.tryRequest("oscar", "break-glass"), ErrState, held)
	}
	if n := e.count(`SELECT count(*) FROM requests`); n != 1 {
		t.Fatalf("%d requests", n)
	}
	d, err := e.clear("dan", "oscar", "break-glass", "runbook done, still down")
	if err != nil {
		t.Fatal(err)
	}
	if d.RequestID != r.ID || d.DeniedBy != "erin" || d.Comment != "use the runbook first" || !d.DeniedAt.Equal(t0) || !d.Until.IsZero() {
		t.Errorf("cleared %+v", d)
	}
	r2 := e.request("oscar", "break-glass", time.Hour, "prod down", "")
	// A new veto holds again: the latest denial counts.
	e.deny("erin", r2.ID, "still no")
	wantRefusal(t, e.tryRequest("oscar", "break-glass"), ErrState,
		"request for break-glass denied by erin at 09:00Z; a break-glass denial holds until an approver clears it")
	e.verifyChain()
}

func TestClearDenialByAnApprover(t *testing.T) {
	e := newEnv(t)
	r := e.request("alice", "prod-root", time.Hour, "INC-1", "")
	e.deny("carol", r.ID, "wrong ticket")
	e.clock.Advance(5 * time.Minute)
	d, err := e.clear("dan", "alice", "prod-root", "  ticket fixed  ")
	if err != nil {
		t.Fatal(err)
	}
	if d.Until != t0.Add(time.Hour) || d.DeniedBy != "carol" {
		t.Errorf("denial %+v", d)
	}
	evs := e.events(EventDenialCleared)
	if len(evs) != 1 || evs[0].Actor != "dan" || evs[0].Subject != "request:1" || evs[0].Data["comment"] != "ticket fixed" ||
		evs[0].Data["denied_by"] != "carol" || evs[0].Data["user"] != "alice" || !evs[0].TS.Equal(t0.Add(5*time.Minute)) {
		t.Fatalf("events %+v", evs)
	}
	if ev := e.notes.next(t, noticeDenialCleared); ev.Text != "dan cleared alice's denial of request 1 (prod-root on acme, denied by carol): ticket fixed" {
		t.Errorf("alert %q", ev.Text)
	}
	if err := e.tryRequest("alice", "prod-root"); err != nil {
		t.Fatalf("request after the clear: %v", err)
	}
	// The clear was used up: nothing holds now, so there is nothing to clear.
	_, err = e.clear("dan", "alice", "prod-root", "again")
	wantRefusal(t, err, ErrState, `no denial holds requests by "alice" for prod-root`)
	e.verifyChain()
}

func TestClearDenialRefusals(t *testing.T) {
	e := newEnv(t)
	r := e.request("alice", "prod-root", time.Hour, "INC-1", "")
	e.deny("carol", r.ID, "no")
	own := e.request("sam", "prod-root", time.Hour, "INC-2", "") // sam is eligible and an approver
	e.deny("carol", own.ID, "no")
	tests := []struct {
		name, approver, user, role, reason string
		kind                               error
		msg                                string
	}{
		{"not an approver", "bob", "alice", "prod-root", "x", ErrForbidden, `you are not an approver of "prod-root"`},
		{"approver of other roles only", "erin", "alice", "prod-root", "x", ErrForbidden, `you are not an approver of "prod-root"`},
		{"the requester", "alice", "alice", "prod-root", "x", ErrForbidden, `you are not an approver of "prod-root"`},
		{"unknown role answers the same", "carol", "alice", "nope", "x", ErrForbidden, `you are not an approver of "nope"`},
		{"standing role answers the same", "carol", "alice", "web-deploy", "x", ErrForbidden, `you are not an approver of "web-deploy"`},
		{"own denial", "sam", "sam", "prod-root", "x", ErrForbidden, "you cannot clear a denial of your own request"},
		{"no reason", "dan", "alice", "prod-root", " ", ErrInvalid, "clearing a denial needs a reason: add --reason TEXT"},
		{"reason is one line", "dan", "alice", "prod-root", "ok\nfake: approved", ErrInvalid, "reason has a control or invisible character at byte 2"},
		{"nothing to clear", "dan", "bob", "prod-root", "x", ErrState, `no denial holds requests by "bob" for prod-root`},
		{"unknown user", "dan", "mallory\x1b[2J", "prod-root", "x", ErrState, `no denial holds requests by "mallory\x1b[2J" for prod-root`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.clear(tc.approver, tc.user, tc.role, tc.reason)
			wantRefusal(t, err, tc.kind, tc.msg)
		})
	}
	_, err := e.svc.ClearDenial(context.Background(), nil, "alice", "prod-root", "x")
	wantRefusal(t, err, ErrForbidden, "unknown user")
	if evs := e.events(EventDenialCleared); len(evs) != 0 {
		t.Fatalf("refused clears wrote %+v", evs)
	}
	// An approver removed from the group since no longer clears.
	e.pol.Store(mustPolicy(t, "{name: dan, groups: [security]}=>{name: dan, groups: [helpdesk]}"))
	_, err = e.clear("dan", "alice", "prod-root", "x")
	wantRefusal(t, err, ErrForbidden, `you are not an approver of "prod-root"`)
	wantRefusal(t, e.tryRequest("alice", "prod-root"), ErrState,
		"request for prod-root denied by carol at 09:00Z; you may ask again after 10:00Z or ask an approver to clear it")
}

// TestExpiredOrCancelledRequestsDoNotHold: only a deny holds.
func TestExpiredOrCancelledRequestsDoNotHold(t *testing.T) {
	e := newEnv(t)
	r := e.request("alice", "prod-root", time.Hour, "INC-1", "")
	if _, err := e.svc.Cancel(context.Background(), e.user("alice"), r.ID); err != nil {
		t.Fatal(err)
	}
	r = e.request("alice", "prod-root", time.Hour, "INC-1", "")
	e.clock.Advance(time.Hour) // request_ttl: the next request expires it
	if err := e.tryRequest("alice", "prod-root"); err != nil {
		t.Fatalf("request after a cancel and an expiry: %v", err)
	}
	if st := e.requestRow(r.ID).State; st != StateExpired {
		t.Fatalf("request %d is %s", r.ID, st)
	}
}
