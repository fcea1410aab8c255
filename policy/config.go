package policy

import (
	"regexp"

	"golang.org/x/crypto/ssh"
)

// Values of Credentials.Backend.
const (
	BackendBuiltin = "builtin" // Warden's own CA signs session certificates
	BackendVault   = "vault"   // Vault's SSH secrets engine signs them
)

// Values of VaultAuth.Method.
const (
	VaultAuthToken   = "token"   // a token from TokenFile, or VAULT_TOKEN when empty
	VaultAuthAppRole = "approle" // AppRole login with RoleID and the secret in SecretIDFile
)

// Values of Recording.OnFailure.
const (
	OnFailureTerminate = "terminate" // a session that cannot be recorded ends
	OnFailureContinue  = "continue"  // the session goes on unrecorded, with an audit event
)

// Config is a loaded and validated policy. It is immutable after Load or
// Parse and safe for concurrent use.
type Config struct {
	Listen     string // SSH listen address; default ":2222"
	HostKey    string // gateway host key path; default DataDir/host_ed25519
	DataDir    string // absolute; default "data" next to the config file
	HTTPListen string // optional HTTP listen address; empty disables it
	// HTTPTLS, when set, makes the HTTP listener serve TLS; without it the
	// listener speaks plain HTTP (behind a TLS proxy, or on loopback).
	HTTPTLS *HTTPTLS
	// HTTPPublicURL is the base URL people reach the HTTP listener at
	// (scheme, host, optional port and path, no trailing slash), or "".
	// It prefixes every link Warden prints.
	HTTPPublicURL string
	Identity      Identity // identity.oidc (sign-in) and identity.directories (SCIM)
	Credentials   Credentials
	Recording     Recording
	Recordings    Recordings // where recordings are kept: local (default) or s3
	Notify        Notify
	Evidence      Evidence
	Store         Store // store.driver and store.dsn_file (store.go)
	// NodeID names this gateway among the nodes sharing a store
	// (node_id; default the host name, lower-cased; node.go). It is
	// recorded on every session the node starts.
	NodeID string
	Limits Limits
	// ShutdownGrace is how long SIGTERM lets live sessions end by
	// themselves before it closes them; default 30s, at most 1h.
	ShutdownGrace Duration
	Tenants       []*Tenant
	Groups        []*Group
	Users         []*User
	Roles         []*Role
	Path          string // absolute path of the file the policy was loaded from
	// Source is the exact bytes the policy was parsed from. Its SHA-256
	// (Version) names the policy in the database, so that evidence can be
	// judged later by the policy in force at the time.
	Source []byte

	// SSHAlgorithms restricts what the handshake offers (ssh_algorithms).
	SSHAlgorithms SSHAlgorithms

	// MetricsTokenFile, when set, is the absolute path of the file
	// holding the bearer token GET /metrics requires; "" serves /metrics
	// without authentication (CONTRACT §7).
	MetricsTokenFile string

	version     string // hex SHA-256 of Source
	tenants     map[string]*Tenant
	users       map[string]*User
	usersByKey  map[string]*User // SHA-256 fingerprint -> user
	roles       map[string]*Role
	hostsByName map[string][]*Host
}

// Version returns the policy's version: the lowercase hex SHA-256 of the
// exact bytes it was parsed from, or "" for a Config not made by Load or
// Parse. Sessions and grants record it, and the evidence packet judges
// each row by the policy it names.
func (c *Config) Version() string { return c.version }

// Credentials chooses who signs the per-session certificates.
type Credentials struct {
	Backend string   // BackendBuiltin (default) or BackendVault
	CertTTL Duration // lifetime of each session certificate; default 2m, at most 24h
	Vault   VaultConfig
}

// VaultConfig locates Vault. Address is empty when no vault section is set;
// it is required when Backend is BackendVault or a role reads a Vault secret.
type VaultConfig struct {
	Address     string   // http(s) URL of Vault, without credentials
	Mount       string   // SSH secrets engine mount; default "ssh"
	Role        string   // signing role; default "warden"
	Timeout     Duration // per request; default 5s
	Auth        VaultAuth
	HostCAMount string // optional SSH engine mount whose CA signs host keys
}

// VaultAuth says how Warden logs in to Vault. Secrets are only ever named by
// file, never written inline, so the policy file itself holds no secret.
type VaultAuth struct {
	Method       string // VaultAuthToken (default) or VaultAuthAppRole
	TokenFile    string // token method: absolute path; empty leaves it to the client (VAULT_TOKEN)
	RoleID       string // approle method
	SecretIDFile string // approle method: absolute path
}

// Recording configures session recording.
type Recording struct {
	Input     bool   // record keystrokes as "i" events; default true
	OnFailure string // OnFailureTerminate (default) or OnFailureContinue
}

// Notify configures where Warden sends alerts.
type Notify struct {
	// WebhookURL is an absolute http(s) URL, or empty. It often embeds a
	// token, so it must never be logged; errors about it do not quote it.
	WebhookURL string
}

