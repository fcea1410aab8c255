package gateway_test

import (
	"strconv"
	"strings"
	"testing"
)

// TestAttackKeptConnectionAfterGrantEnds holds one SSH connection open
// across the end of a grant: the connection was authenticated while the
// grant ran, but every new channel on it is authorized afresh, so a
// session opened after the grant ended is refused, with an audit event,
// and nothing runs on the host.
func TestAttackKeptConnectionAfterGrantEnds(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	gid := b.requestAndApprove("1h")
	c := b.goClientAs(b.bob, "root@web01")
	if out, errOut, code := runGoErr(c, "id -un"); code != 0 || out != "root\n" {
		t.Fatalf("under the grant: %d %q %q", code, out, errOut)
	}
	if _, errOut, code := b.run(b.bob, "gw", "revoke", strconv.FormatInt(gid, 10)); code != 0 {
		t.Fatalf("relinquish: %d %q", code, errOut)
	}
	out, errOut, code := runGoErr(c, "id -un")
	if code != 1 || strings.Contains(out, "root") || !strings.Contains(errOut, "no active grant for role prod-root on web01") {
		t.Fatalf("new channel after the grant ended: %d %q %q", code, out, errOut)
	}
	b.waitEvent("session.refused", "no active grant for role prod-root")
	if n := len(b.sessionsOf("bob")); n != 1 {
		t.Fatalf("%d session rows for bob, want the one under the grant", n)
	}
}
