package gateway_test

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/warden-gw/warden/console"
	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/internal/sshtest"
)

// The console runs commands through the gateway: warden serve finds the
// method by a type assertion, so its signature is pinned here.
var _ console.Commands = (*gateway.Server)(nil)

// consoleRun runs args as user through RunCommand, the console's path, and
// returns stdout, the refusal line ("" when none) and the exit status.
func (b *testbed) consoleRun(user string, args ...string) (string, string, int) {
	b.t.Helper()
	out, err := b.gw.RunCommand(testCtx(b.t), user, args)
	if err == nil {
		return string(out), "", 0
	}
	var ce *gateway.CommandError
	if !errors.As(err, &ce) {
		b.t.Fatalf("RunCommand %s %q: %T %v", user, args, err, err)
	}
	if len(out) != 0 {
		b.t.Fatalf("RunCommand %s %q: output %q with a refusal", user, args, out)
	}
	return "", ce.Line + "\n", ce.Status
}

// TestConsoleCommandsAreTheSSHCommands: what the console runs for a user is
// what that user gets over real ssh, byte for byte, for listings, the
// approve rules (own request, not an approver, an unknown ID) and usage
// errors; a console approval admits the requester over real ssh, and the
// decision names the approver.
func TestConsoleCommandsAreTheSSHCommands(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	id := b.openRequest("prod-root")

	// Refusals: the same line and status through both paths.
	for name, tc := range map[string]struct {
		c    *sshtest.Client
		user string
		args []string
	}{
		"approve own request":      {b.bob, "bob", []string{"approve", id}},
		"not an approver":          {b.dave, "dave", []string{"approve", id, "--comment", "looks fine"}},
		"unknown request":          {b.carol, "carol", []string{"approve", "999"}},
		"deny without reason":      {b.carol, "carol", []string{"deny", id}},
		"revoke someone's grant":   {b.dave, "dave", []string{"revoke", "1"}},
		"kill as a plain user":     {b.bob, "bob", []string{"kill", "AAAAAAAAAAAAAAAAAAAAAAAAAA"}},
		"not an ID":                {b.carol, "carol", []string{"approve", "1;rm"}},
		"quoted words stay intact": {b.carol, "carol", []string{"deny", "998", "--reason", "it's 'quoted' \"twice\""}},
	} {
		sshArgs := make([]string, len(tc.args))
		for i, a := range tc.args {
			sshArgs[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		_, sshErr, sshCode := b.run(tc.c, "gw", sshArgs...)
		out, conErr, conCode := b.consoleRun(tc.user, tc.args...)
		if sshCode == 0 || conErr != sshErr || conCode != sshCode || out != "" {
			t.Errorf("%s: ssh %d %q, console %d %q", name, sshCode, sshErr, conCode, conErr)
		}
	}
	// A foreign request and a missing one read the same.
	_, foreign, _ := b.consoleRun("dave", "approve", id)
	_, missing, _ := b.consoleRun("dave", "approve", "999")
	if strings.ReplaceAll(foreign, id, "N") != strings.ReplaceAll(missing, "999", "N") {
		t.Fatalf("foreign %q vs missing %q", foreign, missing)
	}
	// Every console refusal is audited as over SSH, marked as the console's.
	ev := b.waitEvent("command.refused", "via:console")
	if ev.Actor == "" || ev.Data["reason"] == "" {
		t.Fatalf("event %+v", ev)
	}
	n := 0
	for _, e := range b.events("command.refused") {
		if e.Data["via"] == "console" && e.Actor == "bob" && e.Subject == "approve "+id {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("bob's console refusal audited %d times", n)
	}

	// Listings: identical JSON.
	for _, tc := range []struct {
		c    *sshtest.Client
		user string
		args []string
	}{
		{b.carol, "carol", []string{"requests", "--pending", "--json"}},
		{b.dave, "dave", []string{"requests", "--json"}},
		{b.bob, "bob", []string{"requests", "--json"}},
		{b.erin, "erin", []string{"exceptions", "--all", "--json"}},
		{b.alice, "alice", []string{"hosts", "--json"}},
	} {
		sshOut, _, code := b.run(tc.c, "gw", tc.args...)
		out, errLine, conCode := b.consoleRun(tc.user, tc.args...)
		if code != 0 || conCode != 0 || out != sshOut {
			t.Errorf("%s %q: ssh %d %q; console %d %q %q", tc.user, tc.args, code, sshOut, conCode, out, errLine)
		}
	}
	var pending []struct {
		ID   int64  `json:"id"`
		User string `json:"user"`
	}
	out, _, _ := b.consoleRun("dave", "requests", "--pending", "--json")
	if err := json.Unmarshal([]byte(out), &pending); err != nil || len(pending) != 0 {
		t.Fatalf("dave sees %q", out)
	}

	// The approver approves in the console; the requester logs in over ssh.
	out, errLine, code := b.consoleRun("carol", "approve", id, "--comment", "ok from the browser")
	if code != 0 || !regexp.MustCompile(`^request `+id+` approved: grant \d+ for bob on prod-root until `).MatchString(out) {
		t.Fatalf("approve: %d %q %q", code, out, errLine)
	}
	if ev := b.waitEvent("request.approved", "carol"); ev.Actor != "carol" {
		t.Fatalf("approved by %q", ev.Actor)
	}
	if so, se, code := b.run(b.bob, "root@web01", "id", "-un"); code != 0 || strings.TrimSpace(so) == "" {
		t.Fatalf("bob under the grant: %d %q %q", code, so, se)
	}
	// A second decision on it is refused the same way as over SSH.
	_, sshErr, _ := b.run(b.carol, "gw", "approve", id)
	if _, conErr, _ := b.consoleRun("carol", "approve", id); conErr != sshErr {
		t.Fatalf("decided twice: ssh %q console %q", sshErr, conErr)
	}
}

// TestConsoleOffersOnlyItsCommands: watch, login, logout, console, help,
// clear-denial and an empty line are not reachable from the console, nor
// is any user the policy does not hold; each refusal is audited.
func TestConsoleOffersOnlyItsCommands(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	for _, args := range [][]string{{"watch", "AAAAAAAAAAAAAAAAAAAAAAAAAA"}, {"login"}, {"logout"}, {"console"}, {"help"}, {}, {"request", "prod-root", "--for", "1h"}, {"clear-denial", "prod-root"}, {"cancel", "1"}} {
		out, line, code := b.consoleRun("erin", args...)
		if code == 0 || out != "" || !strings.HasPrefix(line, "warden: ") {
			t.Errorf("%q: %d %q %q", args, code, out, line)
		}
	}
	if _, line, code := b.consoleRun("mallory", "requests", "--json"); code != 1 || line != "warden: your account is no longer known\n" {
		t.Fatalf("unknown user: %d %q", code, line)
	}
	b.waitEvent("command.refused", "mallory")
	b.waitEvent("command.refused", "watch")
}

// TestConsoleBreakGlassAndCooldownRules: break-glass needs two distinct
// approvers whether they click or type, one approver cannot count twice,
// and a deny in the console holds the requester's next request over SSH.
func TestConsoleBreakGlassAndCooldownRules(t *testing.T) {
	b := newTestbed(t, bedOptions{extraRoles: bgRole})
	id := b.openRequest("bg")
	out, line, code := b.consoleRun("carol", "approve", id)
	if code != 0 || out != "approval of request "+id+" recorded; it needs more approvals\n" {
		t.Fatalf("first approval: %d %q %q", code, out, line)
	}
	if _, line, code := b.consoleRun("carol", "approve", id); code != 1 || line != "warden: you already decided request "+id+"\n" {
		t.Fatalf("same approver again: %d %q", code, line)
	}
	if _, errOut, code := b.run(b.carol, "gw", "approve", id); code != 1 || errOut != "warden: you already decided request "+id+"\n" {
		t.Fatalf("same approver over ssh: %d %q", code, errOut)
	}
	out, line, code = b.consoleRun("dave", "approve", id)
	if code != 0 || !strings.HasPrefix(out, "request "+id+" approved: grant ") {
		t.Fatalf("second approver: %d %q %q", code, out, line)
	}

	id = b.openRequest("prod-root")
	if out, line, code := b.consoleRun("carol", "deny", id, "--reason", "not during the freeze"); code != 0 || out != "request "+id+" denied\n" {
		t.Fatalf("deny: %d %q %q", code, out, line)
	}
	held := regexp.MustCompile(`^warden: request for prod-root denied by carol at \d\d:\d\dZ; you may ask again after \d\d:\d\dZ`)
	if _, errOut, code := b.run(b.bob, "gw", "request", "prod-root", "--for", "30m", "--reason", "'again'"); code != 1 || !held.MatchString(errOut) {
		t.Fatalf("re-request after a console deny: %d %q", code, errOut)
	}
}