// Evidence configures the monthly evidence packets.
type Evidence struct {
	// Schedule is "" (packets only on demand) or "monthly": on the 1st the
	// server writes last month's packet for every tenant.
	Schedule string
	// KeyPerTenant gives every tenant its own signing key, so that one
	// customer's auditor cannot be shown a packet signed for another.
	KeyPerTenant bool
	// SigningKeyVaultKV, when set, is the Vault KV v2 path (e.g.
	// secret/data/warden/evidence) whose private_key field holds the
	// signing key, instead of a file next to the database. With
	// KeyPerTenant, each tenant's key is at SigningKeyVaultKV/TENANT.
	SigningKeyVaultKV string
}

// Limits bound what a client may cost the gateway before it authenticates,
// in the spirit of OpenSSH's LoginGraceTime and MaxStartups.
type Limits struct {
	// LoginGraceTime is how long a connection may take to complete the
	// handshake and authenticate before it is closed; default 30s.
	LoginGraceTime Duration
	// MaxStartups caps unauthenticated connections in all; default 100.
	MaxStartups int
	// MaxStartupsPerSource caps them per source address (IPv6: per /64);
	// default 10, at most MaxStartups.
	MaxStartupsPerSource int
}

// EvidenceMonthly is the one schedule there is.
const EvidenceMonthly = "monthly"

// Tenant is one customer or environment: a namespace of hosts.
type Tenant struct {
	Name  string
	Hosts []*Host
}

// Host is a managed host. Exactly one of HostKey, KnownHosts and HostCA is
// set: the way the gateway verifies the host before sending it a credential.
type Host struct {
	Name       string
	Tenant     string
	Address    string        // "host:port", port 22 when the policy omits it
	HostKey    ssh.PublicKey // pinned key, compared by marshalled bytes
	KnownHosts string        // absolute path of a known_hosts file
	HostCA     ssh.PublicKey // CA that signs the host's certificate
	Labels     map[string]string
}

// QualifiedName returns "tenant/host", the unambiguous form of a host name.
func (h *Host) QualifiedName() string { return h.Tenant + "/" + h.Name }

// User is a person, identified by any of their public keys.
type User struct {
	Name   string
	Keys   []ssh.PublicKey
	Groups []string
	// Source is "" for users of the users section and "scim:DIRECTORY"
	// for users a directory provisioned (see SourceOf).
	Source string
	// Tenant, when set, limits the user to that tenant's roles (a
	// tenant-limited directory's users; see InAnyFor).
	Tenant string
}

// Group is a named set of users; roles refer to groups, never to users, so
// that joining or leaving a team is one line in users.
type Group struct {
	Name string
	// Audits names the tenants whose sessions and exception register the
	// group's members oversee, as the auditors group does for all tenants
	// (see Config.OversightOf).
	Audits []string
}

// HostSelector picks hosts within a role's tenant: a host is selected when its
// name matches any of Names (path.Match globs) and it carries all of Labels;
// a part left empty does not constrain. See Matches.
type HostSelector struct {
	Names  []string
	Labels map[string]string
}

// CommandRules filter the commands typed or run under a role.
type CommandRules struct {
	Deny       []*regexp.Regexp // a command matching any of these is refused
	DenySource []string         // the patterns as written, for audit rows
}

// RoleCredential names a secret that a break-glass role may fetch from
// Vault's KV store. The policy only validates the path; how the gateway uses
// the secret is decided where it is read.
type RoleCredential struct {
	VaultKV string // KV path such as "secret/data/breakglass/acme"
}

// Role gives Logins on the selected hosts of one tenant. A role is either
// standing (Members hold it permanently) or privileged (Eligible users
// request it, Approvers grant it for at most MaxDuration).
type Role struct {
	Name          string
	Tenant        string
	Hosts         HostSelector
	Logins        []string
	Members       []string // groups holding the role permanently; never on privileged roles
	Privileged    bool     // just-in-time only; implied by BreakGlass
	BreakGlass    bool     // emergency access: >= 2 approvals, <= 1h, alerts
	Eligible      []string // groups that may request the role
	Approvers     []string // groups that may approve requests
	Approvals     int      // approvals needed; default 1, at least 2 for break-glass
	MaxDuration   Duration // longest grant; default 1h, at most 1h for break-glass
	RequestTTL    Duration // how long a request waits for approval; default 24h
	RequireReason bool     // default true for privileged roles
	RequireTicket bool
	Commands      CommandRules
	Credential    RoleCredential // break-glass only
	// FileTransfer allows the sftp subsystem and legacy scp; default true,
	// false for break-glass roles. Without it they are refused.
	FileTransfer bool

	// DenyCooldown is how long after a deny the same user may not request
	// the role again (default 1h; 0 turns it off). Break-glass roles ignore
	// it: their denials hold until an approver clears them.
	DenyCooldown Duration
}
