package policy

import (
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func dirFixture(identity ...string) []byte {
	lines := []string{
		`http_listen: "127.0.0.1:8022"`,
		"tenants:",
		"  - name: acme",
		"    hosts: [{name: web01, address: 10.0.0.1, host_key: \"$KEY4\"}]",
		"  - name: globex",
		"    hosts: [{name: db01, address: 10.0.0.2, host_key: \"$KEY4\"}]",
		"groups: [{name: sysadmins}]",
		"users: [{name: alice, keys: [\"$KEY1\"], groups: [sysadmins]}]",
		"roles:",
		"  - {name: acme-root, tenant: acme, hosts: {names: [web01]}, logins: [root], members: [sysadmins]}",
		"  - {name: globex-root, tenant: globex, hosts: {names: [db01]}, logins: [root], members: [sysadmins]}",
	}
	return fixture(append(lines, identity...)...)
}

func TestDirectoriesDecode(t *testing.T) {
	c, err := Parse(dirFixture(
		"identity:",
		"  directories:",
		"    - {name: entra, token_file: /etc/warden/entra.token}",
		"    - {name: acme-okta, token_file: okta.token, tenant: acme}",
	), "/etc/warden/w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if d := c.Directory("acme-okta"); d == nil || d.Tenant != "acme" || d.TokenFile != "/etc/warden/okta.token" {
		t.Fatalf("acme-okta = %+v", d)
	}
	if d := c.Directory("entra"); d == nil || d.Tenant != "" {
		t.Fatalf("entra = %+v", d)
	}
}

func TestDirectoriesErrors(t *testing.T) {
	got := errorLines(t, dirFixture(
		"identity:",
		"  directories:",
		"    - {name: entra, token_file: /t/a}",
		"    - {name: entra, token_file: /t/b}",
		"    - {name: okta, token_file: /t/a, tenant: nope}",
		"    - {name: Bad Name, token_file: /t/c}",
		"    - {name: x}",
		"  oidcx: {}",
	))
	want := []string{"duplicate directory", "already used", "undefined tenant", "invalid directory name", "needs token_file", "unknown key \"oidcx\""}
	joined := strings.Join(got, "\n")
	for _, w := range want {
		if !strings.Contains(joined, w) {
			t.Errorf("errors lack %q:\n%s", w, joined)
		}
	}
}

// A directory user can take neither a YAML user's name (in any case) nor
// their key, and a tenant-limited user holds only that tenant's roles.
func TestWithUsersAndTenantLimit(t *testing.T) {
	c, err := Parse(dirFixture(), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, skipped := c.WithUsers([]*User{
		{Name: "ALICE", Keys: nil, Source: "scim:entra"},
		{Name: "dana@contoso.com", Keys: []ssh.PublicKey{testKey(1), testKey(2)}, Groups: []string{"sysadmins"}, Source: "scim:entra", Tenant: "acme"},
	}, map[string][]ssh.PublicKey{"alice": {testKey(3), testKey(2)}, "nobody": {testKey(4)}})
	if !slices.Equal(skipped, []string{"ALICE"}) {
		t.Fatalf("skipped = %v", skipped)
	}
	if u := m.UserByKey(testKey(1)); u == nil || u.Name != "alice" {
		t.Fatalf("key 1 belongs to %v, want alice", u)
	}
	dana := m.UserByKey(testKey(2))
	if dana == nil || dana.Name != "dana@contoso.com" || len(dana.Keys) != 1 || dana.SourceOf() != "scim:entra" {
		t.Fatalf("dana = %+v", dana)
	}
	if u := m.UserByKey(testKey(3)); u == nil || u.Name != "alice" {
		t.Fatalf("bound key 3 belongs to %v, want alice", u)
	}
	if m.UserByKey(testKey(4)) != nil || len(m.User("alice").Keys) != 2 {
		t.Fatal("a bound key went to a missing user, or a taken key was bound twice")
	}
	if c.User("dana@contoso.com") != nil || len(c.User("alice").Keys) != 1 || len(c.Users) != 1 {
		t.Fatal("WithUsers changed the base policy")
	}
	acme, _ := m.ResolveHost("web01")
	globex, _ := m.ResolveHost("db01")
	if d := m.Authorize(dana, "root", acme); d.Standing == nil {
		t.Error("dana refused on her tenant's host")
	}
	if d := m.Authorize(dana, "root", globex); d.Standing != nil {
		t.Error("tenant-limited dana admitted on another tenant's host")
	}
	if d := m.Authorize(m.User("alice"), "root", globex); d.Standing == nil {
		t.Error("alice refused on globex")
	}
	for _, a := range m.Reachable(dana) {
		if a.Host.Tenant != "acme" {
			t.Errorf("dana reaches %s", a.Host.QualifiedName())
		}
	}
}

// A tenant-limited directory that puts its users in auditors or an
// approver group oversees and approves only its own tenant.
func TestTenantLimitedOversight(t *testing.T) {
	c, err := Parse(fixture(
		"tenants:",
		"  - {name: acme, hosts: [{name: web01, address: 10.0.0.1, host_key: \"$KEY4\"}]}",
		"  - {name: globex, hosts: [{name: db01, address: 10.0.0.2, host_key: \"$KEY4\"}]}",
		"groups: [{name: auditors}, {name: security}, {name: ops}]",
		"roles:",
		"  - {name: a, tenant: acme, hosts: {names: ['*']}, logins: [root], privileged: true, eligible: [ops], approvers: [security]}",
		"  - {name: g, tenant: globex, hosts: {names: ['*']}, logins: [root], privileged: true, eligible: [ops], approvers: [security]}",
	), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := c.WithUsers([]*User{
		{Name: "aud@acme", Groups: []string{"auditors"}, Tenant: "acme"},
		{Name: "sec@acme", Groups: []string{"security"}, Tenant: "acme"},
		{Name: "free", Groups: []string{"auditors"}},
	}, nil)
	if o := m.OversightOf(m.User("aud@acme")); o.All || !o.Covers("acme") || o.Covers("globex") {
		t.Errorf("tenant-limited auditor: %+v", o)
	}
	if o := m.OversightOf(m.User("sec@acme")); o.Covers("globex") || !o.Covers("acme") {
		t.Errorf("tenant-limited approver: %+v", o)
	}
	if o := m.OversightOf(m.User("free")); !o.All {
		t.Errorf("unlimited auditor: %+v", o)
	}
	if m.User("sec@acme").InAnyFor(m.Role("g"), m.Role("g").Approvers) {
		t.Error("tenant-limited user approves another tenant's role")
	}
}

func TestDirectoriesNeedHTTPListen(t *testing.T) {
	got := errorLines(t, fixture(
		"identity:",
		"  directories: [{name: entra, token_file: /t/a}]",
	))
	if len(got) != 1 || !strings.Contains(got[0], "identity.directories needs http_listen") {
		t.Fatalf("%v", got)
	}
}
