package gateway_test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/warden-gw/warden/internal/sshtest"
)

// bgRole is a break-glass role without a stored credential: enough to
// show that one approver's veto holds.
const bgRole = `  - name: bg
    tenant: acme
    hosts: {names: [web01]}
    logins: [root]
    break_glass: true
    eligible: [helpdesk]
    approvers: [security, management]
`

// openRequest has bob request role and returns the request ID.
func (b *testbed) openRequest(role string) string {
	b.t.Helper()
	out, errOut, code := b.run(b.bob, "gw", "request", role, "--for", "30m", "--reason", "'INC-1'")
	m := regexp.MustCompile(`^request (\d+) opened`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		b.t.Fatalf("request %s: %d %q %q", role, code, out, errOut)
	}
	return m[1]
}

// TestDenyHoldsThroughSSH: after a deny, asking again is refused with who
// denied and when, until an approver clears the denial; for break-glass
// the veto of one approver holds until then.
func TestDenyHoldsThroughSSH(t *testing.T) {
	b := newTestbed(t, bedOptions{extraRoles: bgRole})
	id := b.openRequest("prod-root")
	if _, errOut, code := b.run(b.carol, "gw", "deny", id, "--reason", "'not during the freeze'"); code != 0 {
		t.Fatalf("deny: %q", errOut)
	}
	held := regexp.MustCompile(`^warden: request for prod-root denied by carol at \d\d:\d\dZ; you may ask again after \d\d:\d\dZ or ask an approver to clear it\n$`)
	_, errOut, code := b.run(b.bob, "gw", "request", "prod-root", "--for", "30m", "--reason", "'again'")
	if code != 1 || !held.MatchString(errOut) {
		t.Fatalf("re-request: %d %q", code, errOut)
	}
	b.waitEvent("command.refused", "denied by carol")

	for name, tc := range map[string]struct {
		c    *sshtest.Client
		args []string
		want string
		code int
	}{
		"the requester":         {b.bob, []string{"prod-root", "--user", "bob", "--reason", "x"}, `warden: you are not an approver of "prod-root"` + "\n", 1},
		"another role approver": {b.dave, []string{"prod-root", "--user", "bob", "--reason", "x"}, `warden: you are not an approver of "prod-root"` + "\n", 1},
		"no reason":             {b.carol, []string{"prod-root", "--user", "bob"}, "warden: --reason TEXT is required to clear a denial (usage: clear-denial ROLE --user USER --reason TEXT)\n", 2},
		"no user":               {b.carol, []string{"prod-root", "--reason", "x"}, "warden: --user USER is required: whose denial to clear (usage: clear-denial ROLE --user USER --reason TEXT)\n", 2},
		"nothing held":          {b.carol, []string{"prod-root", "--user", "alice", "--reason", "x"}, `warden: no denial holds requests by "alice" for prod-root` + "\n", 1},
	} {
		_, errOut, code := b.run(tc.c, "gw", append([]string{"clear-denial"}, tc.args...)...)
		if code != tc.code || errOut != tc.want {
			t.Errorf("%s: code %d stderr %q", name, code, errOut)
		}
	}
	if evs := b.events("denial.cleared"); len(evs) != 0 {
		t.Fatalf("refused clears wrote %+v", evs)
	}
	out, errOut, code := b.run(b.carol, "gw", "clear-denial", "prod-root", "--user", "bob", "--reason", "'ticket fixed'")
	if code != 0 || out != "denial of request "+id+" cleared: bob may request prod-root again\n" {
		t.Fatalf("clear: %d %q %q", code, out, errOut)
	}
	if ev := b.waitEvent("denial.cleared", "carol"); ev.Subject != "request:"+id || ev.Data["comment"] != "ticket fixed" || ev.Data["denied_by"] != "carol" {
		t.Fatalf("event %+v", ev)
	}
	b.openRequest("prod-root") // accepted again

	// Break-glass: dave's veto holds although carol approved, and asking
	// again cannot route around it.
	id = b.openRequest("bg")
	if _, errOut, code := b.run(b.carol, "gw", "approve", id); code != 0 {
		t.Fatalf("approve: %q", errOut)
	}
	if _, errOut, code := b.run(b.dave, "gw", "deny", id, "--reason", "'use the runbook'"); code != 0 {
		t.Fatalf("deny: %q", errOut)
	}
	_, errOut, code = b.run(b.bob, "gw", "request", "bg", "--for", "30m", "--reason", "'again'")
	if code != 1 || !regexp.MustCompile(`^warden: request for bg denied by dave at \d\d:\d\dZ; a break-glass denial holds until an approver clears it\n$`).MatchString(errOut) {
		t.Fatalf("break-glass re-request: %d %q", code, errOut)
	}
	out, _, code = b.run(b.carol, "gw", "clear-denial", "bg", "--user", "bob", "--reason", "'runbook done'", "--json")
	var d struct {
		RequestID int64  `json:"request_id"`
		DeniedBy  string `json:"denied_by"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &d) != nil || strconv.FormatInt(d.RequestID, 10) != id || d.DeniedBy != "dave" {
		t.Fatalf("clear --json: %d %q", code, out)
	}
	b.openRequest("bg")
	if out, _, _ := b.run(b.carol, "gw", "help"); !strings.Contains(out, "clear-denial ROLE --user USER --reason TEXT") {
		t.Errorf("help does not list clear-denial:\n%s", out)
	}
}
