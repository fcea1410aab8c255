package scim_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/identity"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/scim"
)

const groupSchemas = `"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"]`

// TestAttackEmptyGroupIsReadableAfterCreate: Entra and Okta create a
// group without members and add them later (or never, for an empty
// group), and look groups up by displayName on every cycle. The new,
// empty group changes nobody's access, yet GET /Groups/{id} and the
// displayName filter must find it at once: an IdP that found nothing
// would POST again, and get 409 "already exists" on every cycle.
func TestAttackEmptyGroupIsReadableAfterCreate(t *testing.T) {
	b := newBed(t)
	code, g := b.do(t, "POST", "/Groups", `{`+groupSchemas+`,"displayName":"sysadmins","externalId":"g-1"}`)
	if code != 201 {
		t.Fatalf("POST: %d %v", code, g)
	}
	id := g["id"].(string)
	if code, m := b.do(t, "GET", "/Groups/"+id, ""); code != 200 {
		t.Errorf("GET /Groups/%s right after its 201: %d %v", id, code, m)
	}
	if code, m := b.do(t, "GET", `/Groups?filter=displayName%20eq%20%22sysadmins%22`, ""); code != 200 || m["totalResults"] != float64(1) {
		t.Errorf("filter displayName eq \"sysadmins\" right after the 201: %d totalResults=%v", code, m["totalResults"])
	}
}

// TestAttackRetriedGroupPostIsIdempotent: Entra and Okta resend a POST
// that timed out (DESIGN-NOTES: "every operation must be idempotent"). A
// retried POST of the very same group answers with that group (200, same
// id), not 409, as a retried POST /Users does.
func TestAttackRetriedGroupPostIsIdempotent(t *testing.T) {
	b := newBed(t)
	dana := b.user(t, "dana@contoso.com", "e1")
	body := `{` + groupSchemas + `,"displayName":"sysadmins","externalId":"g-1","members":[{"value":"` + dana + `"}]}`
	code, first := b.do(t, "POST", "/Groups", body)
	if code != 201 {
		t.Fatalf("first POST: %d %v", code, first)
	}
	code, again := b.do(t, "POST", "/Groups", body)
	if (code != 200 && code != 201) || again["id"] != first["id"] {
		t.Fatalf("retried POST of the same group (same externalId, same members): %d %v; want 200 with id %v", code, again, first["id"])
	}
}

// TestAttackGroupRenameKeepsNamesUnique: POST /Groups refuses a second
// group of a directory with a displayName already taken (409
// uniqueness), and so must a PATCH that renames a group onto a taken
// name. Two groups of one directory would supply the same YAML group, so
// the IdP's "remove member" on one would leave the person in the YAML
// group through the other.
func TestAttackGroupRenameKeepsNamesUnique(t *testing.T) {
	b := newBed(t)
	dana := b.user(t, "dana@contoso.com", "e1")
	erin := b.user(t, "erin@contoso.com", "e2")
	if code, m := b.do(t, "POST", "/Groups", `{`+groupSchemas+`,"displayName":"sysadmins","members":[{"value":"`+dana+`"}]}`); code != 201 {
		t.Fatalf("create sysadmins: %d %v", code, m)
	}
	if code, m := b.do(t, "POST", "/Groups", `{`+groupSchemas+`,"displayName":"sysadmins"}`); code != 409 {
		t.Fatalf("POST of a taken displayName: %d %v (the create path refuses it)", code, m)
	}
	code, other := b.do(t, "POST", "/Groups", `{`+groupSchemas+`,"displayName":"web-team","members":[{"value":"`+erin+`"}]}`)
	if code != 201 {
		t.Fatalf("create web-team: %d %v", code, other)
	}
	id := other["id"].(string)
	code, m := b.do(t, "PATCH", "/Groups/"+id, `{`+patchSchemas+`,"Operations":[{"op":"replace","path":"displayName","value":"sysadmins"}]}`)
	if code != 409 {
		_, list := b.do(t, "GET", `/Groups?filter=displayName%20eq%20%22sysadmins%22`, "")
		t.Fatalf("PATCH renaming web-team onto the taken name sysadmins: %d %v; filter displayName eq \"sysadmins\" now finds %v groups", code, m, list["totalResults"])
	}
}

