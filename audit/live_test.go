package audit

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func liveIDs(t *testing.T, s *Store, tenants []string) []string {
	t.Helper()
	list, err := s.LiveSessions(context.Background(), 30*time.Second, tenants)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range list {
		ids = append(ids, r.ID+"@"+r.NodeID)
	}
	return ids
}

// The shared live registry lists the open rows of live nodes only: not
// ended rows, not those of a node that stopped cleanly or whose heartbeat
// is older than the dead-after, and only the tenants asked for.
func TestLiveSessionsOfLiveNodesOnly(t *testing.T) {
	ctx := context.Background()
	c := newSetClock()
	st := twoNodes(t, c, "gw-a", "gw-b", "gw-c")
	a, b, cc := st[0], st[1], st[2]
	for _, s := range st {
		if err := s.NodeStarted(ctx, me(s)); err != nil {
			t.Fatal(err)
		}
	}
	if a.NodeID() != "gw-a" {
		t.Fatalf("NodeID = %q", a.NodeID())
	}
	mustStart(t, a, testSession("A1"), Session{ID: "A2", User: "bob", Login: "root", Host: "db01", Tenant: "globex"})
	c.Add(time.Second)
	mustStart(t, b, Session{ID: "B1", User: "bob", Login: "root", Host: "db01", Tenant: "acme"}, testSession("B2"))
	mustStart(t, cc, testSession("C1"))
	if err := b.EndSession(ctx, "B2", SessionEnd{Reason: "exit"}); err != nil {
		t.Fatal(err)
	}
	if got, want := liveIDs(t, b, nil), []string{"A1@gw-a", "A2@gw-a", "B1@gw-b", "C1@gw-c"}; !slices.Equal(got, want) {
		t.Fatalf("live = %v; want %v", got, want)
	}
	if got, want := liveIDs(t, b, []string{"globex"}), []string{"A2@gw-a"}; !slices.Equal(got, want) {
		t.Fatalf("live of globex = %v; want %v", got, want)
	}
	if got := liveIDs(t, b, []string{}); len(got) != 0 {
		t.Fatalf("live of no tenant = %v", got)
	}
	row, err := b.OpenSession(ctx, "A2", c.Now().Add(-30*time.Second))
	if err != nil || row.NodeID != "gw-a" || row.Tenant != "globex" || row.User != "bob" {
		t.Fatalf("OpenSession(A2) = %+v, %v", row, err)
	}
	for _, id := range []string{"B2", "NOPE"} {
		if _, err := b.OpenSession(ctx, id, c.Now().Add(-30*time.Second)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("OpenSession(%s) = %v; want not found", id, err)
		}
	}
	// C stops cleanly (its session left open on purpose); A falls silent.
	if err := cc.NodeStopped(ctx); err != nil {
		t.Fatal(err)
	}
	c.Add(31 * time.Second)
	if err := b.Heartbeat(ctx, me(b)); err != nil {
		t.Fatal(err)
	}
	if got, want := liveIDs(t, b, nil), []string{"B1@gw-b"}; !slices.Equal(got, want) {
		t.Fatalf("live after A died and C stopped = %v; want %v", got, want)
	}
	if _, err := b.OpenSession(ctx, "A1", c.Now().Add(-30*time.Second)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a dead node's session is offered as live: %v", err)
	}
	if _, err := b.LiveSessions(ctx, 0, nil); err == nil {
		t.Fatal("dead-after 0 accepted")
	}
}
