package cli

import (
	"strings"
	"testing"

	"github.com/warden-gw/warden/policy"
)

// The SCIM tokens and the OIDC client secret are read at start, so a
// reload that would rotate one (another token file, another directory,
// other sign-in settings) is refused rather than leave the old secret
// accepted while the file says otherwise. A directory's tenant is read
// from the policy in force, and may change.
func TestReloadRefusesIdentitySecretsChanges(t *testing.T) {
	const base = `http_listen: "127.0.0.1:0"
http_tls: {cert_file: /etc/warden/tls.crt, key_file: /etc/warden/tls.key}
http_public_url: https://warden.example.com
tenants:
  - name: acme
    hosts:
      - {name: web01, address: "127.0.0.1:22", host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"}
  - name: globex
    hosts:
      - {name: db01, address: "127.0.0.1:22", host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"}
identity:
  oidc:
    issuer: https://idp.example.com
    client_id: warden
    client_secret_file: /etc/warden/oidc-secret
  directories:
    - name: entra
      token_file: /etc/warden/entra.token
      tenant: acme
`
	parse := func(edit func(string) string) *policy.Config {
		t.Helper()
		src := base
		if edit != nil {
			if src = edit(base); src == base {
				t.Fatal("the edit changed nothing")
			}
		}
		c, err := policy.Parse([]byte(src), "/etc/warden/warden.yaml")
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	replace := func(old, repl string) func(string) string {
		return func(s string) string { return strings.Replace(s, old, repl, 1) }
	}
	old := parse(nil)
	for _, c := range []struct {
		name string
		edit func(string) string
		key  string // "" when the reload is allowed
	}{
		{"unchanged", nil, ""},
		{"directory tenant", replace("tenant: acme", "tenant: globex"), ""},
		{"token file", replace("/etc/warden/entra.token", "/etc/warden/entra2.token"), "identity.directories"},
		{"directory renamed", replace("name: entra", "name: okta"), "identity.directories"},
		{"directory added", func(s string) string {
			return s + "    - name: okta\n      token_file: /etc/warden/okta.token\n"
		}, "identity.directories"},
		{"client secret file", replace("/etc/warden/oidc-secret", "/etc/warden/oidc-secret2"), "identity.oidc"},
		{"tls certificate", replace("/etc/warden/tls.crt", "/etc/warden/tls2.crt"), "http_tls"},
		{"tls removed", replace("http_tls: {cert_file: /etc/warden/tls.crt, key_file: /etc/warden/tls.key}\n", ""), "http_tls"},
		{"public url", replace("https://warden.example.com", "https://gw.example.com"), "http_public_url"},
		{"oidc removed", func(s string) string {
			i, j := strings.Index(s, "  oidc:\n"), strings.Index(s, "  directories:\n")
			return s[:i] + s[j:]
		}, "identity.oidc"},
	} {
		err := restartOnly(old, parse(c.edit))
		if c.key == "" && err != nil || c.key != "" && (err == nil || !strings.Contains(err.Error(), c.key+" ")) {
			t.Errorf("%s: restartOnly = %v, want refused for %q", c.name, err, c.key)
		}
	}
}
