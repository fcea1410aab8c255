package policy

import (
	"strings"
	"testing"
	"time"
)

func TestIdentityOIDCDefaults(t *testing.T) {
	c := mustParse(t, fixture(
		`http_listen: "127.0.0.1:8022"`,
		`http_public_url: "https://warden.example.com/"`,
		"http_tls: {cert_file: tls/cert.pem, key_file: /etc/warden/key.pem}",
		"identity:",
		"  oidc:",
		"    issuer: https://login.microsoftonline.com/T/v2.0",
		"    client_id: abc",
		"    client_secret_file: oidc-secret",
	))
	o := c.Identity.OIDC
	if o == nil {
		t.Fatal("no oidc")
	}
	if o.UsernameClaim != "preferred_username" || o.GroupsClaim != "groups" || o.KeyTTL.Std() != 12*time.Hour || o.CreateUsers {
		t.Errorf("defaults: %+v", o)
	}
	if !strings.HasSuffix(o.ClientSecretFile, "/oidc-secret") || !strings.HasPrefix(o.ClientSecretFile, "/") {
		t.Errorf("secret path %q not resolved against the config", o.ClientSecretFile)
	}
	if c.HTTPPublicURL != "https://warden.example.com" {
		t.Errorf("public URL %q: want the trailing slash trimmed", c.HTTPPublicURL)
	}
	if c.MetricsTokenFile != "" {
		t.Errorf("metrics_token_file %q: want none unless set", c.MetricsTokenFile)
	}
	if c.HTTPTLS == nil || c.HTTPTLS.KeyFile != "/etc/warden/key.pem" {
		t.Errorf("http_tls: %+v", c.HTTPTLS)
	}
}

func TestIdentityOIDCErrors(t *testing.T) {
	oidc := func(extra ...string) []byte {
		return fixture(append([]string{
			`http_listen: "127.0.0.1:8022"`,
			"identity:",
			"  oidc:",
			"    client_id: abc",
			"    client_secret_file: s",
		}, extra...)...)
	}
	runErrCases(t, []errCase{
		{"plain http issuer off loopback", oidc("    issuer: http://idp.example.com"),
			[]string{`6: bad identity.oidc issuer "http://idp.example.com" (hint: an https URL, as the IdP's discovery document states it)`}},
		{"create_users must be a boolean", oidc("    issuer: https://idp.example.com", "    create_users: yes"),
			[]string{`7: create_users must be true or false, not "yes" (hint: write true or false)`}},
		{"the directory name oidc is reserved", append(oidc("    issuer: https://idp.example.com"), []byte("  directories: [{name: oidc, token_file: /t/a}]\n")...),
			[]string{`7: directory name "oidc" is reserved for users created by sign-in (hint: choose another name)`}},
		{"key_ttl bounded", oidc("    issuer: https://idp.example.com", "    key_ttl: 800h"),
			[]string{"7: key_ttl 800h0m0s is longer than the 7-day limit (hint: a working day (12h) is the default)"}},
		{"unknown key", oidc("    issuer: https://idp.example.com", "    scopes: [x]"),
			[]string{`7: unknown key "scopes" in identity.oidc (hint: expected one of: client_id, client_secret_file, create_users, groups_claim, issuer, key_ttl, username_claim)`}},
		{"needs http_listen", fixture("identity:", "  oidc: {issuer: 'https://i.example', client_id: a, client_secret_file: s}"),
			[]string{"2: identity.oidc needs http_listen (hint: the IdP redirects the browser to http_listen's /oidc/callback)"}},
		{"public URL with a query", fixture(`http_listen: ":8022"`, `http_public_url: "https://w.example/?x=1"`),
			[]string{"2: http_public_url must not carry credentials, a query or a fragment (hint: scheme, host, port and path only)"}},
		{"metrics_token_file needs http_listen", fixture("metrics_token_file: /etc/warden/metrics.token"),
			[]string{"1: metrics_token_file without http_listen (hint: GET /metrics is served on http_listen)"}},
		{"metrics_token_file empty", fixture(`http_listen: ":8022"`, `metrics_token_file: ""`),
			[]string{"2: metrics_token_file needs a file name (hint: e.g. metrics_token_file: /etc/warden/metrics.token)"}},
		{"metrics_token_file not a string", fixture(`http_listen: ":8022"`, `metrics_token_file: [a]`),
			[]string{"2: metrics_token_file must be a single value, not a list"}},
		{"http_tls needs both files", fixture(`http_listen: ":8022"`, "http_tls: {cert_file: c.pem}"),
			[]string{"2: http_tls needs cert_file and key_file (hint: e.g. http_tls: {cert_file: /etc/warden/tls.crt, key_file: /etc/warden/tls.key})"}},
	})
}

func TestMetricsTokenFile(t *testing.T) {
	c := mustParse(t, fixture(`http_listen: "127.0.0.1:8022"`, "metrics_token_file: secrets/metrics.token"))
	if !strings.HasPrefix(c.MetricsTokenFile, "/") || !strings.HasSuffix(c.MetricsTokenFile, "/secrets/metrics.token") {
		t.Errorf("metrics_token_file %q not resolved against the config", c.MetricsTokenFile)
	}
}

func TestIdentityOIDCCreateUsers(t *testing.T) {
	c := mustParse(t, fixture(
		`http_listen: "127.0.0.1:8022"`,
		"identity:",
		"  oidc:",
		"    issuer: https://idp.example.com",
		"    client_id: abc",
		"    client_secret_file: s",
		"    create_users: true",
	))
	if !c.Identity.OIDC.CreateUsers {
		t.Fatal("create_users: true not read")
	}
}
