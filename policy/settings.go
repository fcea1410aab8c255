package policy

import (
	"net"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Defaults and limits of the top-level settings.
const (
	defaultListen  = ":2222"
	defaultDataDir = "data"
	defaultCertTTL = 2 * time.Minute
	// maxCertTTL bounds certificate lifetime: OpenSSH checks a certificate
	// only at authentication, so a long-lived one is a stolen-key risk with
	// no benefit to the session.
	maxCertTTL          = 24 * time.Hour
	defaultVaultTimeout = 5 * time.Second
	defaultVaultMount   = "ssh"
	defaultVaultRole    = "warden"
	// SIGTERM's wait for live sessions to end by themselves.
	defaultShutdownGrace = 30 * time.Second
	maxShutdownGrace     = time.Hour
)

// settings decodes the scalar top-level keys.
func (d *decoder) settings(f fields, c *Config) {
	c.Listen = d.listenAddr(f.get("listen"), "listen")
	if c.Listen == "" {
		c.Listen = defaultListen
	}
	c.HTTPListen = d.listenAddr(f.get("http_listen"), "http_listen")
	d.httpSettings(f, c) // identity.go: http_tls, http_public_url

	dataDir := d.path(f.get("data_dir"), "data_dir")
	if dataDir == "" {
		dataDir = filepath.Join(d.dir, defaultDataDir)
	}
	c.DataDir = dataDir
	c.HostKey = d.path(f.get("host_key"), "host_key")
	if c.HostKey == "" {
		c.HostKey = filepath.Join(c.DataDir, "host_ed25519")
	}
	c.ShutdownGrace = Duration(defaultShutdownGrace)
	if g, set := d.duration(f.get("shutdown_grace"), "shutdown_grace"); set {
		if g.Std() > maxShutdownGrace {
			d.hintf(f.get("shutdown_grace"), "an orchestrator kills a process that takes longer; 30s is usual", "shutdown_grace %s is longer than 1h", g)
		} else {
			c.ShutdownGrace = g
		}
	}
}

// listenAddr decodes an optional "host:port" to listen on.
func (d *decoder) listenAddr(n *yaml.Node, what string) string {
	s := d.str(n, what)
	if s == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil || !validPort(port, true) || host != "" && !validHost(host) {
		d.hintf(n, `write HOST:PORT, e.g. ":2222" or "127.0.0.1:8022"`, "bad %s address %q", what, s)
		return ""
	}
	return s
}

// hostAddr decodes a managed host's address, adding port 22 when missing.
func (d *decoder) hostAddr(n *yaml.Node) string {
	s := d.str(n, "address")
	if s == "" {
		return ""
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		host, port = strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"), "22"
	}
	if !validHost(host) || !validPort(port, false) {
		d.hintf(n, `write HOST or HOST:PORT, e.g. "10.0.0.5:22" or "[2001:db8::5]:22"`, "bad address %q", s)
		return ""
	}
	return net.JoinHostPort(host, port)
}

// hostChars covers DNS names and IPv4 addresses. Addresses are dialled,
// logged and shown; nothing else needs to pass.
var hostChars = regexp.MustCompile(`^[A-Za-z0-9._-]{1,253}$`)

// validHost accepts a DNS name, an IPv4 address, or an IPv6 address (with
// optional zone); anything with a colon must really be IPv6.
func validHost(h string) bool {
	if strings.Contains(h, ":") {
		ip, err := netip.ParseAddr(h)
		return err == nil && ip.Is6()
	}
	return hostChars.MatchString(h)
}

func validPort(p string, allowZero bool) bool {
	n, err := strconv.Atoi(p)
	if err != nil || n > 65535 || n < 0 || n == 0 && !allowZero {
		return false
	}
	return strconv.Itoa(n) == p // refuses "+22" and "022"
}

// path decodes an optional file path, resolved against the config file's
// directory so that the gateway's working directory does not matter.
func (d *decoder) path(n *yaml.Node, what string) string {
	s := d.str(n, what)
	if s == "" {
		return ""
	}
	if strings.ContainsFunc(s, isControl) {
		d.errorf(n, "%s contains control characters", what)
		return ""
	}
	if filepath.IsAbs(s) {
		return filepath.Clean(s)
	}
	return filepath.Join(d.dir, s)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// credentials decodes the credentials section and applies its defaults.
func (d *decoder) credentials(n *yaml.Node, cr *Credentials) {
	cr.Backend, cr.CertTTL = BackendBuiltin, Duration(defaultCertTTL)
	f, ok := d.mapping(n, "credentials", []string{"backend", "cert_ttl", "vault"})
	if !ok {
		return
	}
	switch b := d.str(f.get("backend"), "backend"); b {
	case "":
	case BackendBuiltin, BackendVault:
		cr.Backend = b
	default:
		d.hintf(f.get("backend"), "use builtin or vault", "unknown credentials backend %q", b)
	}
	if ttl, set := d.duration(f.get("cert_ttl"), "cert_ttl"); set {
		if ttl.Std() > maxCertTTL {
			d.hintf(f.get("cert_ttl"), "certificates only need to outlive authentication; minutes are plenty", "cert_ttl %s is longer than the 24h limit", ttl)
		} else {
			cr.CertTTL = ttl
		}
	}
	d.vault(f.get("vault"), &cr.Vault)
	if cr.Backend == BackendVault && isNull(f.get("vault")) {
		d.hintf(f.at("backend"), "add credentials.vault with at least address", "backend vault needs a credentials.vault section")
	}
}

// vaultPathSegment is one element of a Vault mount or secret path. Paths go
// into Vault API URLs, so '.', '..', '?', '#' and the like must not pass.
var vaultPathSegment = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)

func validVaultPath(p string) bool {
	if p == "" {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if !vaultPathSegment.MatchString(seg) {
			return false
		}
	}
	return true
}

// vault decodes credentials.vault.
func (d *decoder) vault(n *yaml.Node, v *VaultConfig) {
	v.Mount, v.Role, v.Timeout = defaultVaultMount, defaultVaultRole, Duration(defaultVaultTimeout)
	v.Auth.Method = VaultAuthToken
	f, ok := d.mapping(n, "credentials.vault", []string{"address", "mount", "role", "timeout", "auth", "host_ca_mount"})
	if !ok || isNull(n) {
		return
	}
	if a := d.str(f.get("address"), "vault address"); a == "" {
		d.hintf(f.at("address"), "e.g. address: http://127.0.0.1:8200", "credentials.vault has no address")
	} else if u, err := url.Parse(a); err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		d.hintf(f.get("address"), "e.g. http://127.0.0.1:8200", "vault address %q is not an http or https URL", a)
	} else if u.User != nil {
		// Not quoted: the userinfo is a credential.
		d.hintf(f.get("address"), "use auth.token_file or approle instead", "vault address must not contain credentials")
	} else {
		v.Address = a
	}
	if m := d.str(f.get("mount"), "mount"); m != "" {
		if validVaultPath(m) {
			v.Mount = m
		} else {
			d.hintf(f.get("mount"), "a Vault mount path such as ssh or ssh-client-signer", "invalid vault mount %q", m)
		}
	}
	if r := d.str(f.get("role"), "role"); r != "" {
		if vaultPathSegment.MatchString(r) {
			v.Role = r
		} else {
			d.hintf(f.get("role"), "letters, digits, '.', '_' and '-'", "invalid vault role %q", r)
		}
	}
	if t, set := d.duration(f.get("timeout"), "timeout"); set {
		v.Timeout = t
	}
	if m := d.str(f.get("host_ca_mount"), "host_ca_mount"); m != "" {
		if validVaultPath(m) {
			v.HostCAMount = m
		} else {
			d.hintf(f.get("host_ca_mount"), "a Vault mount path such as ssh-host-signer", "invalid vault mount %q", m)
		}
	}
	d.vaultAuth(f.get("auth"), &v.Auth)
}

