package audit

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"
)

// One node_id, one live gateway: a second gateway on another host is
// refused while the first heartbeats (one clear line, a node.refused
// event, the first's row and sessions untouched); the same host with a new
// instance is a restart after a crash and is let in; once the heartbeat is
// older than the dead-after, or after a clean stop, anyone may take it.
func TestNodeIDInUseIsRefused(t *testing.T) {
	ctx := context.Background()
	c := newSetClock()
	st := twoNodes(t, c, "gw-a", "gw-a")
	first, second := st[0], st[1]
	live := &Self{Host: "host-1", Instance: "one", DeadAfter: 30 * time.Second}
	if err := first.NodeStarted(ctx, live); err != nil {
		t.Fatal(err)
	}
	mustStart(t, first, testSession("A1"))
	c.Add(3 * time.Second)

	other := &Self{Host: "host-2", Instance: "two", DeadAfter: 30 * time.Second}
	err := second.NodeStarted(ctx, other)
	want := "node_id gw-a is in use by a live node on host host-1 (heartbeat 3s ago); give each node its own node_id"
	if !errors.Is(err, ErrNodeInUse) || err.Error() != want {
		t.Fatalf("NodeStarted on another host = %v; want %q", err, want)
	}
	ev := eventsOf(t, first, EventNodeRefused)
	if len(ev) != 1 || ev[0].Subject != "gw-a" || ev[0].Data["host"] != "host-2" || ev[0].Data["live_host"] != "host-1" {
		t.Fatalf("node.refused events %+v", ev)
	}
	nodes, err := first.Nodes(ctx)
	if err != nil || len(nodes) != 1 || nodes[0].Host != "host-1" || nodes[0].Instance != "one" {
		t.Fatalf("nodes after the refusal %+v, %v", nodes, err)
	}
	// The live node's heartbeat sees nothing wrong.
	if err := first.Heartbeat(ctx, live); err != nil {
		t.Fatal(err)
	}

	// Same host, new instance, fresh heartbeat: this host after a crash.
	restarted := &Self{Host: "host-1", Instance: "three", DeadAfter: 30 * time.Second}
	if err := second.NodeStarted(ctx, restarted); err != nil {
		t.Fatalf("restart on the same host refused: %v", err)
	}
	if n, err := second.CloseOrphans(ctx, ""); err != nil || n != 1 {
		t.Fatalf("CloseOrphans after the restart = %d, %v; want the old A1", n, err)
	}
	// Had the old process in fact lived on, its heartbeat finds the row
	// taken: an error every time, one node.duplicate event.
	for i := 0; i < 2; i++ {
		if err := first.Heartbeat(ctx, live); !errors.Is(err, ErrNodeInUse) {
			t.Fatalf("heartbeat %d of the displaced process = %v", i, err)
		}
	}
	if ev := eventsOf(t, first, EventNodeDuplicate); len(ev) != 1 || ev[0].Data["row_host"] != "host-1" {
		t.Fatalf("node.duplicate events %+v", ev)
	}
	if nodes, _ := first.Nodes(ctx); nodes[0].Instance != "three" {
		t.Fatalf("the displaced process took the row back: %+v", nodes)
	}

	// The heartbeat ages past the dead-after: another host may take it.
	c.Add(31 * time.Second)
	if err := first.NodeStarted(ctx, other); err != nil {
		t.Fatalf("NodeStarted after the dead-after: %v", err)
	}
	// And after a clean stop, at once.
	if err := first.NodeStopped(ctx); err != nil {
		t.Fatal(err)
	}
	if err := second.NodeStarted(ctx, live); err != nil {
		t.Fatalf("NodeStarted after a clean stop: %v", err)
	}
	mustVerify(t, first.dir, nil)
}

// A row from before migration 0010 has no host: a fresh one is not taken
// for this host (fail closed), a stale one is free.
func TestNodeIDUnknownHostIsRefusedWhileFresh(t *testing.T) {
	ctx := context.Background()
	c := newSetClock()
	s := twoNodes(t, c, "gw-a")[0]
	if err := s.NodeStarted(ctx, me(s)); err != nil {
		t.Fatal(err)
	}
	clearHost(t, s)
	// A pre-0010 process heartbeating does not count as a duplicate.
	if err := s.Heartbeat(ctx, me(s)); err != nil {
		t.Fatal(err)
	}
	clearHost(t, s)
	again := &Self{Host: "testhost", Instance: "new", DeadAfter: 30 * time.Second}
	if err := s.NodeStarted(ctx, again); !errors.Is(err, ErrNodeInUse) {
		t.Fatalf("NodeStarted over a fresh pre-0010 row = %v", err)
	}
	c.Add(31 * time.Second)
	if err := s.NodeStarted(ctx, again); err != nil {
		t.Fatal(err)
	}
}

// clearHost makes the nodes rows look as before migration 0010.
func clearHost(t *testing.T, s *Store) {
	t.Helper()
	if err := s.write(context.Background(), func(tx *sql.Tx, _ *chainTip) error {
		_, err := tx.Exec(`UPDATE nodes SET host = NULL, instance = NULL`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
}
