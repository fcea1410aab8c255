package audit

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// setClock is an Options.Now a test moves by hand; safe for concurrent use.
type setClock struct{ ns atomic.Int64 }

func newSetClock() *setClock {
	c := &setClock{}
	c.ns.Store(t0.UnixNano())
	return c
}
func (c *setClock) Now() time.Time           { return time.Unix(0, c.ns.Load()).UTC() }
func (c *setClock) Add(d time.Duration)      { c.ns.Add(int64(d)) }
func (c *setClock) opts(node string) Options { return Options{Now: c.Now, NodeID: node} }

// selves holds each test Store's process identity (*Store -> *Self): one
// instance per Store, as one per gateway process.
var selves sync.Map

// me is s's Self: host "testhost", an instance of its own, dead after 30 s.
func me(s *Store) *Self {
	v, _ := selves.LoadOrStore(s, &Self{Host: "testhost", Instance: fmt.Sprintf("inst-%p", s), DeadAfter: 30 * time.Second})
	return v.(*Self)
}

// twoNodes opens two Stores with their own node IDs on one database: the
// harness's (one PostgreSQL database per directory, or the SQLite file,
// which two Stores can share too), both on clock c.
func twoNodes(t *testing.T, c *setClock, ids ...string) []*Store {
	t.Helper()
	dir := t.TempDir()
	var out []*Store
	for _, id := range ids {
		s, err := Open(context.Background(), dir, c.opts(id))
		if err != nil {
			t.Fatalf("Open %s: %v", id, err)
		}
		t.Cleanup(func() { s.Close() })
		out = append(out, s)
	}
	return out
}

