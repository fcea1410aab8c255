-- 0004_rotations: what each break-glass grant owes. A grant of a role with a
-- static credential (credential: {vault_kv: ...}) records, in the transaction
-- that starts it, which key must be rotated and where: the KV path, the host
-- and the login, as the policy said at that moment. The rotation is owed by the
-- grant, not by the policy of the day, so renaming or removing the role later
-- cannot skip it. Rows are never deleted; state moves owed -> failed -> ... ->
-- done, and every attempt is also an audit event (rotation.result).
-- Times are RFC 3339 UTC text of fixed width, as in 0001_init.

CREATE TABLE rotations (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    grant_id         INTEGER NOT NULL UNIQUE REFERENCES grants (id),
    tenant           TEXT    NOT NULL,
    role             TEXT    NOT NULL,
    kv_path          TEXT    NOT NULL,          -- credential.vault_kv at grant start
    host             TEXT    NOT NULL,          -- host name in tenant; '' when the role did not name exactly one
    login            TEXT    NOT NULL,          -- '' likewise
    state            TEXT    NOT NULL CHECK (state IN ('owed', 'failed', 'done')),
    attempts         INTEGER NOT NULL DEFAULT 0,
    last_error       TEXT,
    next_attempt_at  TEXT    NOT NULL,          -- no attempt before this time (backoff)
    retire_keys      TEXT,                      -- space-separated key blobs that must be gone from the host
    old_fingerprint  TEXT,
    new_fingerprint  TEXT,
    created_at       TEXT    NOT NULL,
    updated_at       TEXT    NOT NULL,
    done_at          TEXT,
    CHECK ((state = 'done') = (done_at IS NOT NULL))
);
CREATE INDEX rotations_open ON rotations (next_attempt_at) WHERE state != 'done';
CREATE INDEX rotations_tenant ON rotations (tenant, created_at);
