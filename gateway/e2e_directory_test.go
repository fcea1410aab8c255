package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/scim"
)

const scimToken = "entra-test-token-0123456789"

// directoryBed is a testbed with an Entra directory behind a real SCIM
// endpoint over loopback HTTP, and dana, whom the directory provisions.
func directoryBed(t *testing.T) (*testbed, *httptest.Server, *sshtest.Client) {
	return directoryBedWith(t, bedOptions{}, "")
}

// directoryBedWith is directoryBed with more policy, and the directory
// limited to tenant when it is not "".
func directoryBedWith(t *testing.T, opt bedOptions, tenant string) (*testbed, *httptest.Server, *sshtest.Client) {
	t.Helper()
	opt.identity = directoryIdentity(t, tenant)
	b := newTestbed(t, opt)
	return b, scimServer(t, b), danaClient(t, b)
}

// directoryIdentity is the identity: section of an Entra directory whose
// token is scimToken, limited to tenant when it is not "".
func directoryIdentity(t *testing.T, tenant string) string {
	t.Helper()
	tok := filepath.Join(t.TempDir(), "entra.token")
	if err := os.WriteFile(tok, []byte(scimToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	limit := ""
	if tenant != "" {
		limit = ", tenant: " + tenant
	}
	return fmt.Sprintf("http_listen: \"127.0.0.1:0\"\nidentity:\n  directories:\n    - {name: entra, token_file: %s%s}\n", tok, limit)
}

// scimServer serves b's directory over a real SCIM endpoint on loopback.
func scimServer(t *testing.T, b *testbed) *httptest.Server {
	t.Helper()
	h, err := scim.NewHandler(b.directory, scim.Options{Policy: func() *policy.Config { return b.cfg }, Store: b.store})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv
}

// danaClient is the OpenSSH client of dana, whom the directory provisions.
func danaClient(t *testing.T, b *testbed) *sshtest.Client {
	dana := newClient(t, filepath.Join(b.dir, "dana"))
	dana.TrustHost("127.0.0.1:"+b.port, b.hostKey)
	return dana
}

func scimDo(t *testing.T, srv *httptest.Server, method, path, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+"/scim/v2"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+scimToken)
	req.Header.Set("Content-Type", "application/scim+json")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, raw)
		}
	}
	return resp.StatusCode, m
}

// provisionDana creates dana with her key, in the sysadmins group (which
// holds web-admin: root on web01), and returns her SCIM id.
func provisionDana(t *testing.T, srv *httptest.Server, dana *sshtest.Client) string {
	id, _ := provisionIn(t, srv, dana, "sysadmins")
	return id
}

// provisionIn creates dana in one group and returns her and its SCIM ids.
func provisionIn(t *testing.T, srv *httptest.Server, dana *sshtest.Client, group string) (string, string) {
	t.Helper()
	key := strings.TrimSpace(authorizedKey(dana.PublicKey))
	code, u := scimDo(t, srv, "POST", "/Users", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:warden:2.0:User"],
		"externalId":"0a1b-dana","userName":"dana@contoso.com","active":"True",
		"urn:ietf:params:scim:schemas:extension:warden:2.0:User":{"sshPublicKeys":%q}}`, key+"\n"))
	if code != http.StatusCreated {
		t.Fatalf("create dana: %d %v", code, u)
	}
	id := u["id"].(string)
	code, g := scimDo(t, srv, "POST", "/Groups", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":%q,"members":[{"value":%q}]}`, group, id))
	if code != http.StatusCreated {
		t.Fatalf("create group: %d %v", code, g)
	}
	return id, g["id"].(string)
}

// The leaver path end to end: a joiner provisioned over SCIM logs in with
// the real ssh client; a PATCH active "False" (Entra's string boolean)
// closes her live root shell with the directory's line, the session row
// says deprovisioned, and her key no longer authenticates.
func TestE2EDirectoryLeaverClosesLiveShell(t *testing.T) {
	b, srv, dana := directoryBed(t)
	id := provisionDana(t, srv, dana)

	// Joiner: whoami shows the source, and a shell opens at once.
	out, errOut, code := b.run(dana, "gw", "whoami")
	if code != 0 || !strings.Contains(out, "dana@contoso.com") || !strings.Contains(out, "source:      scim:entra (active)") || !strings.Contains(out, "sysadmins") || !strings.Contains(out, "web-admin") {
		t.Fatalf("whoami: %d %q %q", code, out, errOut)
	}
	p := dana.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)

	code, resp := scimDo(t, srv, "PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`)
	if code != http.StatusOK || resp["active"] != false {
		t.Fatalf("patch: %d %v", code, resp)
	}
	p.Expect(t, `warden: access removed by the directory; session closed`, expectWait)
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	s := b.lastSession("dana@contoso.com")
	if got := b.waitSessionEnded(s.ID); got.EndReason != "deprovisioned" {
		t.Fatalf("end_reason %q", got.EndReason)
	}
	b.waitEvent("identity.user.deactivated", "dana@contoso.com")
	b.waitEvent("identity.access_removed", "dana@contoso.com")
	if _, errOut, code := b.run(dana, "root@web01", "true"); code == 0 || !strings.Contains(errOut, "Permission denied") {
		t.Fatalf("leaver's key still works: %d %q", code, errOut)
	}
	// A retried PATCH changes nothing and is answered the same.
	if code, resp := scimDo(t, srv, "PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`); code != 200 || resp["active"] != false {
		t.Fatalf("retry: %d %v", code, resp)
	}
	if n := len(b.events("identity.user.deactivated")); n != 1 {
		t.Fatalf("%d deactivation events after a retry", n)
	}
}