// A second node starting on a shared store must not end the first node's
// live sessions: CloseOrphans ends only its own (and those from before
// node IDs, which have none).
func TestNodeStartLeavesOtherNodesSessionsOpen(t *testing.T) {
	ctx := context.Background()
	c := newSetClock()
	st := twoNodes(t, c, "gw-a", "gw-b")
	a, b := st[0], st[1]
	if err := a.NodeStarted(ctx, me(a)); err != nil {
		t.Fatal(err)
	}
	mustStart(t, a, testSession("A1"))
	legacy := testSession("OLD")
	mustStart(t, a, legacy)
	// A row from before migration 0009 has no node.
	if err := a.write(ctx, func(tx *sql.Tx, _ *chainTip) error {
		_, err := tx.Exec(`UPDATE sessions SET node_id = NULL WHERE id = 'OLD'`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	mustStart(t, b, Session{ID: "B1", User: "bob", Login: "root", Host: "db01", Tenant: "acme"})

	n, err := b.CloseOrphans(ctx, "")
	if err != nil || n != 2 {
		t.Fatalf("node B CloseOrphans = %d, %v; want 2 (its own B1 and the node-less OLD)", n, err)
	}
	for id, want := range map[string]string{"A1": "", "B1": EndInterrupted, "OLD": EndInterrupted} {
		row, err := b.Session(ctx, id)
		if err != nil || row.EndReason != want {
			t.Fatalf("session %s: end_reason %q, %v; want %q", id, row.EndReason, err, want)
		}
	}
	if row, _ := b.Session(ctx, "A1"); row.NodeID != "gw-a" || !row.EndedAt.IsZero() {
		t.Fatalf("A1 = %+v; want open, node gw-a", row)
	}
}

// Node A stops heartbeating with a live session. Before the timeout the
// survivors leave it; after it, of two survivors racing to reap, exactly
// one session.end is written and the session ends interrupted. A node that
// heartbeats is never reaped, nor is a node's own session.
func TestReapDeadNodeExactlyOnce(t *testing.T) {
	ctx := context.Background()
	c := newSetClock()
	st := twoNodes(t, c, "gw-a", "gw-b", "gw-c")
	a, b, cc := st[0], st[1], st[2]
	for _, s := range st {
		if err := s.NodeStarted(ctx, me(s)); err != nil {
			t.Fatal(err)
		}
	}
	mustStart(t, a, testSession("A1"))
	mustStart(t, b, Session{ID: "B1", User: "bob", Login: "root", Host: "db01", Tenant: "acme"})

	// 29 s without a heartbeat from A: not dead yet.
	c.Add(29 * time.Second)
	for _, s := range []*Store{b, cc} {
		if err := s.Heartbeat(ctx, me(s)); err != nil {
			t.Fatal(err)
		}
		if n, err := s.ReapDeadNodes(ctx, 30*time.Second, nil); err != nil || n != 0 {
			t.Fatalf("reap at 29 s = %d, %v; want 0", n, err)
		}
	}
	// 31 s: A is dead. B and C reap at once.
	c.Add(2 * time.Second)
	var wg sync.WaitGroup
	var total atomic.Int64
	for _, s := range []*Store{b, cc} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, err := s.ReapDeadNodes(ctx, 30*time.Second, nil)
			if err != nil {
				t.Error(err)
			}
			total.Add(int64(n))
		}()
	}
	wg.Wait()
	if total.Load() != 1 {
		t.Fatalf("two reapers closed %d sessions; want 1", total.Load())
	}
	row, err := b.Session(ctx, "A1")
	if err != nil || row.EndReason != EndInterrupted {
		t.Fatalf("A1 = %+v, %v; want interrupted", row, err)
	}
	if row, _ := b.Session(ctx, "B1"); !row.EndedAt.IsZero() {
		t.Fatalf("B1 (a live node's) was ended: %+v", row)
	}
	ev, err := b.Events(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ends int
	for _, e := range ev {
		if e.Type == EventSessionEnd && e.Subject == "A1" {
			ends++
			if e.Data["recovered"] != true || e.Data["reason"] != EndInterrupted {
				t.Fatalf("session.end data %+v", e.Data)
			}
		}
	}
	if ends != 1 {
		t.Fatalf("%d session.end events for A1; want 1", ends)
	}
	// Much later, B (which heartbeats) still is not reaped by C, and the
	// chain verifies.
	c.Add(time.Hour)
	if err := b.Heartbeat(ctx, me(b)); err != nil {
		t.Fatal(err)
	}
	if n, err := cc.ReapDeadNodes(ctx, 30*time.Second, nil); err != nil || n != 0 {
		t.Fatalf("reap of a live node = %d, %v", n, err)
	}
	nodes, err := b.Nodes(ctx)
	if err != nil || len(nodes) != 3 || !nodes[1].Heartbeat.Equal(c.Now()) {
		t.Fatalf("nodes %+v, %v", nodes, err)
	}
}

// A node that comes back (heartbeats again) between a survivor's read and
// its write keeps its sessions: the reaper re-checks inside the write.
// And a clean stop sets stopped_at.
func TestReapRechecksHeartbeatAndCleanStop(t *testing.T) {
	ctx := context.Background()
	c := newSetClock()
	st := twoNodes(t, c, "gw-a", "gw-b")
	a, b := st[0], st[1]
	if err := a.NodeStarted(ctx, me(a)); err != nil {
		t.Fatal(err)
	}
	mustStart(t, a, testSession("A1"))
	c.Add(31 * time.Second)
	orphans, err := b.openSessions(ctx, " AND node_id = ?", "gw-a")
	if err != nil || len(orphans) != 1 {
		t.Fatalf("open sessions of gw-a: %v, %v", orphans, err)
	}
	if err := a.Heartbeat(ctx, me(a)); err != nil { // A is back
		t.Fatal(err)
	}
	cutoff, _ := formatTime(c.Now().Add(-30 * time.Second))
	n, err := b.closeOrphans(ctx, EndInterrupted, orphans, func(tx *sql.Tx) (bool, error) {
		var beat string
		err := tx.QueryRow(`SELECT heartbeat_at FROM nodes WHERE id = ?`, "gw-a").Scan(&beat)
		return beat < cutoff, err
	})
	if err != nil || n != 0 {
		t.Fatalf("closeOrphans after the heartbeat = %d, %v; want 0", n, err)
	}
	if n, err := b.ReapDeadNodes(ctx, 30*time.Second, nil); err != nil || n != 0 {
		t.Fatalf("ReapDeadNodes of a node that came back = %d, %v", n, err)
	}
	if err := a.EndSession(ctx, "A1", SessionEnd{Reason: "exit"}); err != nil {
		t.Fatal(err)
	}
	if err := a.NodeStopped(ctx); err != nil {
		t.Fatal(err)
	}
	nodes, err := b.Nodes(ctx)
	if err != nil || len(nodes) != 1 || nodes[0].StoppedAt.IsZero() {
		t.Fatalf("nodes %+v, %v; want gw-a stopped", nodes, err)
	}
	c.Add(time.Hour)
	if n, err := b.ReapDeadNodes(ctx, 30*time.Second, nil); err != nil || n != 0 {
		t.Fatalf("reap of a cleanly stopped node = %d, %v", n, err)
	}
}
