package jit

import (
	"context"
	"testing"
	"time"
)

// TestRequestCancelLoopIsBounded: a deny holds (cooldown.go), but a
// requester who cancels before anyone decides could ask again at once,
// without end: each request is an alert to every approver and rows in the
// chain, until a tired approver approves one (approval fatigue). Past
// maxWithdrawn requests for a role in requestWindow that were cancelled or
// expired, the next is refused until the oldest leaves the window.
func TestRequestCancelLoopIsBounded(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := 0; i < maxWithdrawn; i++ {
		r := e.request("alice", "prod-root", time.Hour, "INC-1", "")
		if _, err := e.svc.Cancel(ctx, e.user("alice"), r.ID); err != nil {
			t.Fatal(err)
		}
		e.clock.Advance(10 * time.Minute)
	}
	// 09:30Z now; the first was opened at 09:00Z.
	wantRefusal(t, e.tryRequest("alice", "prod-root"), ErrState,
		"you withdrew or let lapse 3 requests for prod-root in the last hour; you may ask again after 10:00Z")
	if n := len(e.events(EventRequestCreated)); n != maxWithdrawn {
		t.Fatalf("%d request.created events, want %d", n, maxWithdrawn)
	}
	// Others, and other roles, are not held.
	if err := e.tryRequest("bob", "prod-root"); err != nil {
		t.Fatalf("bob: %v", err)
	}
	if err := e.tryRequest("alice", "db-admin"); err != nil {
		t.Fatalf("another role: %v", err)
	}
	e.clock.Advance(30 * time.Minute) // 10:00Z: the first left the window
	if err := e.tryRequest("alice", "prod-root"); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

// A request that was approved is not a withdrawn one: a user may need the
// same role several times an hour.
func TestApprovedRequestsDoNotCountAsWithdrawn(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < maxWithdrawn+2; i++ {
		r := e.request("alice", "prod-root", time.Hour, "INC-1", "")
		e.approve("carol", r.ID)
		e.clock.Advance(time.Minute)
	}
}