// A mover: dana, provisioned into helpdesk, requests prod-root at once
// (joiner), works under the grant, and is moved out of helpdesk by
// Entra's member removal: the shell closes with the directory's line, the
// grant ends deprovisioned, and she can no longer request the role.
func TestE2EDirectoryMover(t *testing.T) {
	b, srv, dana := directoryBed(t)
	id, gid := provisionIn(t, srv, dana, "helpdesk")
	out, errOut, code := b.run(dana, "gw", "request", "prod-root", "--for", "30m", "--reason", "INC-1")
	m := regexp.MustCompile(`^request (\d+) opened`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("joiner request: %d %q %q", code, out, errOut)
	}
	if _, errOut, code := b.run(b.carol, "gw", "approve", m[1]); code != 0 {
		t.Fatalf("approve: %q", errOut)
	}
	p := dana.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)

	code, _ = scimDo(t, srv, "PATCH", "/Groups/"+gid, fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"value":%q}]}]}`, id))
	if code != http.StatusNoContent {
		t.Fatalf("remove member: %d", code)
	}
	p.Expect(t, `warden: access removed by the directory; session closed`, expectWait)
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	if s := b.waitSessionEnded(b.lastSession("dana@contoso.com").ID); s.EndReason != "deprovisioned" {
		t.Fatalf("session end_reason %q", s.EndReason)
	}
	var reason string
	if err := b.db().QueryRow(`SELECT end_reason FROM grants WHERE user = 'dana@contoso.com'`).Scan(&reason); err != nil || reason != "deprovisioned" {
		t.Fatalf("grant end_reason %q %v", reason, err)
	}
	if _, errOut, code := b.run(dana, "gw", "request", "prod-root", "--for", "30m", "--reason", "INC-2"); code != 1 || !strings.Contains(errOut, `no role "prod-root" that you may request`) {
		t.Fatalf("mover still eligible: %d %q", code, errOut)
	}
	// Still a user: whoami works, with no groups.
	if out, _, code := b.run(dana, "gw", "whoami"); code != 0 || !strings.Contains(out, "groups:      (none)") {
		t.Fatalf("whoami: %d %q", code, out)
	}
}

// A delete cancels pending requests and leaves a tombstone; the name stays
// in history, and the same externalId re-creates the same identity.
func TestE2EDirectoryDeleteAndRecreate(t *testing.T) {
	b, srv, dana := directoryBed(t)
	id, _ := provisionIn(t, srv, dana, "helpdesk")
	if _, errOut, code := b.run(dana, "gw", "request", "prod-root", "--for", "30m", "--reason", "INC-1"); code != 0 {
		t.Fatalf("request: %q", errOut)
	}
	if code, _ := scimDo(t, srv, "DELETE", "/Users/"+id, ""); code != http.StatusNoContent {
		t.Fatalf("delete: %d", code)
	}
	var state string
	if err := b.db().QueryRow(`SELECT state FROM requests WHERE user = 'dana@contoso.com'`).Scan(&state); err != nil || state != "cancelled" {
		t.Fatalf("request state %q %v", state, err)
	}
	b.waitEvent("request.cancelled", "scim:entra")
	b.waitEvent("identity.user.deleted", "dana@contoso.com")
	if _, errOut, code := b.run(dana, "gw", "whoami"); code == 0 || !strings.Contains(errOut, "Permission denied") {
		t.Fatalf("deleted user authenticates: %q", errOut)
	}
	if code, _ := scimDo(t, srv, "GET", "/Users/"+id, ""); code != http.StatusNotFound {
		t.Fatalf("tombstone visible: %d", code)
	}
	key := strings.TrimSpace(authorizedKey(dana.PublicKey))
	code, u := scimDo(t, srv, "POST", "/Users", fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:warden:2.0:User"],
		"externalId":"0a1b-dana","userName":"dana@contoso.com","urn:ietf:params:scim:schemas:extension:warden:2.0:User":{"sshPublicKeys":[%q]}}`, key))
	if code != http.StatusCreated || u["id"] != id {
		t.Fatalf("re-create: %d %v (want id %s)", code, u, id)
	}
	if out, _, code := b.run(dana, "gw", "whoami"); code != 0 || !strings.Contains(out, "dana@contoso.com") {
		t.Fatalf("re-created user: %d %q", code, out)
	}
}

