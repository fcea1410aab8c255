package gateway_test

import (
	"encoding/json"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// TestAttackWatchEndsWhenOversightEnds: a live view is access to what a
// client's administrators type and see. When the watcher's oversight of
// the tenant ends (removed from the approvers' group, or the key removed)
// a watch already running must end too, as a session ends with its grant,
// not run on for as long as the watched session lasts.
func TestAttackWatchEndsWhenOversightEnds(t *testing.T) {
	for _, tc := range []struct{ name, old, repl string }{
		{"no longer an approver", "groups: [security]", "groups: []"},
		{"key removed", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newTestbed(t, bedOptions{})
			c := b.goClientAs(b.alice, "root@web01")
			s, err := c.NewSession()
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Start("while :; do echo tick; sleep 0.2; done"); err != nil {
				t.Fatal(err)
			}
			id := b.liveID("alice")

			watch := b.carol.SSH(testCtx(t), b.port, "gw", "watch", id)
			var seen, errb safeBuffer
			watch.Stdout, watch.Stderr = &seen, &errb
			if err := watch.Start(); err != nil {
				t.Fatal(err)
			}
			waitFor(t, func() bool { return strings.Contains(seen.String(), "tick") }, "the watch shows the session")

			old, repl := tc.old, tc.repl
			if old == "" {
				old = authorizedKey(b.carol.PublicKey)
				repl = authorizedKey(b.stranger.PublicKey)
			}
			b.reloadPolicy(old, repl)
			done := make(chan error, 1)
			go func() { done <- watch.Wait() }()
			select {
			case err := <-done:
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 1 ||
					!strings.Contains(errb.String(), "warden: you no longer oversee this session; watch ended") {
					t.Fatalf("watch ended with %v, stderr %q", err, errb.String())
				}
			case <-time.After(30 * time.Second):
				t.Fatalf("the watch runs on after the watcher's oversight ended; stderr %q", errb.String())
			}
			b.waitEvent("command.refused", "no longer oversee")
		})
	}
}

// liveID waits for the one running session of user and returns its ID.
func (b *testbed) liveID(user string) string {
	b.t.Helper()
	var id string
	waitFor(b.t, func() bool {
		out, _, code := b.run(b.erin, "gw", "sessions", "--live", "--json")
		var live []map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &live) != nil {
			return false
		}
		for _, l := range live {
			if l["user"] == user && l["state"] == "running" {
				id = l["id"].(string)
				return true
			}
		}
		return false
	}, user+"'s session is live")
	return id
}

// waitFor polls cond until it holds, failing after a generous 30 s.
func waitFor(t testing.TB, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out: %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