// vaultAuth decodes credentials.vault.auth. The role_id is not quoted in
// errors: it is half of an AppRole login.
func (d *decoder) vaultAuth(n *yaml.Node, a *VaultAuth) {
	f, ok := d.mapping(n, "credentials.vault.auth", []string{"method", "token_file", "role_id", "secret_id_file"})
	if !ok {
		return
	}
	switch m := d.str(f.get("method"), "method"); m {
	case "", VaultAuthToken:
		a.TokenFile = d.path(f.get("token_file"), "token_file")
		for _, k := range []string{"role_id", "secret_id_file"} {
			if f.get(k) != nil {
				d.hintf(f.at(k), "set method: approle, or remove it", "%s only applies to method approle", k)
			}
		}
	case VaultAuthAppRole:
		a.Method = VaultAuthAppRole
		a.RoleID = d.str(f.get("role_id"), "role_id")
		if a.RoleID == "" {
			d.errorf(f.at("role_id"), "method approle needs role_id")
		} else if strings.ContainsFunc(a.RoleID, func(r rune) bool { return isControl(r) || r == ' ' }) {
			d.errorf(f.get("role_id"), "role_id contains spaces or control characters")
		}
		a.SecretIDFile = d.path(f.get("secret_id_file"), "secret_id_file")
		if blank(f.get("secret_id_file")) {
			d.hintf(f.at("secret_id_file"), "the secret_id is read from a file so the policy holds no secret", "method approle needs secret_id_file")
		}
		if f.get("token_file") != nil {
			d.hintf(f.at("token_file"), "set method: token, or remove it", "token_file only applies to method token")
		}
	default:
		d.hintf(f.get("method"), "use token or approle", "unknown vault auth method %q", m)
	}
}

