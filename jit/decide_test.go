package jit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/notify"
	"github.com/warden-gw/warden/policy"
)

func TestApproveStartsGrantAtFinalApproval(t *testing.T) {
	e := newEnv(t)
	r := e.request("alice", "prod-root", 30*time.Minute, "INC-4711", "")
	e.clock.Advance(20 * time.Minute) // the approver takes a while
	req, g, err := e.svc.Approve(context.Background(), e.user("carol"), r.ID, "ok, go")
	if err != nil || g == nil {
		t.Fatalf("Approve = %v, %v", g, err)
	}
	approvedAt := t0.Add(20 * time.Minute)
	if req.State != StateApproved || !req.DecidedAt.Equal(approvedAt) || len(req.Approvals) != 1 ||
		req.Approvals[0] != (Decision{Approver: "carol", Verdict: VerdictApproved, Comment: "ok, go", At: approvedAt}) {
		t.Errorf("request %+v", req)
	}
	want := Grant{ID: 1, RequestID: r.ID, User: "alice", Role: "prod-root", Tenant: "acme",
		StartsAt: approvedAt, ExpiresAt: approvedAt.Add(30 * time.Minute)}
	if *g != want {
		t.Errorf("grant %+v\n want %+v", *g, want)
	}
	if row := e.grantRow(g.ID); row != want {
		t.Errorf("stored grant %+v", row)
	}
	for _, typ := range []string{EventApprovalRecorded, EventRequestApproved, EventGrantStarted} {
		evs := e.events(typ)
		if len(evs) != 1 || evs[0].Actor != "carol" || evs[0].Data["reason"] != "INC-4711" || !evs[0].TS.Equal(approvedAt) {
			t.Errorf("%s events %+v", typ, evs)
		}
	}
	if ev := e.events(EventGrantStarted)[0]; ev.Subject != "grant:1" || ev.Data["expires_at"] != "2026-11-29T09:50:00Z" {
		t.Errorf("grant.started %+v", ev)
	}
	ev := e.notes.next(t, notify.TypeRequestDecided)
	if ev.Text != "carol approved request 1 (alice, prod-root on acme): grant 1 until 09:50:00Z" || ev.Fields["grant_id"] != int64(1) {
		t.Errorf("alert %+v", ev)
	}
	e.verifyChain()
}

func TestDecisionRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	own := e.request("sam", "prod-root", time.Hour, "x", "")      // 1: sam is also an approver
	alices := e.request("alice", "prod-root", time.Hour, "x", "") // 2
	approved := e.request("bob", "prod-root", time.Hour, "x", "") // 3
	e.approve("carol", approved.ID)
	expiring := e.request("alice", "db-admin", time.Hour, "", "CHG-7") // 4, needs 2
	e.approve("carol", expiring.ID)

	tests := []struct {
		name     string
		approver string
		deny     bool
		id       int64
		text     string
		kind     error
		msg      string
	}{
		{"no one approves their own request", "sam", false, own.ID, "", ErrForbidden, "you cannot approve your own request"},
		{"no one denies their own request", "sam", true, own.ID, "nah", ErrForbidden, "you cannot deny your own request"},
		{"approver must be in an approver group", "bob", false, alices.ID, "", ErrForbidden, "you are not an approver of prod-root"},
		{"management does not approve prod-root", "erin", false, alices.ID, "", ErrForbidden, "you are not an approver of prod-root"},
		{"unknown ID", "carol", false, 99, "", ErrNotFound, "request 99 does not exist"},
		{"decided ID", "dan", false, approved.ID, "", ErrState, "request 3 is already approved"},
		{"deny of decided ID", "dan", true, approved.ID, "late", ErrState, "request 3 is already approved"},
		{"one decision per approver", "carol", false, expiring.ID, "", ErrState, "you already decided request 4"},
		{"approver cannot deny after approving", "carol", true, expiring.ID, "changed my mind", ErrState, "you already decided request 4"},
		{"deny needs a reason", "carol", true, alices.ID, "  ", ErrInvalid, "deny needs a reason: add --reason TEXT"},
		{"comment length", "carol", false, alices.ID, strings.Repeat("x", 2000), ErrInvalid, "comment is 2000 bytes; at most 1024 are allowed"},
		{"comment is one line", "carol", false, alices.ID, "a\rb", ErrInvalid, "comment has a control or invisible character at byte 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.deny {
				_, err = e.svc.Deny(ctx, e.user(tc.approver), tc.id, tc.text)
			} else {
				_, _, err = e.svc.Approve(ctx, e.user(tc.approver), tc.id, tc.text)
			}
			wantRefusal(t, err, tc.kind, tc.msg)
		})
	}
	_, _, err := e.svc.Approve(ctx, nil, alices.ID, "")
	wantRefusal(t, err, ErrForbidden, "unknown user")

	// None of the refusals changed anything.
	if n := e.count(`SELECT count(*) FROM grants`); n != 1 {
		t.Errorf("%d grants, want 1", n)
	}
	if n := e.count(`SELECT count(*) FROM approvals`); n != 2 {
		t.Errorf("%d approvals, want 2", n)
	}
	for _, id := range []int64{own.ID, alices.ID, expiring.ID} {
		if st := e.requestRow(id).State; st != StatePending {
			t.Errorf("request %d is %s", id, st)
		}
	}
}

