package gateway_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/console"
	"github.com/warden-gw/warden/internal/optest"
	"github.com/warden-gw/warden/sso"
)

// The gateway finds what a leaver holds apart from the policy by asking
// its services for EndUser (gateway/directory.go, userEnder); a signature
// that drifted would make that lookup fail quietly in production, so the
// real services are held to it here, at compile time.
var _ interface {
	EndUser(ctx context.Context, user, reason, actor string) (int, error)
} = (*sso.Service)(nil)

var _ interface {
	EndUser(ctx context.Context, user, reason, actor string) (int, error)
} = (*console.Console)(nil)

// Attacks on cutting leavers off: what a person holds must end when the
// directory deprovisions them, and must not come back with them.

const (
	patchInactive = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`
	patchActive   = `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"True"}]}`
)

// A leaver's sign-in bindings end with them: dana, provisioned by the
// directory, binds a second key by `ssh gw login`; the directory
// deactivates her and re-activates her (Entra's soft delete and restore,
// or an Okta unassign and reassign). The bound key must stay dead: the
// binding was ended, on the record, when she left, not merely hidden
// while she was away. Before the fix the binding row stayed live, and
// the key worked again the moment she was re-activated (or for anyone
// later given her name), for the rest of its key_ttl.
func TestE2ELeaverSignInBindingDoesNotComeBack(t *testing.T) {
	sb := &ssoBed{}
	opt := bedOptions{}
	withSSO(t, &opt, sb, optest.User{Username: "dana@contoso.com", Password: "dana-pw"})
	b, srv, dana := directoryBedWith(t, opt, "")
	sb.testbed = b
	id := provisionDana(t, srv, dana)

	sb.signIn(t, b.stranger, "dana@contoso.com", "dana-pw")
	if out, errOut, code := b.run(b.stranger, "root@web01", "whoami"); code != 0 || out != "root\n" {
		t.Fatalf("bound key before leaving: %d %q %q", code, out, errOut)
	}

	if code, _ := scimDo(t, srv, "PATCH", "/Users/"+id, patchInactive); code != http.StatusOK {
		t.Fatalf("deactivate: %d", code)
	}
	if _, _, code := b.run(b.stranger, "root@web01", "true"); code != 255 {
		t.Fatalf("the leaver's bound key still reaches a host: exit %d", code)
	}
	if code, _ := scimDo(t, srv, "PATCH", "/Users/"+id, patchActive); code != http.StatusOK {
		t.Fatalf("reactivate: %d", code)
	}
	// Her own (directory) key is hers again; the bound one is not.
	if _, errOut, code := b.run(dana, "root@web01", "true"); code != 0 {
		t.Fatalf("re-activated user's own key: %d %q", code, errOut)
	}
	if _, _, code := b.run(b.stranger, "root@web01", "true"); code != 255 {
		t.Fatalf("the leaver's bound key reaches a host again after re-activation: exit %d", code)
	}
	b.waitEvent(sso.EventEnded, sso.EndDeprovisioned)
	if bs, err := sb.svc.Bindings(testCtx(t), "dana@contoso.com"); err != nil || len(bs) != 0 {
		t.Fatalf("live bindings after leaving: %v %+v", err, bs)
	}
}

// A leaver's console browser sessions end when the directory removes
// them, not at their next click: dana, signed in to the console, is
// deactivated and re-activated before her browser sends another request.
// Before the fix nothing had ended the session (the console judges a
// session only when it is used), so the browser went on signed in as if
// she had never left.
func TestE2ELeaverConsoleSessionDoesNotComeBack(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{bed: bedOptions{identity: directoryIdentity(t, "")}})
	srv, dana := scimServer(t, cb.testbed), danaClient(t, cb.testbed)
	id := provisionDana(t, srv, dana)
	cl, _ := cb.signInHTTP(dana)
	if code, _ := cb.get(cl, "/account"); code != http.StatusOK {
		t.Fatalf("/account before leaving: %d", code)
	}
	if code, _ := scimDo(t, srv, "PATCH", "/Users/"+id, patchInactive); code != http.StatusOK {
		t.Fatalf("deactivate: %d", code)
	}
	if code, _ := scimDo(t, srv, "PATCH", "/Users/"+id, patchActive); code != http.StatusOK {
		t.Fatalf("reactivate: %d", code)
	}
	if code, _ := cb.get(cl, "/account"); code != http.StatusSeeOther {
		t.Fatalf("the leaver's browser session is live again after re-activation: /account %d", code)
	}
	cb.waitEvent(console.EventSessionEnded, "deprovisioned")
}

// twoManRole needs two approvals from security for root on web01.
const twoManRole = "  - name: two-man\n    tenant: acme\n    hosts: {names: [web01]}\n    logins: [root]\n    privileged: true\n    eligible: [helpdesk]\n    approvers: [security]\n    approvals: 2\n"

// An approver the directory moves out of the approver group, or
// deactivates, vouches for nothing any more: dana, in security through
// the directory, cannot approve once removed from it, over SSH or in the
// console she is still signed in to, and an approval she gave before she
// left no longer counts towards a request's approvals.
func TestLeaverApproverApprovesNothing(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{bed: bedOptions{identity: directoryIdentity(t, ""), extraRoles: twoManRole}})
	srv, dana := scimServer(t, cb.testbed), danaClient(t, cb.testbed)
	id, gid := provisionIn(t, srv, dana, "security")
	request := func(role string) string {
		t.Helper()
		out, errOut, code := cb.run(cb.bob, "gw", "request", role, "--for", "30m", "--reason", "INC-1")
		m := regexp.MustCompile(`^request (\d+) opened`).FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf("request %s: %d %q %q", role, code, out, errOut)
		}
		return m[1]
	}
	state := func(req string) string {
		t.Helper()
		var s string
		if err := cb.db().QueryRow(`SELECT state FROM requests WHERE id = ?`, req).Scan(&s); err != nil {
			t.Fatal(err)
		}
		return s
	}

	// Approved before she leaves: one of two approvals.
	twoMan := request("two-man")
	if out, errOut, code := cb.run(dana, "gw", "approve", twoMan); code != 0 || out != "approval of request "+twoMan+" recorded; it needs more approvals\n" {
		t.Fatalf("dana's first approval: %d %q %q", code, out, errOut)
	}
	prodRoot := request("prod-root")
	cl, csrf := cb.signInHTTP(dana)

	// Moved out of security: no approval, over SSH or in the browser.
	code, _ := scimDo(t, srv, "PATCH", "/Groups/"+gid, fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"value":%q}]}]}`, id))
	if code != http.StatusNoContent {
		t.Fatalf("remove member: %d", code)
	}
	refused := "warden: no request " + prodRoot + " that you can act on"
	if _, errOut, code := cb.run(dana, "gw", "approve", prodRoot); code != 1 || errOut != refused+"\n" {
		t.Fatalf("approve over ssh after leaving the approvers: %d %q", code, errOut)
	}
	resp, body := cb.post(cl, "/requests/"+prodRoot+"/approve", url.Values{"csrf": {csrf}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, refused) {
		t.Fatalf("approve in the console after leaving the approvers: %d %.300s", resp.StatusCode, body)
	}
	if s := state(prodRoot); s != "pending" {
		t.Fatalf("prod-root request %s after a former approver's tries", s)
	}

	// Deactivated: her earlier approval of two-man no longer counts, so
	// carol's is the first of two again.
	if code, _ := scimDo(t, srv, "PATCH", "/Users/"+id, patchInactive); code != http.StatusOK {
		t.Fatalf("deactivate: %d", code)
	}
	if out, errOut, code := cb.run(cb.carol, "gw", "approve", twoMan); code != 0 || out != "approval of request "+twoMan+" recorded; it needs more approvals\n" {
		t.Fatalf("carol's approval with a leaver's: %d %q %q", code, out, errOut)
	}
	if s := state(twoMan); s != "pending" {
		t.Fatalf("two-man request %s: a leaver's approval counted", s)
	}
}

