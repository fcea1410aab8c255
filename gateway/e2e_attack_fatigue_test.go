package gateway_test

import (
	"regexp"
	"testing"
)

// TestAttackRequestCancelLoopThroughSSH: bob opens a request and cancels
// it before carol can deny it, again and again, to flood the approvers
// with alerts until one approves by mistake. The fourth request within the
// hour is refused with when he may ask again.
func TestAttackRequestCancelLoopThroughSSH(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	for i := 0; i < 3; i++ {
		id := b.openRequest("prod-root")
		if out, errOut, code := b.run(b.bob, "gw", "cancel", id); code != 0 {
			t.Fatalf("cancel %s: %d %q %q", id, code, out, errOut)
		}
	}
	_, errOut, code := b.run(b.bob, "gw", "request", "prod-root", "--for", "30m", "--reason", "'INC-1'")
	held := regexp.MustCompile(`^warden: you withdrew or let lapse 3 requests for prod-root in the last hour; you may ask again after \d\d:\d\dZ\n$`)
	if code != 1 || !held.MatchString(errOut) {
		t.Fatalf("fourth request: %d %q", code, errOut)
	}
	if n := len(b.events("request.created")); n != 3 {
		t.Fatalf("%d request.created events, want 3", n)
	}
	b.waitEvent("command.refused", "withdrew or let lapse")
}