func TestDecidingExpiredRequest(t *testing.T) {
	e := newEnv(t) // Run is not running: the decision itself notices the TTL
	r := e.request("alice", "prod-root", time.Hour, "x", "")
	e.clock.Advance(time.Hour) // prod-root's request_ttl
	_, _, err := e.svc.Approve(context.Background(), e.user("carol"), r.ID, "")
	wantRefusal(t, err, ErrState, "request 1 has expired")
	row := e.requestRow(r.ID)
	if row.State != StateExpired || !row.DecidedAt.Equal(t0.Add(time.Hour)) || len(row.Approvals) != 0 {
		t.Errorf("row %+v", row)
	}
	if evs := e.events(EventRequestExpired); len(evs) != 1 || evs[0].Actor != "warden" {
		t.Errorf("events %+v", evs)
	}
	_, err = e.svc.Deny(context.Background(), e.user("dan"), r.ID, "too late")
	wantRefusal(t, err, ErrState, "request 1 has expired")
	if n := e.count(`SELECT count(*) FROM grants`); n != 0 {
		t.Errorf("%d grants", n)
	}

	// One microsecond before the TTL it can still be approved.
	r2 := e.request("alice", "prod-root", time.Hour, "x", "")
	e.clock.Advance(time.Hour - time.Microsecond)
	if _, g := e.approve("carol", r2.ID); g == nil {
		t.Error("no grant just before the TTL")
	}
}

func TestDistinctApprovals(t *testing.T) {
	e := newEnv(t)
	r := e.request("alice", "db-admin", 2*time.Hour, "", "CHG-1")
	req, g := e.approve("carol", r.ID)
	if g != nil || req.State != StatePending {
		t.Fatalf("one of two approvals started a grant: %+v", req)
	}
	if ev := e.notes.next(t, notify.TypeRequestDecided); ev.Text != "carol approved request 1 (alice, db-admin on acme): 1 of 2 approvals" {
		t.Errorf("alert %q", ev.Text)
	}
	e.clock.Advance(time.Minute)
	req, g = e.approve("erin", r.ID)
	if g == nil || req.State != StateApproved || !g.StartsAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("second approval: %+v %+v", req, g)
	}
	if evs := e.events(EventRequestApproved); len(evs) != 1 || len(evs[0].Data["approvers"].([]any)) != 2 {
		t.Errorf("events %+v", evs)
	}
}

func TestBreakGlassNeedsTwoApproversNeitherTheRequester(t *testing.T) {
	e := newEnv(t)
	r := e.request("olga", "break-glass", time.Hour, "core switch down", "")
	_, _, err := e.svc.Approve(context.Background(), e.user("olga"), r.ID, "")
	wantRefusal(t, err, ErrForbidden, "you cannot approve your own request")
	if _, g := e.approve("carol", r.ID); g != nil {
		t.Fatal("one approval started a break-glass grant")
	}
	_, _, err = e.svc.Approve(context.Background(), e.user("carol"), r.ID, "again")
	wantRefusal(t, err, ErrState, "you already decided request 1")
	_, g := e.approve("erin", r.ID)
	if g == nil || g.ExpiresAt.Sub(g.StartsAt) != time.Hour {
		t.Fatalf("grant %+v", g)
	}
	// Each decision alerted.
	if n := len(e.notes.ofType(notify.TypeRequestDecided)); n != 2 {
		t.Errorf("%d decision alerts, want 2", n)
	}
}

func TestBreakGlassLimitsHoldWhateverThePolicySays(t *testing.T) {
	e := newEnv(t)
	r := *e.pol.Load().Role("break-glass")
	r.Approvals, r.MaxDuration = 1, 0
	if approvalsNeeded(&r) != 2 {
		t.Errorf("break-glass with approvals 1 needs %d", approvalsNeeded(&r))
	}
	r.MaxDuration = policy.Duration(8 * time.Hour)
	if maxDuration(&r) != time.Hour {
		t.Errorf("break-glass max duration %s", maxDuration(&r))
	}
}

