package audit

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The nodes of one cluster present one identity: a node whose host key or
// CA key differs from a live node's is refused (ErrNodeKeys, a node.refused
// event) and its row does not look live; a stopped or dead node's keys do
// not count, and an unrecorded key is not compared.
func TestNodeKeysMustMatchTheLiveNodes(t *testing.T) {
	ctx := context.Background()
	c := newSetClock()
	st := twoNodes(t, c, "gw-a", "gw-b", "gw-c")
	a, b, cc := st[0], st[1], st[2]
	for _, s := range st {
		if err := s.NodeStarted(ctx, me(s)); err != nil {
			t.Fatal(err)
		}
	}
	me(a).HostKey, me(a).CAKey = "SHA256:host-1", "SHA256:ca-1"
	if err := a.NodeKeys(ctx, me(a)); err != nil {
		t.Fatal(err)
	}
	// Same keys: fine. A key not recorded: not compared.
	me(b).HostKey, me(b).CAKey = "SHA256:host-1", ""
	if err := b.NodeKeys(ctx, me(b)); err != nil {
		t.Fatalf("same host key, CA not known: %v", err)
	}
	// Another host key: refused, audited, and not live.
	me(cc).HostKey, me(cc).CAKey = "SHA256:host-2", "SHA256:ca-1"
	err := cc.NodeKeys(ctx, me(cc))
	if !errors.Is(err, ErrNodeKeys) || err.Error() != "the gateway host key of node gw-c (SHA256:host-2) differs from live node gw-a's (SHA256:host-1); every node must use the same host_key" {
		t.Fatalf("other host key: %v", err)
	}
	me(cc).HostKey, me(cc).CAKey = "SHA256:host-1", "SHA256:ca-2"
	if err := cc.NodeKeys(ctx, me(cc)); !errors.Is(err, ErrNodeKeys) {
		t.Fatalf("other CA key: %v", err)
	}
	nodes, err := a.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes {
		if n.ID == "gw-c" && n.StoppedAt.IsZero() {
			t.Fatalf("a refused node looks live: %+v", n)
		}
	}
	ev, err := a.Events(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var refused int
	for _, e := range ev {
		if e.Type == EventNodeRefused && e.Subject == "gw-c" {
			refused++
		}
	}
	if refused != 2 {
		t.Fatalf("node.refused events: %d, want 2", refused)
	}
	// Once gw-a and gw-b are gone (stopped, or dead), new keys are allowed:
	// a key rotation restarts the whole cluster.
	if err := a.NodeStopped(ctx); err != nil {
		t.Fatal(err)
	}
	c.Add(time.Minute) // gw-b's heartbeat is stale
	me(cc).HostKey, me(cc).CAKey = "SHA256:host-3", "SHA256:ca-3"
	if err := cc.NodeStarted(ctx, me(cc)); err != nil {
		t.Fatal(err)
	}
	if err := cc.NodeKeys(ctx, me(cc)); err != nil {
		t.Fatalf("new keys with no live node: %v", err)
	}
}