// A directory limited to tenant globex provisions dana into sysadmins,
// which holds root in both tenants: she reaches globex's host and not
// acme's, and sees only globex's hosts.
func TestE2EDirectoryTenantLimit(t *testing.T) {
	b, srv, dana := directoryBedWith(t, bedOptions{
		tenants: func(h *sshtest.Host) string {
			return fmt.Sprintf("  - name: globex\n    hosts:\n      - name: app01\n        address: %q\n        host_key: %q\n",
				h.Addr, authorizedKey(h.HostKey))
		},
		extraRoles: "  - name: globex-admin\n    tenant: globex\n    hosts: {names: [app01]}\n    logins: [root]\n    members: [sysadmins]\n",
	}, "globex")
	provisionDana(t, srv, dana)
	if out, errOut, code := b.run(dana, "root@app01", "echo in-globex"); code != 0 || !strings.Contains(out, "in-globex") {
		t.Fatalf("own tenant: %d %q %q", code, out, errOut)
	}
	if _, errOut, code := b.run(dana, "root@web01", "true"); code != 1 || !strings.Contains(errOut, "unknown host web01") {
		t.Fatalf("other tenant: %d %q", code, errOut)
	}
	if out, _, code := b.run(dana, "gw", "hosts"); code != 0 || strings.Contains(out, "web01") || !strings.Contains(out, "app01") {
		t.Fatalf("hosts: %d %q", code, out)
	}
	// Alice, from the policy file, keeps both.
	if _, errOut, code := b.run(b.alice, "root@web01", "true"); code != 0 {
		t.Fatalf("alice: %q", errOut)
	}
}

// A mover with standing access: dana's shell as root on web01 comes from
// sysadmins (web-admin); when the directory empties the group (Okta's
// replace members), the shell closes, and a key change made afterwards
// takes effect at once too.
func TestE2EDirectoryMoverStanding(t *testing.T) {
	b, srv, dana := directoryBed(t)
	id, gid := provisionIn(t, srv, dana, "sysadmins")
	p := dana.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	code, _ := scimDo(t, srv, "PATCH", "/Groups/"+gid, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"members","value":[]}]}`)
	if code != http.StatusNoContent {
		t.Fatalf("replace members: %d", code)
	}
	p.Expect(t, `warden: access removed by the directory; session closed`, expectWait)
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	if s := b.waitSessionEnded(b.lastSession("dana@contoso.com").ID); s.EndReason != "deprovisioned" {
		t.Fatalf("end_reason %q", s.EndReason)
	}
	if _, errOut, code := b.run(dana, "root@web01", "true"); code != 1 || !strings.Contains(errOut, "unknown host web01") {
		t.Fatalf("after the move: %d %q", code, errOut)
	}
	// Removing her key: she no longer authenticates at all.
	code, _ = scimDo(t, srv, "PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"urn:ietf:params:scim:schemas:extension:warden:2.0:User:sshPublicKeys"}]}`)
	if code != http.StatusOK {
		t.Fatalf("remove keys: %d", code)
	}
	if _, errOut, code := b.run(dana, "gw", "whoami"); code == 0 || !strings.Contains(errOut, "Permission denied") {
		t.Fatalf("removed key still works: %q", errOut)
	}
}

// A policy reload (SIGHUP, warden reload) judges live sessions by the new
// YAML policy merged with the directory users: a directory user's session
// that the reload does not touch goes on. Judging by the YAML file alone
// would end every directory user's session on each reload.
func TestE2EDirectoryUserSurvivesAReload(t *testing.T) {
	b, srv, dana := directoryBed(t)
	provisionDana(t, srv, dana)
	p := dana.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)

	cfg, err := policy.Parse(b.cfg.Source, b.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	if ended := b.gw.ApplyPolicy(context.Background(), cfg); len(ended) != 0 {
		t.Fatalf("an unchanged reload ended %v", ended)
	}
	p.Send("echo still-$((20+22))\r")
	p.Expect(t, `still-42`, expectWait)
}