// A console link issued to dana before she leaves, and not opened until
// she is re-activated, is refused: the link was spent when she left.
// Before the fix it signed the browser in (the link checks only that the
// user and key are known when it is opened, and they were again).
func TestE2ELeaverConsoleLinkDoesNotComeBack(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{bed: bedOptions{identity: directoryIdentity(t, "")}})
	srv, dana := scimServer(t, cb.testbed), danaClient(t, cb.testbed)
	id := provisionDana(t, srv, dana)
	link := cb.consoleLink(dana)
	if code, _ := scimDo(t, srv, "PATCH", "/Users/"+id, patchInactive); code != http.StatusOK {
		t.Fatalf("deactivate: %d", code)
	}
	if code, _ := scimDo(t, srv, "PATCH", "/Users/"+id, patchActive); code != http.StatusOK {
		t.Fatalf("reactivate: %d", code)
	}
	cb.refusedPage(link)
	cb.waitEvent(console.EventSignInRefused, "link already used")
}

// A group the directory deletes takes its members' access with it: dana's
// command running as root on web01 through sysadmins ends with the
// directory's line and end_reason deprovisioned, and she is told of no
// host afterwards.
func TestE2ELeaverGroupDeletedEndsSessions(t *testing.T) {
	b, srv, dana := directoryBed(t)
	_, gid := provisionIn(t, srv, dana, "sysadmins")
	s, err := b.goClientAs(dana, "root@web01").NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var errb safeBuffer
	s.Stderr = &errb
	if _, err := s.StdinPipe(); err != nil { // held open: cat runs until ended
		t.Fatal(err)
	}
	if err := s.Start("cat"); err != nil {
		t.Fatal(err)
	}
	b.waitEvent("session.start", "dana@contoso.com")
	if code, _ := scimDo(t, srv, "DELETE", "/Groups/"+gid, ""); code != http.StatusNoContent {
		t.Fatalf("delete group: %d", code)
	}
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case <-done:
	case <-time.After(expectWait):
		t.Fatal("the session goes on after its group was deleted")
	}
	if !strings.Contains(errb.String(), "warden: access removed by the directory; session closed") {
		t.Fatalf("stderr %q", errb.String())
	}
	if got := b.waitSessionEnded(b.lastSession("dana@contoso.com").ID); got.EndReason != "deprovisioned" {
		t.Fatalf("end_reason %q", got.EndReason)
	}
	b.waitEvent("identity.group.deleted", "sysadmins")
	if _, errOut, code := b.run(dana, "root@web01", "true"); code != 1 || !strings.Contains(errOut, "unknown host web01") {
		t.Fatalf("after the group was deleted: %d %q", code, errOut)
	}
}
