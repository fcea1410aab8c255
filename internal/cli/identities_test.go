package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/identity"
	"github.com/warden-gw/warden/policy"
)

// identitiesBed writes a policy with a directory and a database in which
// the directory provisioned dana (active, sysadmins) and erin (inactive).
func identitiesBed(t *testing.T) string { return identitiesBedWith(t, false) }

// identitiesBedWith, with signIn, also turns identity.oidc.create_users on
// and has a sign-in create zoe (claim groups sysadmins and Finance).
func identitiesBedWith(t *testing.T, signIn bool) string {
	t.Helper()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "warden.yaml")
	src := fmt.Sprintf(`data_dir: data
http_listen: "127.0.0.1:0"
tenants:
  - name: acme
    hosts:
      - {name: web01, address: 127.0.0.1:22, host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", labels: {env: prod}}
groups: [{name: sysadmins}, {name: security}]
users:
  - {name: alice, groups: [security]}
  - {name: dana, groups: [security]}
roles:
  - {name: prod-root, tenant: acme, hosts: {labels: {env: prod}}, logins: [root], privileged: true, eligible: [sysadmins], approvers: [security]}
identity:
  directories: [{name: entra, token_file: %s, tenant: acme}]
`, filepath.Join(dir, "tok"))
	if signIn {
		src += "  oidc: {issuer: \"https://idp.example.com\", client_id: w, client_secret_file: /nonexistent/s, create_users: true}\n"
	}
	if err := os.WriteFile(cfgPath, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := policy.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, err := audit.Open(ctx, cfg.DataDir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	d, err := identity.Open(ctx, identity.Options{Store: st, Policy: func() *policy.Config { return cfg }})
	if err != nil {
		t.Fatal(err)
	}
	err = d.Update(ctx, "entra", func(tx *identity.Tx) error {
		u, _, err := tx.CreateUser(identity.User{UserName: "dana@contoso.com", ExternalID: "d1", Active: true})
		if err != nil {
			return err
		}
		if _, _, err := tx.CreateUser(identity.User{UserName: "erin@contoso.com", Active: false}); err != nil {
			return err
		}
		_, _, err = tx.CreateGroup(identity.Group{DisplayName: "sysadmins", Members: []string{u.ID}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if signIn {
		if _, err := d.SignInUser(ctx, "zoe", []string{"sysadmins", "Finance"}); err != nil {
			t.Fatal(err)
		}
	}
	return cfgPath
}

// A user a sign-in created (create_users) shows as source oidc, with the
// policy groups of its claim.
func TestIdentitiesListsSignInUsers(t *testing.T) {
	cfgPath := identitiesBedWith(t, true)
	out, errOut, code := run("identities", "-c", cfgPath, "--json")
	if code != 0 {
		t.Fatalf("%d %q", code, errOut)
	}
	var list []identityJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, u := range list {
		if u.User == "zoe" {
			found = true
			if u.Source != "oidc" || u.State != "active" || strings.Join(u.Groups, ",") != "sysadmins" || u.Tenant != "" {
				t.Errorf("zoe: %+v", u)
			}
		}
	}
	if !found {
		t.Fatalf("zoe not listed: %s", out)
	}
}

func TestIdentitiesListsSourcesAndStates(t *testing.T) {
	cfgPath := identitiesBed(t)
	out, errOut, code := run("identities", "-c", cfgPath, "--json")
	if code != 0 {
		t.Fatalf("%d %q", code, errOut)
	}
	var list []identityJSON
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, u := range list {
		got[u.User] = u.Source + " " + u.State + " " + strings.Join(u.Groups, ",") + " " + u.Tenant
	}
	want := map[string]string{"alice": "yaml active security ", "dana": "yaml active security ",
		"dana@contoso.com": "scim:entra active sysadmins acme", "erin@contoso.com": "scim:entra inactive  acme"}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	if out, _, code := run("identities", "-c", cfgPath); code != 0 || !strings.Contains(out, "scim:entra") || !strings.Contains(out, "inactive") {
		t.Fatalf("table: %d %q", code, out)
	}
}

// reconcile sees directory users: dana@contoso.com is eligible for
// prod-root through the directory and never used it; alice has no
// directory counterpart (dana has one, by the part before '@'); erin is
// inactive in the IdP.
func TestReconcileReviewsDirectoryUsers(t *testing.T) {
	cfgPath := identitiesBed(t)
	out, errOut, code := run("reconcile", "-c", cfgPath, "--json")
	if code != 0 {
		t.Fatalf("%d %q", code, errOut)
	}
	var j reconcileJSON
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		t.Fatal(err)
	}
	if len(j.Stale) != 1 || j.Stale[0].User != "dana@contoso.com" || j.Stale[0].LastActivation != "" {
		t.Errorf("stale %+v", j.Stale)
	}
	if strings.Join(j.NoDirectory, ",") != "alice" {
		t.Errorf("no directory %v", j.NoDirectory)
	}
	if len(j.Inactive) != 1 || j.Inactive[0].User != "erin@contoso.com" {
		t.Errorf("inactive %+v", j.Inactive)
	}
	if out, _, _ := run("reconcile", "-c", cfgPath); !strings.Contains(out, "no directory counterpart") || !strings.Contains(out, "erin@contoso.com") {
		t.Errorf("text: %q", out)
	}
}
