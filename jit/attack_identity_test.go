package jit

import (
	"context"
	"testing"
	"time"
)

// TestAttackRenamedApproverCountsOnce: break-glass needs two distinct
// approvers. carol approves, the directory renames her to carol2 (same
// person, new userName), and carol2 approves again. Approvals are counted
// by who is an approver now, so carol's old name no longer vouches: one
// person, one approval, no grant.
func TestAttackRenamedApproverCountsOnce(t *testing.T) {
	e := newEnv(t)
	r := e.request("oscar", "break-glass", time.Hour, "INC-9", "")
	e.approve("carol", r.ID)
	e.pol.Store(mustPolicy(t, "{name: carol, groups=>{name: carol2, groups"))
	_, g := e.approve("carol2", r.ID)
	if g != nil {
		t.Fatalf("carol approved twice under two names and a grant started: %+v", g)
	}
	if row := e.requestRow(r.ID); row.State != StatePending {
		t.Fatalf("request %s", row.State)
	}
	_, g = e.approve("erin", r.ID)
	if g == nil {
		t.Fatal("a second person's approval did not start the grant")
	}
	e.verifyChain()
}

// TestAttackRenamedRequesterCannotApprove: olga (oncall and security)
// asks for break-glass, is renamed to olga2, and approves her own request
// under the new name. Every approval re-checks the request against the
// current policy, which no longer knows its requester: refused, and the
// request gains no approval.
func TestAttackRenamedRequesterCannotApprove(t *testing.T) {
	e := newEnv(t)
	r := e.request("olga", "break-glass", time.Hour, "INC-9", "")
	e.pol.Store(mustPolicy(t, "{name: olga, groups=>{name: olga2, groups"))
	_, _, err := e.svc.Approve(context.Background(), e.user("olga2"), r.ID, "")
	wantRefusal(t, err, ErrState, "olga is no longer eligible for break-glass")
	if row := e.requestRow(r.ID); len(row.Approvals) != 0 {
		t.Fatalf("approvals %+v", row.Approvals)
	}
}

// TestAttackExpiredGrantAndRequest: with the clock injected, a grant is
// unusable at its deadline, a revoke after it cannot be turned into a
// relinquish, a request past its TTL cannot be approved, and an approved
// request cannot be approved again into a second grant.
func TestAttackExpiredGrantAndRequest(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	g := e.grant(time.Hour)
	e.clock.Set(g.ExpiresAt)
	if _, ok, _ := e.svc.ActiveGrant(ctx, "alice", "prod-root"); ok {
		t.Fatal("grant active at its deadline")
	}
	_, err := e.svc.RecordUse(ctx, g.ID, "S1", "root", "web01")
	wantRefusal(t, err, ErrState, "grant 1 has ended (expired)")
	_, err = e.svc.Revoke(ctx, e.user("alice"), g.ID, "")
	wantRefusal(t, err, ErrState, "grant 1 already ended (expired)")
	if row := e.grantRow(g.ID); row.EndReason != EndExpired || !row.EndedAt.Equal(g.ExpiresAt) {
		t.Fatalf("row %+v", row)
	}
	// The approved request gives no second grant.
	_, _, err = e.svc.Approve(ctx, e.user("dan"), g.RequestID, "")
	wantRefusal(t, err, ErrState, "request 1 is already approved")

	// A request left past its TTL (1h for prod-root) is not approved late.
	r := e.request("bob", "prod-root", time.Hour, "INC-2", "")
	e.clock.Advance(time.Hour)
	_, _, err = e.svc.Approve(ctx, e.user("carol"), r.ID, "")
	wantRefusal(t, err, ErrState, "request 2 has expired")
	if n := e.count(`SELECT COUNT(*) FROM grants`); n != 1 {
		t.Fatalf("%d grants", n)
	}
	e.verifyChain()
}

// TestAttackBreakGlassCapsAndSelf: break-glass lasts at most 1h whatever
// is asked, and the requester who is also an approver of the role cannot
// be one of the two.
func TestAttackBreakGlassCapsAndSelf(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t)
	_, err := e.svc.Request(ctx, e.user("olga"), "break-glass", 61*time.Minute, "INC-9", "")
	wantRefusal(t, err, ErrInvalid, "role break-glass allows at most 1h (asked 1h1m)")
	r := e.request("olga", "break-glass", time.Hour, "INC-9", "")
	_, _, err = e.svc.Approve(ctx, e.user("olga"), r.ID, "")
	wantRefusal(t, err, ErrForbidden, "you cannot approve your own request")
	_, _, err = e.svc.Approve(ctx, e.user("carol"), r.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = e.svc.Approve(ctx, e.user("carol"), r.ID, "")
	wantRefusal(t, err, ErrState, "you already decided request 1")
	if n := e.count(`SELECT COUNT(*) FROM grants`); n != 0 {
		t.Fatalf("%d grants after one distinct approval", n)
	}
}
