package policy

import (
	"net"
	"net/url"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// HTTPTLS names the certificate and key the HTTP listener serves.
type HTTPTLS struct {
	CertFile string // absolute path, PEM
	KeyFile  string // absolute path, PEM
}

// Identity is where users come from besides the users section.
type Identity struct {
	// OIDC is single sign-on for SSH keys; nil when not configured.
	OIDC *OIDC
	// Directories provision users over SCIM (directories.go).
	Directories []*Directory
}

// OIDC configures `ssh gw login`: an OpenID Connect sign-in (authorization
// code flow with PKCE) that binds the caller's SSH public key to the
// identity provider's user for KeyTTL.
type OIDC struct {
	Issuer           string   // the IdP's issuer URL, exactly as its discovery document states it
	ClientID         string   // Warden's client_id at the IdP
	ClientSecretFile string   // absolute path of the file holding the client secret
	UsernameClaim    string   // the claim that names the Warden user; default preferred_username
	GroupsClaim      string   // the claim listing groups; default groups
	KeyTTL           Duration // how long a signed-in key stays bound; default 12h
	CreateUsers      bool     // a sign-in of an unknown name creates a user of source oidc
}

// Defaults and bounds of identity.oidc.
const (
	defaultUsernameClaim = "preferred_username"
	defaultGroupsClaim   = "groups"
	defaultKeyTTL        = 12 * time.Hour
	// maxKeyTTL bounds a binding: a signed-in key is a credential, and a
	// week is already longer than most IdPs keep a session.
	maxKeyTTL = 7 * 24 * time.Hour
)

// httpSettings decodes http_tls, http_public_url and metrics_token_file.
func (d *decoder) httpSettings(f fields, c *Config) {
	if n := f.get("metrics_token_file"); !isNull(n) {
		bad := len(d.errs)
		c.MetricsTokenFile = d.path(n, "metrics_token_file")
		if c.MetricsTokenFile == "" && len(d.errs) == bad {
			d.hintf(n, "e.g. metrics_token_file: /etc/warden/metrics.token", "metrics_token_file needs a file name")
		}
		if c.HTTPListen == "" {
			d.hintf(f.at("metrics_token_file"), "GET /metrics is served on http_listen", "metrics_token_file without http_listen")
		}
	}
	if n := f.get("http_tls"); !isNull(n) {
		t, ok := d.mapping(n, "http_tls", []string{"cert_file", "key_file"})
		if ok {
			tls := &HTTPTLS{CertFile: d.path(t.get("cert_file"), "cert_file"), KeyFile: d.path(t.get("key_file"), "key_file")}
			if tls.CertFile == "" || tls.KeyFile == "" {
				d.hintf(t.node, "e.g. http_tls: {cert_file: /etc/warden/tls.crt, key_file: /etc/warden/tls.key}", "http_tls needs cert_file and key_file")
			} else {
				c.HTTPTLS = tls
			}
		}
		if c.HTTPListen == "" {
			d.hintf(f.at("http_tls"), "set http_listen too", "http_tls without http_listen")
		}
	}
	if n := f.get("http_public_url"); !isNull(n) {
		s := d.str(n, "http_public_url")
		u, err := url.Parse(s)
		switch {
		case err != nil || u.Scheme != "http" && u.Scheme != "https" || u.Host == "":
			d.hintf(n, "e.g. https://warden.example.com", "http_public_url %q is not an absolute http or https URL", s)
		case u.User != nil || u.RawQuery != "" || u.Fragment != "" || strings.ContainsFunc(s, isControl):
			d.hintf(n, "scheme, host, port and path only", "http_public_url must not carry credentials, a query or a fragment")
		default:
			c.HTTPPublicURL = strings.TrimSuffix(s, "/")
		}
		if c.HTTPListen == "" {
			d.hintf(f.at("http_public_url"), "set http_listen too", "http_public_url without http_listen")
		}
	}
}

// identity decodes the identity section. Only oidc is decoded here;
// directories (SCIM) are decoded by their own code, once the tenants they
// may name are known (identityDirectories in directories.go).
func (d *decoder) identity(n *yaml.Node, c *Config) {
	f, ok := d.mapping(n, "identity", []string{"oidc", "directories"})
	if !ok || isNull(n) {
		return
	}
	if o := f.get("oidc"); !isNull(o) {
		c.Identity.OIDC = d.oidc(o)
		if c.Identity.OIDC != nil && c.HTTPListen == "" {
			d.hintf(f.at("oidc"), "the IdP redirects the browser to http_listen's /oidc/callback", "identity.oidc needs http_listen")
		}
	}
}

var oidcKeys = []string{"issuer", "client_id", "client_secret_file", "username_claim", "groups_claim", "key_ttl", "create_users"}

// oidc decodes identity.oidc. The issuer must be https, except on a
// loopback address (a test IdP, or one behind a local proxy): the
// discovery document and the keys that sign ID tokens are fetched from it.
func (d *decoder) oidc(n *yaml.Node) *OIDC {
	f, ok := d.mapping(n, "identity.oidc", oidcKeys)
	if !ok {
		return nil
	}
	o := &OIDC{UsernameClaim: defaultUsernameClaim, GroupsClaim: defaultGroupsClaim, KeyTTL: Duration(defaultKeyTTL)}
	bad := len(d.errs)
	if s := d.str(f.get("issuer"), "issuer"); s == "" {
		d.hintf(f.at("issuer"), "e.g. https://login.microsoftonline.com/TENANT_ID/v2.0", "identity.oidc needs issuer")
	} else if u, err := url.Parse(s); err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" ||
		u.Scheme != "https" && !(u.Scheme == "http" && loopbackHost(u.Hostname())) {
		d.hintf(f.get("issuer"), "an https URL, as the IdP's discovery document states it", "bad identity.oidc issuer %q", s)
	} else {
		o.Issuer = s
	}
	o.ClientID = d.str(f.get("client_id"), "client_id")
	if o.ClientID == "" {
		d.hintf(f.at("client_id"), "the application (client) ID of Warden's app registration", "identity.oidc needs client_id")
	} else if strings.ContainsFunc(o.ClientID, isControl) {
		d.errorf(f.get("client_id"), "client_id contains control characters")
	}
	o.ClientSecretFile = d.path(f.get("client_secret_file"), "client_secret_file")
	if o.ClientSecretFile == "" {
		d.hintf(f.at("client_secret_file"), "the secret is read from a file so the policy holds no secret", "identity.oidc needs client_secret_file")
	}
	claim := func(key string, dst *string) {
		if s := d.str(f.get(key), key); s != "" {
			if strings.ContainsFunc(s, func(r rune) bool { return isControl(r) || r == ' ' }) {
				d.errorf(f.get(key), "%s contains spaces or control characters", key)
				return
			}
			*dst = s
		}
	}
	claim("username_claim", &o.UsernameClaim)
	claim("groups_claim", &o.GroupsClaim)
	if ttl, set := d.duration(f.get("key_ttl"), "key_ttl"); set {
		if ttl.Std() > maxKeyTTL {
			d.hintf(f.get("key_ttl"), "a working day (12h) is the default", "key_ttl %s is longer than the 7-day limit", ttl)
		} else {
			o.KeyTTL = ttl
		}
	}
	// create_users: a sign-in whose username claim names no user creates
	// one of source "oidc", in the policy groups of the groups claim
	// (package identity); the directory name "oidc" is reserved for them.
	o.CreateUsers, _ = d.boolean(f.get("create_users"), "create_users")
	if len(d.errs) > bad {
		return nil
	}
	return o
}

func loopbackHost(h string) bool {
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