// recording decodes the recording section.
func (d *decoder) recording(n *yaml.Node, r *Recording) {
	r.Input, r.OnFailure = true, OnFailureTerminate
	f, ok := d.mapping(n, "recording", []string{"input", "on_failure"})
	if !ok {
		return
	}
	if v, set := d.boolean(f.get("input"), "input"); set {
		r.Input = v
	}
	switch s := d.str(f.get("on_failure"), "on_failure"); s {
	case "":
	case OnFailureTerminate, OnFailureContinue:
		r.OnFailure = s
	default:
		d.hintf(f.get("on_failure"), "use terminate or continue", "unknown on_failure %q", s)
	}
}

// notify decodes the notify section. The URL is never quoted in errors,
// because webhook URLs usually embed their token.
func (d *decoder) notify(n *yaml.Node, no *Notify) {
	f, ok := d.mapping(n, "notify", []string{"webhook_url"})
	if !ok {
		return
	}
	s := d.str(f.get("webhook_url"), "webhook_url")
	if s == "" {
		return
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		d.hintf(f.get("webhook_url"), "e.g. https://hooks.example.com/warden", "notify.webhook_url must be an absolute http or https URL")
		return
	}
	no.WebhookURL = s
}

// evidence decodes the evidence section. vault tells whether
// credentials.vault.address is set: a signing key in Vault needs it.
func (d *decoder) evidence(n *yaml.Node, e *Evidence, vault bool) {
	f, ok := d.mapping(n, "evidence", []string{"schedule", "key_per_tenant", "signing_key"})
	if !ok {
		return
	}
	switch s := d.str(f.get("schedule"), "schedule"); s {
	case "", EvidenceMonthly:
		e.Schedule = s
	default:
		d.hintf(f.get("schedule"), "use monthly, or leave it out", "unknown evidence.schedule %q", s)
	}
	if v, set := d.boolean(f.get("key_per_tenant"), "evidence.key_per_tenant"); set {
		e.KeyPerTenant = v
	}
	sk, ok := d.mapping(f.get("signing_key"), "evidence.signing_key", []string{"vault_kv"})
	if !ok || isNull(f.get("signing_key")) {
		return
	}
	p := d.str(sk.get("vault_kv"), "vault_kv")
	switch {
	case p == "":
		d.hintf(sk.at("vault_kv"), "e.g. signing_key: {vault_kv: secret/data/warden/evidence}", "evidence.signing_key needs vault_kv")
	case !validVaultPath(p) || !strings.Contains(p, "/data/"):
		d.hintf(sk.get("vault_kv"), "a KV v2 path such as secret/data/warden/evidence", "invalid evidence.signing_key.vault_kv %q", p)
	case !vault:
		d.hintf(sk.get("vault_kv"), "add credentials.vault with at least address", "evidence.signing_key.vault_kv needs credentials.vault")
	default:
		e.SigningKeyVaultKV = p
	}
}

// Defaults and bounds of the pre-authentication limits. The bounds keep a
// typo from switching a limit off: a grace time of hours or a cap of
// millions is no limit at all.
const (
	defaultLoginGraceTime       = 30 * time.Second
	defaultMaxStartups          = 100
	defaultMaxStartupsPerSource = 10
	maxLoginGraceTime           = 10 * time.Minute
	maxMaxStartups              = 10000
)

// limits decodes the limits section and applies its defaults.
func (d *decoder) limits(n *yaml.Node, l *Limits) {
	l.LoginGraceTime = Duration(defaultLoginGraceTime)
	l.MaxStartups, l.MaxStartupsPerSource = defaultMaxStartups, defaultMaxStartupsPerSource
	f, ok := d.mapping(n, "limits", []string{"login_grace_time", "max_startups", "max_startups_per_source"})
	if !ok {
		return
	}
	if g, set := d.duration(f.get("login_grace_time"), "login_grace_time"); set {
		if g.Std() < time.Second || g.Std() > maxLoginGraceTime {
			d.hintf(f.get("login_grace_time"), "OpenSSH uses 2m; 30s is plenty for a key", "login_grace_time %s is outside 1s..10m", g)
		} else {
			l.LoginGraceTime = g
		}
	}
	count := func(key string, dst *int) bool {
		v, set := d.integer(f.get(key), key)
		if !set {
			return false
		}
		if v < 1 || v > maxMaxStartups {
			d.hintf(f.get(key), "a positive number of connections; there is no way to switch the limit off", "%s %d is outside 1..%d", key, v, maxMaxStartups)
			return false
		}
		*dst = v
		return true
	}
	count("max_startups", &l.MaxStartups)
	if !count("max_startups_per_source", &l.MaxStartupsPerSource) {
		// Unset: the default, but never above a smaller global cap.
		l.MaxStartupsPerSource = min(l.MaxStartupsPerSource, l.MaxStartups)
	} else if l.MaxStartupsPerSource > l.MaxStartups {
		d.hintf(f.get("max_startups_per_source"), "one source may hold at most all of max_startups", "max_startups_per_source %d is above max_startups %d", l.MaxStartupsPerSource, l.MaxStartups)
	}
}
