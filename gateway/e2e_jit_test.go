package gateway_test

import (
	"encoding/json"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/sshtest"
)

// requestAndApprove has bob request prod-root for d and carol approve it,
// through the SSH command interface; it returns the grant ID.
func (b *testbed) requestAndApprove(d string) int64 {
	b.t.Helper()
	out, errOut, code := b.run(b.bob, "gw", "request", "prod-root", "--for", d, "--reason", "'INC-4711 disk full'", "--ticket", "INC-4711")
	if code != 0 {
		b.t.Fatalf("request: %d %q", code, errOut)
	}
	m := regexp.MustCompile(`^request (\d+) opened`).FindStringSubmatch(out)
	if m == nil {
		b.t.Fatalf("request output %q", out)
	}
	out, errOut, code = b.run(b.carol, "gw", "approve", m[1], "--comment", "ok")
	if code != 0 {
		b.t.Fatalf("approve: %d %q", code, errOut)
	}
	g := regexp.MustCompile(`grant (\d+) for bob on prod-root until`).FindStringSubmatch(out)
	if g == nil {
		b.t.Fatalf("approve output %q", out)
	}
	id, _ := strconv.ParseInt(g[1], 10, 64)
	return id
}

func TestGrantAdmitsPrivilegedSessionAndEndsItOnTime(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	// Without a grant bob is refused with the command to run.
	if _, errOut, code := b.run(b.bob, "root@web01", "true"); code != 1 || !strings.Contains(errOut, "request prod-root") {
		t.Fatalf("before grant: %d %q", code, errOut)
	}
	gid := b.requestAndApprove("3s")
	p := b.bob.StartPTY(t, b.port, "root@web01", 80, 24)
	// The session was admitted under the grant (its row exists) before the
	// grant ended. How fast the host's shell starts is not the point.
	for deadline := time.Now().Add(3 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		list, err := b.store.Sessions(testCtx(t), audit.SessionFilter{User: "bob"})
		if err == nil && len(list) == 1 && list[0].GrantID == gid {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no session admitted under grant %d: %v %+v", gid, err, list)
		}
	}
	// The session is closed by the gateway when the grant ends, with a line
	// that says so; the client exits with status 1.
	p.Expect(t, `warden: grant `+strconv.FormatInt(gid, 10)+` expired at \d\d:\d\d:\d\dZ; session closed`, expectWait)
	code, err := p.Wait(expectWait)
	if err != nil || code != 1 {
		t.Fatalf("exit %d %v", code, err)
	}
	s := b.lastSession("bob")
	if s.EndReason != "grant_expired" || s.GrantID != gid || s.Role != "prod-root" {
		t.Fatalf("row %+v", s)
	}
	grants, err := b.jit.Grants(testCtx(t), "bob", false)
	if err != nil || len(grants) != 1 {
		t.Fatalf("grants %v %v", grants, err)
	}
	// Gone within a second of the grant's end, by the gateway's own clock.
	if late := s.EndedAt.Sub(grants[0].ExpiresAt); late > time.Second || late < 0 {
		t.Fatalf("session ended %v after the grant expired", late)
	}
	// And after expiry a new session is refused again.
	if _, _, code := b.run(b.bob, "root@web01", "true"); code != 1 {
		t.Fatalf("after expiry: code %d", code)
	}
}

func TestRevokeClosesLiveSession(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	gid := b.requestAndApprove("1h")
	// hosts now shows the grant that admits bob.
	if out, _, code := b.run(b.bob, "gw", "hosts"); code != 0 || !strings.Contains(out, "now (grant "+strconv.FormatInt(gid, 10)+")") {
		t.Fatalf("hosts: %q", out)
	}
	p := b.bob.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("echo in-$((3*3))\r")
	p.Expect(t, `in-9`, expectWait)
	out, errOut, code := b.run(b.carol, "gw", "revoke", strconv.FormatInt(gid, 10), "--reason", "done")
	if code != 0 || !strings.Contains(out, "revoked; 1 live session(s) closed") {
		t.Fatalf("revoke: %d %q %q", code, out, errOut)
	}
	p.Expect(t, `warden: grant `+strconv.FormatInt(gid, 10)+` was revoked; session closed`, expectWait)
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	if s := b.lastSession("bob"); s.EndReason != "grant_revoked" {
		t.Fatalf("end reason %q", s.EndReason)
	}
}

func TestElevationRulesThroughSSH(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	out, _, code := b.run(b.bob, "gw", "request", "prod-root", "--for", "30m", "--reason", "'INC-1'")
	if code != 0 {
		t.Fatalf("request: %q", out)
	}
	id := regexp.MustCompile(`\d+`).FindString(out)
	for name, tc := range map[string]struct {
		c    *sshtest.Client
		args []string
		want string
		code int
	}{
		"own request":      {b.bob, []string{"approve", id}, "warden: you cannot approve your own request", 1},
		"not an approver":  {b.alice, []string{"approve", id}, "warden: no request " + id + " that you can act on", 1},
		"unknown id":       {b.carol, []string{"approve", "999"}, "warden: no request 999 that you can act on", 1},
		"not eligible":     {b.carol, []string{"request", "prod-root", "--for", "1h", "--reason", "x"}, "warden: no role \"prod-root\" that you may request", 1},
		"too long":         {b.bob, []string{"request", "prod-root", "--for", "3h", "--reason", "x"}, "warden: role prod-root allows at most 2h (asked 3h)", 1},
		"negative":         {b.bob, []string{"request", "prod-root", "--for", "-1h", "--reason", "x"}, "warden: duration must be positive", 1},
		"no reason":        {b.bob, []string{"request", "prod-root", "--for", "1h"}, "warden: prod-root requires a reason", 1},
		"unknown role":     {b.bob, []string{"request", "nope", "--for", "1h", "--reason", "x"}, "warden: no role \"nope\" that you may request", 1},
		"bad id":           {b.carol, []string{"approve", "abc"}, "warden: request ID \"abc\" is not a positive integer", 2},
		"deny needs why":   {b.carol, []string{"deny", id}, "warden: --reason TEXT is required to deny", 2},
		"huge reason":      {b.bob, []string{"request", "prod-root", "--for", "1h", "--reason", strings.Repeat("x", 100000)}, "warden: reason is 100000 bytes; at most 1024", 1},
		"missing duration": {b.bob, []string{"request", "prod-root", "--reason", "x"}, "warden: --for DURATION is required", 2},
	} {
		_, errOut, code := b.run(tc.c, "gw", tc.args...)
		if code != tc.code || !strings.HasPrefix(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("%s: code %d stderr %q", name, code, errOut)
		}
	}
	// carol sees the pending request as JSON; deciding it twice fails.
	out, _, code = b.run(b.carol, "gw", "requests", "--pending", "--json")
	var reqs []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &reqs) != nil || len(reqs) != 1 || reqs[0]["state"] != "pending" {
		t.Fatalf("requests: %d %q", code, out)
	}
	if _, errOut, code := b.run(b.carol, "gw", "deny", id, "--reason", "'not today'"); code != 0 {
		t.Fatalf("deny: %q", errOut)
	}
	if _, errOut, code := b.run(b.carol, "gw", "approve", id); code != 1 || !strings.Contains(errOut, "denied") {
		t.Fatalf("second decision: %d %q", code, errOut)
	}
	b.waitEvent("request.denied", "bob")
	out, _, code = b.run(b.bob, "gw", "grants", "--json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("grants: %d %q", code, out)
	}
}
