package gateway_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/policy"
)

// Drain in-process (warden serve's SIGTERM path is tested end to end in
// internal/cli): a started shell is told, then closed after the grace; a
// channel opened on a live connection while draining is refused.
func TestDrainTellsThenCloses(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	p := b.alice.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("echo ready-$((1+1))\r")
	p.Expect(t, `ready-2`, expectWait)
	done := make(chan struct{})
	go func() { defer close(done); b.gw.Drain(2 * time.Second) }()
	p.Expect(t, `warden: gateway restarting; this session will be closed within 2s`, expectWait)
	p.Expect(t, `warden: gateway restarting; session closed`, expectWait)
	if code, err := p.Wait(expectWait); err != nil || code != 1 {
		t.Fatalf("code %d, %v", code, err)
	}
	<-done
	if s := b.lastSession("alice"); s.EndReason != "shutdown" {
		t.Fatalf("end reason %q", s.EndReason)
	}
}

// ApplyPolicy in-process: the session of a user the new policy leaves
// without access ends with the line and the event, at once.
func TestApplyPolicyEndsWhatItNoLongerAllows(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	p := b.alice.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("echo ready-$((1+1))\r")
	p.Expect(t, `ready-2`, expectWait)
	src := strings.Replace(string(b.cfg.Source), "    groups: [sysadmins]\n", "    groups: [helpdesk]\n", 1)
	cfg, err := policy.Parse([]byte(src), b.cfg.Path)
	if err != nil || src == string(b.cfg.Source) {
		t.Fatalf("edited policy: %v", err)
	}
	ended := b.gw.ApplyPolicy(context.Background(), cfg)
	p.Expect(t, `warden: access removed by a policy change; session closed`, expectWait)
	s := b.lastSession("alice")
	if len(ended) != 1 || ended[0] != s.ID || s.EndReason != "policy_changed" {
		t.Fatalf("ended %v, row %+v", ended, s)
	}
	b.waitEvent("session.access_removed", s.ID)
}

// StoreLost (a node cut off from the cluster's store for as long as the
// others wait before taking it for dead): every live session ends with its
// line, and the row ends interrupted, as the survivors would mark it.
func TestStoreLostEndsEveryLiveSession(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	p := b.alice.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("echo ready-$((1+1))\r")
	p.Expect(t, `ready-2`, expectWait)
	if n := b.gw.StoreLost(); n != 1 {
		t.Fatalf("StoreLost ended %d sessions, want 1", n)
	}
	p.Expect(t, `warden: the gateway lost its database; session closed`, expectWait)
	if code, err := p.Wait(expectWait); err != nil || code != 1 {
		t.Fatalf("code %d, %v", code, err)
	}
	deadline := time.Now().Add(expectWait)
	for b.lastSession("alice").EndReason == "" && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if s := b.lastSession("alice"); s.EndReason != "interrupted" {
		t.Fatalf("end reason %q", s.EndReason)
	}
}
