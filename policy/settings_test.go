package policy

import (
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSettingsDefaults(t *testing.T) {
	c, err := Parse([]byte("{}\n"), "/etc/warden/warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"Path", c.Path, "/etc/warden/warden.yaml"},
		{"Listen", c.Listen, ":2222"},
		{"HTTPListen", c.HTTPListen, ""},
		{"DataDir is next to the config", c.DataDir, "/etc/warden/data"},
		{"HostKey is in the data dir", c.HostKey, "/etc/warden/data/host_ed25519"},
		{"Backend", c.Credentials.Backend, BackendBuiltin},
		{"CertTTL", c.Credentials.CertTTL.Std(), 2 * time.Minute},
		{"Vault.Address", c.Credentials.Vault.Address, ""},
		{"Vault.Mount", c.Credentials.Vault.Mount, "ssh"},
		{"Vault.Role", c.Credentials.Vault.Role, "warden"},
		{"Vault.Timeout", c.Credentials.Vault.Timeout.Std(), 5 * time.Second},
		{"Vault.Auth.Method", c.Credentials.Vault.Auth.Method, VaultAuthToken},
		{"Recording.Input", c.Recording.Input, true},
		{"Recording.OnFailure", c.Recording.OnFailure, OnFailureTerminate},
		{"Notify.WebhookURL", c.Notify.WebhookURL, ""},
		{"ShutdownGrace", c.ShutdownGrace.Std(), 30 * time.Second},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestSettingsExplicitValues(t *testing.T) {
	src := fixture(
		`listen: "0.0.0.0:22"`,
		`http_listen: "[::1]:8022"`,
		"data_dir: /var/lib/warden",
		"host_key: keys/gw_ed25519",
		"credentials:",
		"  backend: vault",
		"  cert_ttl: 90s",
		"  vault:",
		"    address: https://vault.example.com:8200",
		"    mount: ssh-client-signer",
		"    role: gw",
		"    timeout: 10s",
		"    host_ca_mount: ssh-host-signer",
		"    auth: {method: approle, role_id: 5f1d-aa, secret_id_file: secrets/secret_id}",
		"recording: {input: false, on_failure: continue}",
		"notify: {webhook_url: 'https://hooks.example.com/T0/B0/xyz'}",
	)
	c, err := Parse(src, "/etc/warden/warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	v := c.Credentials.Vault
	checks := []struct {
		name      string
		got, want any
	}{
		{"Listen", c.Listen, "0.0.0.0:22"},
		{"HTTPListen", c.HTTPListen, "[::1]:8022"},
		{"absolute DataDir kept", c.DataDir, "/var/lib/warden"},
		{"relative HostKey against the config dir", c.HostKey, "/etc/warden/keys/gw_ed25519"},
		{"Backend", c.Credentials.Backend, BackendVault},
		{"CertTTL", c.Credentials.CertTTL.Std(), 90 * time.Second},
		{"Vault.Address", v.Address, "https://vault.example.com:8200"},
		{"Vault.Mount", v.Mount, "ssh-client-signer"},
		{"Vault.Role", v.Role, "gw"},
		{"Vault.Timeout", v.Timeout.Std(), 10 * time.Second},
		{"Vault.HostCAMount", v.HostCAMount, "ssh-host-signer"},
		{"Auth.Method", v.Auth.Method, VaultAuthAppRole},
		{"Auth.RoleID", v.Auth.RoleID, "5f1d-aa"},
		{"Auth.SecretIDFile", v.Auth.SecretIDFile, "/etc/warden/secrets/secret_id"},
		{"Recording.Input", c.Recording.Input, false},
		{"Recording.OnFailure", c.Recording.OnFailure, OnFailureContinue},
		{"Notify.WebhookURL", c.Notify.WebhookURL, "https://hooks.example.com/T0/B0/xyz"},
	}
	for _, ch := range checks {
		if ch.got != ch.want {
			t.Errorf("%s = %v, want %v", ch.name, ch.got, ch.want)
		}
	}
}

func TestRelativeConfigPathResolvesAgainstWorkingDir(t *testing.T) {
	c := mustParse(t, []byte("{}\n"))
	wd, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(wd, "data"); c.DataDir != want {
		t.Errorf("DataDir = %q, want %q", c.DataDir, want)
	}
	if want := filepath.Join(wd, "w.yaml"); c.Path != want {
		t.Errorf("Path = %q, want %q", c.Path, want)
	}
}

func TestSettingsErrors(t *testing.T) {
	const addrHint = `(hint: write HOST:PORT, e.g. ":2222" or "127.0.0.1:8022")`
	vault := func(lines ...string) []byte {
		return fixture(append([]string{"credentials:", "  vault:"}, lines...)...)
	}
	runErrCases(t, []errCase{
		{"listen without port", fixture("listen: 2222"),
			[]string{`1: bad listen address "2222" ` + addrHint}},
		{"listen port out of range", fixture(`listen: ":70000"`),
			[]string{`1: bad listen address ":70000" ` + addrHint}},
		{"http_listen with a space", fixture(`http_listen: "local host:80"`),
			[]string{`1: bad http_listen address "local host:80" ` + addrHint}},
		{"control character in a path", fixture(`data_dir: "da\tta"`),
			[]string{`1: data_dir contains control characters`}},
		{"unknown backend", fixture("credentials: {backend: ldap}"),
			[]string{`1: unknown credentials backend "ldap" (hint: use builtin or vault)`}},
		{"cert_ttl over 24h", fixture("credentials: {cert_ttl: 48h}"),
			[]string{`1: cert_ttl 48h0m0s is longer than the 24h limit (hint: certificates only need to outlive authentication; minutes are plenty)`}},
		{"cert_ttl as a bare number", fixture("credentials: {cert_ttl: 120}"),
			[]string{`1: bad duration "120" for cert_ttl (hint: use a Go duration such as 90m or 2h)`}},
		{"cert_ttl zero", fixture("credentials: {cert_ttl: 0s}"),
			[]string{`1: cert_ttl must be positive, not 0s`}},
		{"vault backend without a vault section", fixture("credentials:", "  backend: vault"),
			[]string{`2: backend vault needs a credentials.vault section (hint: add credentials.vault with at least address)`}},
		{"vault without address", vault("    mount: ssh"),
			[]string{`3: credentials.vault has no address (hint: e.g. address: http://127.0.0.1:8200)`}},
		{"vault address without scheme", vault("    address: 127.0.0.1:8200"),
			[]string{`3: vault address "127.0.0.1:8200" is not an http or https URL (hint: e.g. http://127.0.0.1:8200)`}},
		{"vault address with credentials is not echoed", vault("    address: http://admin:s3cret@vault:8200"),
			[]string{`3: vault address must not contain credentials (hint: use auth.token_file or approle instead)`}},
		{"vault mount climbing paths", vault("    address: http://v:8200", "    mount: ../sys"),
			[]string{`4: invalid vault mount "../sys" (hint: a Vault mount path such as ssh or ssh-client-signer)`}},
		{"vault role with a slash", vault("    address: http://v:8200", "    role: a/b"),
			[]string{`4: invalid vault role "a/b" (hint: letters, digits, '.', '_' and '-')`}},
		{"approle without its parts", vault("    address: http://v:8200", "    auth: {method: approle}"),
			[]string{
				`4: method approle needs role_id`,
				`4: method approle needs secret_id_file (hint: the secret_id is read from a file so the policy holds no secret)`,
			}},
		{"approle with token_file", vault("    address: http://v:8200", "    auth: {method: approle, role_id: r, secret_id_file: s, token_file: t}"),
			[]string{`4: token_file only applies to method token (hint: set method: token, or remove it)`}},
		{"token method with approle keys", vault("    address: http://v:8200", "    auth: {role_id: r}"),
			[]string{`4: role_id only applies to method approle (hint: set method: approle, or remove it)`}},
		{"unknown auth method", vault("    address: http://v:8200", "    auth: {method: kerberos}"),
			[]string{`4: unknown vault auth method "kerberos" (hint: use token or approle)`}},
		{"unknown on_failure", fixture("recording: {on_failure: ignore}"),
			[]string{`1: unknown on_failure "ignore" (hint: use terminate or continue)`}},
		{"shutdown_grace over 1h", fixture("shutdown_grace: 2h"),
			[]string{`1: shutdown_grace 2h0m0s is longer than 1h (hint: an orchestrator kills a process that takes longer; 30s is usual)`}},
		{"shutdown_grace zero", fixture("shutdown_grace: 0s"),
			[]string{`1: shutdown_grace must be positive, not 0s`}},
		{"webhook without scheme is not echoed", fixture("notify: {webhook_url: hooks.example.com/T0/SECRET}"),
			[]string{`1: notify.webhook_url must be an absolute http or https URL (hint: e.g. https://hooks.example.com/warden)`}},
	})
}

func TestSecretsNeverInErrors(t *testing.T) {
	src := fixture(
		"credentials:",
		"  vault: {address: 'http://admin:s3cret@vault:8200'}",
		"notify: {webhook_url: 'ftp://hooks/s3cret'}",
	)
	_, err := Parse(src, "w.yaml")
	if err == nil || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error must exist and not quote secrets: %v", err)
	}
}

func TestEvidenceSchedule(t *testing.T) {
	cfg, err := Parse([]byte("evidence: {schedule: monthly}\n"), "w.yaml")
	if err != nil || cfg.Evidence.Schedule != EvidenceMonthly {
		t.Fatalf("monthly: %+v %v", cfg, err)
	}
	_, err = Parse([]byte("evidence:\n  schedule: weekly\n"), "w.yaml")
	if err == nil || !strings.Contains(err.Error(), `w.yaml:2: unknown evidence.schedule "weekly"`) {
		t.Fatalf("weekly: %v", err)
	}
}

func TestEvidenceSigningKeys(t *testing.T) {
	const vaultSec = "credentials: {vault: {address: http://127.0.0.1:8200}}\n"
	cfg, err := Parse([]byte(vaultSec+"evidence: {key_per_tenant: true, signing_key: {vault_kv: secret/data/warden/evidence}}\n"), "w.yaml")
	if err != nil || !cfg.Evidence.KeyPerTenant || cfg.Evidence.SigningKeyVaultKV != "secret/data/warden/evidence" {
		t.Fatalf("keys: %+v %v", cfg, err)
	}
	for _, c := range []struct{ src, want string }{
		{"evidence: {key_per_tenant: yes}\n", "evidence.key_per_tenant must be true or false"},
		{"evidence: {signing_key: {vault_kv: secret/data/warden/evidence}}\n", "needs credentials.vault"},
		{vaultSec + "evidence: {signing_key: {vault_kv: secret/warden}}\n", "invalid evidence.signing_key.vault_kv"},
		{vaultSec + "evidence: {signing_key: {vault_kv: ../data/x}}\n", "invalid evidence.signing_key.vault_kv"},
		{vaultSec + "evidence: {signing_key: {transit: x}}\n", `unknown key "transit"`},
		{vaultSec + "evidence: {signing_key: {}}\n", "evidence.signing_key needs vault_kv"},
	} {
		if _, err := Parse([]byte(c.src), "w.yaml"); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.src, err, c.want)
		}
	}
}

func TestVersionIsTheSHA256OfTheExactBytes(t *testing.T) {
	a, err := Parse([]byte("evidence: {schedule: monthly}\n"), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := Parse([]byte("evidence: {schedule: monthly}  # same policy, other bytes\n"), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if a.Version() != "2d1686046b0e9925dc459a98bce076dc5afb2139f45a315e716a6ecbc3e8985a" {
		t.Errorf("version %q", a.Version())
	}
	if a.Version() == b.Version() || string(a.Source) != "evidence: {schedule: monthly}\n" {
		t.Errorf("versions %s %s, source %q", a.Version(), b.Version(), a.Source)
	}
	if (&Config{}).Version() != "" {
		t.Error("a Config not parsed has a version")
	}
}

func TestShutdownGrace(t *testing.T) {
	c, err := Parse(fixture("shutdown_grace: 5s"), "/etc/warden/warden.yaml")
	if err != nil || c.ShutdownGrace.Std() != 5*time.Second {
		t.Fatalf("ShutdownGrace = %v, %v", c.ShutdownGrace, err)
	}
}
