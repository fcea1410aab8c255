package audit

import (
	"context"
	"errors"
	"testing"
	"time"
)

// OpenSession finds a session open on a live node, and gives one answer
// (ErrNotFound) for an unknown ID, an ended session, a node whose heartbeat
// is stale and a node that stopped cleanly.
func TestOpenSessionOnLiveNodesOnly(t *testing.T) {
	ctx := context.Background()
	c := newSetClock()
	st := twoNodes(t, c, "gw-a", "gw-b")
	a, b := st[0], st[1]
	for _, s := range st {
		if err := s.NodeStarted(ctx, me(s)); err != nil {
			t.Fatal(err)
		}
	}
	mustStart(t, a, testSession("A1"), testSession("A2"))
	mustStart(t, b, testSession("B1"))
	if err := a.EndSession(ctx, "A2", SessionEnd{Reason: "exit"}); err != nil {
		t.Fatal(err)
	}
	alive := func() time.Time { return c.Now().Add(-30 * time.Second) }

	got, err := b.OpenSession(ctx, "A1", alive())
	if err != nil || got.NodeID != "gw-a" || got.Tenant != "acme" || got.User != "alice" {
		t.Fatalf("A1 from gw-b: %+v %v", got, err)
	}
	for _, id := range []string{"A2", "nope"} {
		if _, err := b.OpenSession(ctx, id, alive()); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%s: %v", id, err)
		}
	}

	// gw-a's heartbeat goes stale: its session is no longer live to anyone.
	c.Add(31 * time.Second)
	if err := b.Heartbeat(ctx, me(b)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.OpenSession(ctx, "A1", alive()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("A1 on a stale node: %v", err)
	}
	if _, err := a.OpenSession(ctx, "B1", alive()); err != nil {
		t.Fatalf("B1 on a fresh node: %v", err)
	}
	// gw-a comes back, then gw-b stops cleanly.
	if err := a.Heartbeat(ctx, me(a)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.OpenSession(ctx, "A1", alive()); err != nil {
		t.Fatalf("A1 after gw-a came back: %v", err)
	}
	if err := b.NodeStopped(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := a.OpenSession(ctx, "B1", alive()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("B1 on a stopped node: %v", err)
	}
}