// TestAttackDeletedEmptyGroupIsGone: the other way: a group whose
// members were all removed, then DELETEd (204), must be gone from GET
// /Groups/{id} and the list at once, or the IdP believes the delete did
// not happen.
func TestAttackDeletedEmptyGroupIsGone(t *testing.T) {
	b := newBed(t)
	dana := b.user(t, "dana@contoso.com", "e1")
	code, g := b.do(t, "POST", "/Groups", `{`+groupSchemas+`,"displayName":"sysadmins","members":[{"value":"`+dana+`"}]}`)
	if code != 201 {
		t.Fatalf("POST: %d %v", code, g)
	}
	id := g["id"].(string)
	if code, m := b.do(t, "PATCH", "/Groups/"+id, `{`+patchSchemas+`,"Operations":[{"op":"remove","path":"members"}]}`); code != 204 {
		t.Fatalf("PATCH remove members: %d %v", code, m)
	}
	if code, m := b.do(t, "DELETE", "/Groups/"+id, ""); code != 204 {
		t.Fatalf("DELETE: %d %v", code, m)
	}
	if code, m := b.do(t, "GET", "/Groups/"+id, ""); code != 404 {
		t.Errorf("GET /Groups/%s after its DELETE answered 204: %d %v", id, code, m)
	}
	if code, m := b.do(t, "GET", "/Groups", ""); code != 200 || m["totalResults"] != float64(0) {
		t.Errorf("GET /Groups after the DELETE: %d totalResults=%v", code, m["totalResults"])
	}
}

// TestAttackSharedTokenIsRefused: two directories whose token files hold
// the same token (the policy refuses only one file named twice) would
// have every request attributed to one of them: the IdP of tenant acme
// would provision its people into globex's directory, and each IdP could
// read and deprovision the other's users. NewHandler refuses to start,
// as it does with a short token.
func TestAttackSharedTokenIsRefused(t *testing.T) {
	d := t.TempDir()
	// Two files (the policy refuses one file named twice), one token:
	// pasted into both, or one IdP's token copied to the other's file.
	tok, tok2 := filepath.Join(d, "acme.tok"), filepath.Join(d, "globex.tok")
	for _, f := range []string{tok, tok2} {
		if err := os.WriteFile(f, []byte(token+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := policy.Parse([]byte(fmt.Sprintf(`data_dir: %q
http_listen: "127.0.0.1:0"
tenants:
  - {name: acme, hosts: [{name: web01, address: 10.0.0.1, host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"}]}
  - {name: globex, hosts: [{name: app01, address: 10.0.0.2, host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"}]}
groups: [{name: sysadmins}]
users: [{name: alice, groups: [sysadmins]}]
identity:
  directories:
    - {name: acme-entra, token_file: %q, tenant: acme}
    - {name: globex-entra, token_file: %q, tenant: globex}
`, filepath.Join(d, "data"), tok, tok2)), filepath.Join(d, "w.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := audit.Open(context.Background(), cfg.DataDir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir, err := identity.Open(context.Background(), identity.Options{Store: st, Policy: func() *policy.Config { return cfg }})
	if err != nil {
		t.Fatal(err)
	}
	h, err := scim.NewHandler(dir, scim.Options{Policy: func() *policy.Config { return cfg }, Store: st})
	if err != nil {
		if !strings.Contains(err.Error(), "same token") {
			t.Fatalf("refused for another reason: %v", err)
		}
		return
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	b := &bed{srv: srv, dir: dir, data: cfg.DataDir}
	// acme's IdP provisions its user with the token it was given.
	code, m := b.do(t, "POST", "/Users", `{`+userSchemas+`,"userName":"dana@acme.example","externalId":"acme-1"}`)
	u, _ := dir.UserByName("dana@acme.example")
	t.Fatalf("two directories (acme-entra, tenant acme; globex-entra, tenant globex) share one token and NewHandler accepted it; "+
		"acme's IdP POST /Users answered %d and created %q in directory %q (id %v)", code, u.UserName, u.Directory, m["id"])
}

// TestAttackInactiveUserIsReadableAfterCreate: the same for users: a
// user POSTed with active=false (an IdP that provisions people
// suspended) is no joiner, yet GET /Users/{id} and the userName filter
// must find it right after the 201.
func TestAttackInactiveUserIsReadableAfterCreate(t *testing.T) {
	b := newBed(t)
	code, u := b.do(t, "POST", "/Users", `{`+userSchemas+`,"userName":"dana@contoso.com","externalId":"e1","active":false}`)
	if code != 201 {
		t.Fatalf("POST: %d %v", code, u)
	}
	id := u["id"].(string)
	if code, m := b.do(t, "GET", "/Users/"+id, ""); code != 200 {
		t.Errorf("GET /Users/%s right after its 201: %d %v", id, code, m)
	}
	if code, m := b.do(t, "GET", `/Users?filter=userName%20eq%20%22dana@contoso.com%22`, ""); code != 200 || m["totalResults"] != float64(1) {
		t.Errorf("filter userName eq \"dana@contoso.com\" right after the 201: %d totalResults=%v", code, m["totalResults"])
	}
}
