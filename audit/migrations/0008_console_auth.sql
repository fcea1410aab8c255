-- 0008_console_auth: sign-in to the browser console (package console,
-- CONTRACT.md section 7). Times are RFC 3339 UTC text of fixed width, as in
-- 0001_init. Neither table holds a secret: a link or a browser session is
-- found by the SHA-256 of its random token, which only the person's
-- terminal (the link) or browser (the cookie) holds, so a copy of the
-- database signs nobody in.

-- One-time sign-in links printed by `ssh GATEWAY console`. A link is bound
-- to the SSH identity that asked for it (the user and the fingerprint of
-- the key that connection authenticated with), works until expires_at
-- (created_at + 5 minutes) and once: used_at is set, atomically in the
-- store's single writer, by the first sign-in that presents it. Rows stay
-- as the record of who asked for a link when.
CREATE TABLE console_links (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    token_sha256 TEXT    NOT NULL UNIQUE,    -- hex SHA-256 of the link's token
    user         TEXT    NOT NULL,
    fingerprint  TEXT    NOT NULL,           -- SHA256:... of the SSH key
    client_addr  TEXT,                       -- the SSH client that asked
    created_at   TEXT    NOT NULL,
    expires_at   TEXT    NOT NULL,
    used_at      TEXT                        -- set once, by the sign-in (or refusal) that spent it
);

-- Browser sessions of the console. id is the public handle shown on
-- /account and used to revoke; the cookie carries a different random
-- token, of which only the hash is kept. A session ends (ended_at,
-- end_reason, ended_by) by sign-out, revocation, the 30-minute idle
-- timeout, or its user leaving the policy; ended rows are kept.
CREATE TABLE console_sessions (
    id           TEXT    PRIMARY KEY,            -- public id, random
    token_sha256 TEXT    NOT NULL UNIQUE,        -- hex SHA-256 of the cookie's token
    user         TEXT    NOT NULL,
    method       TEXT    NOT NULL CHECK (method IN ('link', 'oidc')),
    link_id      INTEGER REFERENCES console_links (id), -- the link that signed it in
    created_at   TEXT    NOT NULL,
    last_seen    TEXT    NOT NULL,               -- written at most once a minute
    client_addr  TEXT,
    user_agent   TEXT,                           -- cleaned and truncated
    ended_at     TEXT,
    end_reason   TEXT,                           -- signout | revoked | idle | left
    ended_by     TEXT,                           -- who revoked it (the user, or another session's user)
    CHECK ((ended_at IS NULL) = (end_reason IS NULL))
);
CREATE INDEX console_sessions_user ON console_sessions (user, ended_at);
