// Package vault issues the per-session credential that Warden presents to a
// managed host: a fresh ed25519 key, generated in memory for one session and
// never stored, and a short-lived OpenSSH user certificate for it.
//
// Two backends sign the certificate and share one shape, Sign and
// CAPublicKey:
//
//   - Builtin is the default. Its CA key lives in the data directory
//     (ca_ed25519, mode 0600) and is created on first use.
//   - Vault asks HashiCorp Vault's SSH secrets engine
//     (POST /v1/MOUNT/sign/ROLE), so no long-lived signing key exists on the
//     gateway at all. It logs in with a token or AppRole, keeps the token
//     alive with the api's LifetimeWatcher, and logs in again when renewal
//     ends.
//
// Every certificate carries the key ID "warden:SESSION_ID:USER" (sshd logs it,
// which ties a host's log line to a session), exactly one principal (the
// login), a validity from 30 seconds before now (clock skew) to now+TTL, and
// the permit-pty extension only when the session asked for a terminal. No
// forwarding extension (agent, port, X11) is ever granted: forwarded
// connections would bypass the recorder.
//
// The Vault backend fails closed. When Vault is down, sealed, refuses the
// token or answers slower than the configured timeout, Sign returns an error
// wrapping ErrUnavailable with the cause, and never falls back to the
// built-in CA. The certificate Vault returns is checked against the request
// before it is used. Setup is the idempotent bootstrap behind
// `warden vault setup`.
package vault
