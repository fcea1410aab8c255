package gateway_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestSessionsWatchAndKill(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	p := b.alice.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)

	// Only approvers and auditors see sessions.
	if _, errOut, code := b.run(b.bob, "gw", "sessions", "--live"); code != 1 || !strings.Contains(errOut, "only approvers and auditors") {
		t.Fatalf("bob: %d %q", code, errOut)
	}
	out, _, code := b.run(b.carol, "gw", "sessions", "--live", "--json")
	var live []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &live) != nil || len(live) != 1 || live[0]["user"] != "alice" {
		t.Fatalf("sessions --live: %d %q", code, out)
	}
	id := live[0]["id"].(string)

	// An auditor watches, read-only.
	watch := b.erin.SSH(testCtx(t), b.port, "gw", "watch", id)
	var seen safeBuffer
	watch.Stdout = &seen
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(expectWait)
	for !strings.Contains(seen.String(), "watching "+id) {
		if time.Now().After(deadline) {
			t.Fatalf("watch never started: %q", seen.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.Send("echo watched-$((20+1))\r")
	p.Expect(t, `watched-21`, expectWait)
	for !strings.Contains(seen.String(), "watched-21") {
		if time.Now().After(deadline) {
			t.Fatalf("watcher did not see the output: %q", seen.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, errOut, code := b.run(b.bob, "gw", "watch", id); code != 1 || !strings.Contains(errOut, "only approvers and auditors") {
		t.Fatalf("bob watching: %d %q", code, errOut)
	}

	// An approver ends it.
	if out, errOut, code := b.run(b.carol, "gw", "kill", id); code != 0 || !strings.Contains(out, "terminated") {
		t.Fatalf("kill: %d %q %q", code, out, errOut)
	}
	p.Expect(t, `warden: session terminated by an administrator`, expectWait)
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	if err := watch.Wait(); err != nil {
		t.Fatalf("watch: %v", err)
	}
	if !strings.Contains(seen.String(), "session "+id+" ended") {
		t.Fatalf("watcher not told: %q", seen.String())
	}
	if s := b.waitSessionEnded(id); s.EndReason != "killed" {
		t.Fatalf("end reason %q", s.EndReason)
	}
	b.waitEvent("session.killed", "carol")
	if _, errOut, code := b.run(b.carol, "gw", "kill", id); code != 1 || errOut != "warden: no live session "+id+" that you can act on\n" {
		t.Fatalf("kill again: %d %q", code, errOut)
	}
}
