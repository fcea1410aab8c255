package gateway_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gw/warden/policy"
)

// reloadPolicy swaps old for repl in the testbed's policy file and puts the
// result in force, as warden serve does on a reload. The workflow reads the
// same policy.
func (b *testbed) reloadPolicy(old, repl string) {
	b.t.Helper()
	src, err := os.ReadFile(b.cfg.Path)
	if err != nil {
		b.t.Fatal(err)
	}
	if !strings.Contains(string(src), old) {
		b.t.Fatalf("policy has no %q", old)
	}
	path := b.cfg.Path + ".reloaded"
	if err := os.WriteFile(path, []byte(strings.Replace(string(src), old, repl, 1)), 0o600); err != nil {
		b.t.Fatal(err)
	}
	cfg, err := policy.Load(path)
	if err != nil {
		b.t.Fatal(err)
	}
	b.cfg = cfg
	b.gw.SetPolicy(cfg)
}

// TestAttackRotatedOutKeyOpensNoChannel: an approver's key leaks, and the
// policy replaces it with a new one. The thief's connection, opened before
// the reload (a ControlMaster, say), must not open new channels: not a
// command channel (approve a request under the approver's name), not a
// session. The user still exists, so a check of the user name alone lets
// the old key through.
func TestAttackRotatedOutKeyOpensNoChannel(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	id := b.openRequest("prod-root")
	thief := b.goClientAs(b.carol, "gw")
	if out, _, code := runGo(t, thief, "whoami"); code != 0 || !strings.Contains(out, "user:        carol") {
		t.Fatalf("whoami before the reload: %d %q", code, out)
	}

	fresh := newClient(t, filepath.Join(b.dir, "carol-new"))
	b.reloadPolicy(authorizedKey(b.carol.PublicKey), authorizedKey(fresh.PublicKey))

	if s, err := thief.NewSession(); err == nil {
		s.Close()
		out, errOut, code := runGo(t, thief, "approve "+id+" --comment stolen")
		t.Fatalf("command channel opened on the rotated-out key; approve: %d %q %q", code, out, errOut)
	} else if !strings.Contains(err.Error(), "your key is no longer known") {
		t.Fatalf("command channel on the rotated-out key: %v", err)
	}
	b.waitEvent("session.refused", "identity no longer in policy")
	reqs, err := b.jit.Requests(testCtx(t), b.cfg.User("bob"), true)
	if err != nil || len(reqs) != 1 || reqs[0].State != "pending" || len(reqs[0].Approvals) != 0 {
		t.Fatalf("request %s after the attempt: %v %+v", id, err, reqs)
	}
	// The same holds for a session channel on a LOGIN@HOST connection.
	alice := b.goClientAs(b.alice, "root@web01")
	fresh2 := newClient(t, filepath.Join(b.dir, "alice-new"))
	b.reloadPolicy(authorizedKey(b.alice.PublicKey), authorizedKey(fresh2.PublicKey))
	if _, err := alice.NewSession(); err == nil || !strings.Contains(err.Error(), "your key is no longer known") {
		t.Fatalf("session channel on the rotated-out key: %v", err)
	}
	// The new key works.
	fresh2.TrustHost("127.0.0.1:"+b.port, b.hostKey)
	if out, errOut, code := b.run(fresh2, "gw", "whoami"); code != 0 || !strings.Contains(out, "user:        alice") {
		t.Fatalf("the new key: %d %q %q", code, out, errOut)
	}
}
