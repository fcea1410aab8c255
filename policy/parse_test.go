package policy

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func names[T any](items []T, name func(T) string) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = name(it)
	}
	return out
}

// TestLoadValidExample loads the CONTRACT.md section 4 example (with real
// keys) and checks that every section arrived as written.
func TestLoadValidExample(t *testing.T) {
	c := loadValid(t)
	dir, err := filepath.Abs("../testdata/policy")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Path", c.Path, filepath.Join(dir, "valid.yaml")},
		{"Listen", c.Listen, ":2222"},
		{"HTTPListen", c.HTTPListen, "127.0.0.1:8022"},
		{"DataDir", c.DataDir, filepath.Join(dir, "data")},
		{"HostKey", c.HostKey, filepath.Join(dir, "data", "host_ed25519")},
		{"Backend", c.Credentials.Backend, BackendBuiltin},
		{"CertTTL", c.Credentials.CertTTL.Std(), 2 * time.Minute},
		{"Vault.Address", c.Credentials.Vault.Address, "http://127.0.0.1:8200"},
		{"Vault.Mount", c.Credentials.Vault.Mount, "ssh"},
		{"Vault.Role", c.Credentials.Vault.Role, "warden"},
		{"Vault.Auth.Method", c.Credentials.Vault.Auth.Method, VaultAuthToken},
		{"Recording", c.Recording, Recording{Input: true, OnFailure: OnFailureTerminate}},
		{"Notify", c.Notify.WebhookURL, "https://hooks.example.com/warden"},
		{"tenants", strings.Join(names(c.Tenants, func(t *Tenant) string { return t.Name }), ","), "acme,beta"},
		{"groups", strings.Join(names(c.Groups, func(g *Group) string { return g.Name }), ","), "sysadmins,security,helpdesk,oncall,management,auditors"},
		{"users", strings.Join(names(c.Users, func(u *User) string { return u.Name }), ","), "alice,bob,carol,dave,erin,frank"},
		{"roles", strings.Join(names(c.Roles, func(r *Role) string { return r.Name }), ","), "web-deploy,prod-root,break-glass,beta-ops"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}

	acme := c.Tenant("acme")
	if web := acme.Hosts[0]; web.Name != "web01" || web.Address != "127.0.0.1:22" || web.HostKey == nil ||
		web.Labels["env"] != "prod" || web.Labels["tier"] != "web" {
		t.Errorf("acme/web01 = %+v", web)
	}
	if db := acme.Hosts[1]; db.KnownHosts != filepath.Join(dir, "known_hosts") || db.Address != "10.0.1.21:2200" {
		t.Errorf("acme/db01 = %+v", db)
	}
	if bw := c.Tenant("beta").Hosts[0]; bw.Address != "10.0.2.11:22" || bw.HostCA == nil {
		t.Errorf("beta/web01 = %+v", bw)
	}
	if a := c.User("alice"); len(a.Keys) != 2 || !slices.Equal(a.Groups, []string{"sysadmins"}) {
		t.Errorf("alice = %+v", a)
	}

	wd := c.Role("web-deploy")
	if wd.Privileged || !slices.Equal(wd.Members, []string{"helpdesk"}) || wd.Hosts.Labels["tier"] != "web" || !slices.Equal(wd.Logins, []string{"deploy"}) {
		t.Errorf("web-deploy = %+v", wd)
	}
	pr := c.Role("prod-root")
	if !pr.Privileged || pr.BreakGlass || !slices.Equal(pr.Eligible, []string{"sysadmins"}) || !slices.Equal(pr.Approvers, []string{"security"}) ||
		pr.Approvals != 1 || pr.MaxDuration.Std() != 2*time.Hour || !pr.RequireReason || pr.RequireTicket ||
		!slices.Equal(pr.Commands.DenySource, []string{"^rm -rf /", "^shutdown"}) {
		t.Errorf("prod-root = %+v", pr)
	}
	bg := c.Role("break-glass")
	if !bg.Privileged || !bg.BreakGlass || bg.Approvals != 2 || bg.MaxDuration.Std() != time.Hour ||
		!slices.Equal(bg.Approvers, []string{"security", "management"}) || !slices.Equal(bg.Hosts.Names, []string{"*"}) ||
		bg.Credential.VaultKV != "secret/data/breakglass/acme" {
		t.Errorf("break-glass = %+v", bg)
	}
}

// writePolicy writes a policy and returns its path.
func writePolicy(t *testing.T, dir string, src []byte) string {
	t.Helper()
	p := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(p, src, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadChecksKnownHostsFiles(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "good_hosts"), []byte("10.0.0.1 "+keyLine(1)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bad_hosts"), []byte("10.0.0.1 ssh-ed25519 AAAA\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := fixture(
		"tenants:",
		"  - name: acme",
		"    hosts:",
		"      - {name: good, address: 10.0.0.1, known_hosts: good_hosts}",
		"      - {name: gone, address: 10.0.0.2, known_hosts: missing_hosts}",
		"      - {name: bad, address: 10.0.0.3, known_hosts: bad_hosts}",
	)
	p := writePolicy(t, dir, src)

	_, err := Load(p)
	var list *ErrorList
	if !errors.As(err, &list) || len(*list) != 2 {
		t.Fatalf("Load = %v; want two known_hosts errors", err)
	}
	if e := (*list)[0]; e.File != p || e.Line != 5 || !strings.HasPrefix(e.Msg, "cannot use known_hosts file: open "+filepath.Join(dir, "missing_hosts")) {
		t.Errorf("missing file error = %+v", e)
	}
	if e := (*list)[1]; e.Line != 6 || !strings.HasPrefix(e.Msg, "cannot use known_hosts file: knownhosts: ") {
		t.Errorf("bad file error = %+v", e)
	}

	// Parse reads no file, so the same policy is valid there.
	if _, err := Parse(src, p); err != nil {
		t.Errorf("Parse = %v; want no file checks", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, fs.ErrNotExist) || !strings.HasPrefix(err.Error(), "policy: open ") {
		t.Errorf("Load = %v; want a wrapped not-exist error", err)
	}
}

func TestLoadRefusesHugeFile(t *testing.T) {
	p := writePolicy(t, t.TempDir(), []byte("# "+strings.Repeat("x", maxPolicySize)+"\n"))
	_, err := Load(p)
	if err == nil || !strings.Contains(err.Error(), "is larger than") {
		t.Errorf("Load = %v; want a size error", err)
	}
}

func TestLoadReportsTheFileNameAsGiven(t *testing.T) {
	dir := t.TempDir()
	writePolicy(t, dir, fixture("listen: nope"))
	t.Chdir(dir)
	_, err := Load("warden.yaml")
	want := `warden.yaml:1: bad listen address "nope" (hint: write HOST:PORT, e.g. ":2222" or "127.0.0.1:8022")`
	if err == nil || err.Error() != want {
		t.Errorf("Load error = %v, want %s", err, want)
	}
}
