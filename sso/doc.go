// Package sso is single sign-on for SSH keys (CONTRACT §6): `ssh -p 2222
// GATEWAY login` binds the public key the client proved to the identity an
// OpenID Provider vouches for, for identity.oidc.key_ttl (default 12h).
//
// A sign-in walks through these files:
//
//	pending.go   the gateway begins a sign-in for the connection's key: a
//	             link with a 256-bit id and an 8-letter code, printed in the
//	             terminal; it ends with the connection, after 10 minutes,
//	             after five wrong codes, or at the callback
//	flow.go      the browser: GET /oidc/start shows the key's fingerprint
//	             and the SSH client's address and asks for the code; POST
//	             /oidc/start (CSRF token, typed code) sends it to the IdP;
//	             GET /oidc/callback redeems the IdP's code
//	provider.go  the OIDC client: discovery at first use, the authorization
//	             code flow with PKCE (S256), the ID token verified
//	             (signature, issuer, audience, expiry) with its nonce, the
//	             username and groups claims from it or from userinfo
//	bindings.go  the sso_bindings table: bind, look up, end (logout,
//	             replaced, expired, deprovisioned), each change with its
//	             chained audit event in the same transaction
//	service.go   the Service the gateway and `warden serve` hold; Users, the
//	             question "which Warden user is this claim?"; Creator, for
//	             identity.oidc.create_users
//	browser.go   browser sign-ins for the console (BrowserSignIn): the same
//	             flow and user mapping, back on /oidc/callback, no key bound
//
// # Threats and what stops them
//
//   - Someone else's key. The key is the one the SSH client signed with
//     (x/crypto's VerifiedPublicKeyCallback), so only its holder can start
//     a sign-in for it.
//   - Consent phishing (login CSRF): an attacker runs `ssh gw login` and
//     sends a victim the link, hoping the victim signs in and binds the
//     victim's identity to the attacker's key. Opening the link does not
//     go to the IdP: the page shows the key's fingerprint, the SSH client's
//     address and a warning, and goes on only when the code from the
//     terminal is typed (the victim has no terminal, so no code). What
//     remains is an attacker who also persuades the victim to type a code
//     they were sent: the page's warning and fingerprint are the defence
//     there, as in every device-code style flow.
//   - Forwarding the IdP page instead: the attacker confirms in their own
//     browser and sends the victim the IdP's sign-in page. The callback is
//     accepted only in the browser that confirmed (an HttpOnly cookie whose
//     hash the sign-in keeps), so the victim's redirect is refused and the
//     attacker's ssh gets a refusal. Over https the cookie is
//     __Host-warden_sso, which no sibling subdomain can plant.
//   - Cross-site forms: the confirm POST carries a CSRF token, an HMAC of
//     the sign-in id and the browser's cookie under a key made at start.
//   - Replay: the state is used once (a second use is refused and
//     audited); the code is redeemed with the sign-in's PKCE verifier; the
//     ID token must carry the sign-in's nonce.
//   - Strangers holding connections: unknown keys may connect only to run
//     `login` (gateway/commands_sso.go), at most 8 per source address and
//     256 in all, each closed after the link's lifetime.
//   - An IdP name that is no Warden user is refused with one line, unless
//     identity.oidc.create_users is true: then Options.Create (package
//     identity's Directory) creates a user of source oidc in the policy
//     groups of the groups claim, and refreshes those groups at each later
//     sign-in of that user. It never creates a name that is, in any case,
//     a YAML or directory user (the sign-in is that user, or refused when
//     that user is deprovisioned) nor one SCIM would refuse; any error
//     refuses the sign-in (fail closed).
//
// # Concurrency
//
// Pending sign-ins live in memory under one mutex; each ends exactly once
// (finish), which wakes the waiting SSH client within the callback's
// request. Bindings are rows: writes go through the audit store's single
// writer, lookups use its read-only pool, so they survive restarts and
// every gateway node sees them. A binding stops naming its user at
// expires_at even before Run's sweep records it as expired.
package sso