func TestAnyDenyEndsRequest(t *testing.T) {
	e := newEnv(t)
	r := e.request("alice", "db-admin", time.Hour, "", "CHG-1")
	e.approve("carol", r.ID)
	req, err := e.svc.Deny(context.Background(), e.user("erin"), r.ID, "not during the freeze")
	if err != nil || req.State != StateDenied || len(req.Approvals) != 2 || req.Approvals[1].Verdict != VerdictDenied {
		t.Fatalf("Deny = %+v, %v", req, err)
	}
	_, _, err = e.svc.Approve(context.Background(), e.user("dan"), r.ID, "")
	wantRefusal(t, err, ErrState, "request 1 is already denied")
	if n := e.count(`SELECT count(*) FROM grants`); n != 0 {
		t.Errorf("%d grants after a denial", n)
	}
	evs := e.events(EventRequestDenied)
	if len(evs) != 1 || evs[0].Actor != "erin" || evs[0].Data["comment"] != "not during the freeze" || evs[0].Data["ticket"] != "CHG-1" {
		t.Errorf("events %+v", evs)
	}
	alerts := e.notes.ofType(notify.TypeRequestDecided)
	if len(alerts) != 2 {
		t.Fatalf("%d decision alerts", len(alerts))
	}
	if ev := alerts[1]; ev.Text != "erin denied request 1 (alice, db-admin on acme): not during the freeze" {
		t.Errorf("alert %q", ev.Text)
	}
}

func TestDecisionsUseTheCurrentPolicy(t *testing.T) {
	t.Run("approver removed from group", func(t *testing.T) {
		e := newEnv(t)
		r := e.request("alice", "prod-root", time.Hour, "x", "")
		e.pol.Store(mustPolicy(t, "{name: carol, groups: [security]}=>{name: carol, groups: [management]}"))
		_, _, err := e.svc.Approve(context.Background(), e.user("carol"), r.ID, "")
		wantRefusal(t, err, ErrForbidden, "you are not an approver of prod-root")
	})
	t.Run("requester no longer eligible", func(t *testing.T) {
		e := newEnv(t)
		r := e.request("alice", "prod-root", time.Hour, "x", "")
		e.pol.Store(mustPolicy(t, "{name: alice, groups: [sysadmins]}=>{name: alice, groups: [helpdesk]}"))
		_, _, err := e.svc.Approve(context.Background(), e.user("carol"), r.ID, "")
		wantRefusal(t, err, ErrState, "alice is no longer eligible for prod-root")
		// A denial is still possible: it grants nothing.
		if _, err := e.svc.Deny(context.Background(), e.user("carol"), r.ID, "left the team"); err != nil {
			t.Error(err)
		}
	})
	t.Run("max_duration lowered", func(t *testing.T) {
		e := newEnv(t)
		r := e.request("alice", "prod-root", 2*time.Hour, "x", "")
		e.pol.Store(mustPolicy(t, "max_duration: 2h=>max_duration: 1h"))
		_, _, err := e.svc.Approve(context.Background(), e.user("carol"), r.ID, "")
		wantRefusal(t, err, ErrState, "role prod-root now allows at most 1h (request 1 asked 2h)")
	})
	t.Run("role removed", func(t *testing.T) {
		e := newEnv(t)
		r := e.request("alice", "prod-root", time.Hour, "x", "")
		e.pol.Store(mustPolicy(t, "name: prod-root=>name: prod-root2"))
		_, _, err := e.svc.Approve(context.Background(), e.user("carol"), r.ID, "")
		wantRefusal(t, err, ErrState, "role prod-root is no longer a privileged role in the policy")
	})
	t.Run("earlier approver removed no longer counts", func(t *testing.T) {
		e := newEnv(t)
		r := e.request("alice", "db-admin", time.Hour, "", "CHG-1")
		e.approve("carol", r.ID)
		e.pol.Store(mustPolicy(t, "{name: carol, groups: [security]}=>{name: carol, groups: [helpdesk]}"))
		req, g := e.approve("erin", r.ID)
		if g != nil || req.State != StatePending {
			t.Fatalf("approval by a former approver counted: %+v", req)
		}
		if _, g := e.approve("dan", r.ID); g == nil {
			t.Error("two current approvers did not start a grant")
		}
	})
}

func TestOneDecisionPerApproverInSchema(t *testing.T) {
	e := newEnv(t)
	r := e.request("alice", "db-admin", time.Hour, "", "CHG-1")
	e.approve("carol", r.ID)
	// Even a write that skipped the Service's checks could not add a
	// second decision by the same approver.
	err := e.store.Update(context.Background(), func(tx *audit.Tx) error {
		return insertDecision(tx, r.ID, Decision{Approver: "carol", Verdict: VerdictApproved, At: t0})
	})
	if err == nil || !strings.Contains(err.Error(), "UNIQUE") && !strings.Contains(err.Error(), "duplicate key") {
		t.Fatalf("duplicate decision stored: %v", err)
	}
}
