-- 0006_sso_bindings: SSH public keys bound to an identity by single sign-on
-- (package sso, `ssh gw login`). A row is one binding: the key (by its
-- SHA-256 fingerprint and its authorized_keys line), the Warden user the
-- identity provider vouched for, the IdP's issuer and subject, and its
-- lifetime. Rows are never deleted: ending a binding sets ended_at and
-- end_reason (expired, logout, replaced, deprovisioned), so that history
-- can say which key acted for whom. Times are RFC 3339 UTC text of fixed
-- width, as in 0001_init.

CREATE TABLE sso_bindings (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    fingerprint TEXT    NOT NULL,           -- SHA256:... of the public key
    public_key  TEXT    NOT NULL,           -- the key, authorized_keys format
    user        TEXT    NOT NULL,
    issuer      TEXT    NOT NULL,
    subject     TEXT    NOT NULL,           -- the IdP's sub claim
    client_addr TEXT,                       -- the SSH client that signed in
    bound_at    TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL,
    ended_at    TEXT,
    end_reason  TEXT,
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
-- At most one live binding per key: a key names one person at a time.
CREATE UNIQUE INDEX sso_bindings_live ON sso_bindings (fingerprint) WHERE ended_at IS NULL;
CREATE INDEX sso_bindings_user ON sso_bindings (user, ended_at);
