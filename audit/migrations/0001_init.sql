-- 0001_init: every table of the user-facing contract (CONTRACT.md section 5).
-- Auditors query these tables with sqlite3, so the column names and their order
-- are stable; later migrations may only add columns, indexes and tables.
-- Times are RFC 3339 UTC text of fixed width (2006-01-02T15:04:05.000000Z), so
-- that text order is time order. Empty optional values are stored as NULL.

CREATE TABLE requests (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user        TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    tenant      TEXT    NOT NULL,
    reason      TEXT,
    ticket      TEXT,
    duration    TEXT    NOT NULL,               -- Go duration, e.g. "2h0m0s"
    state       TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    decided_at  TEXT
);
CREATE INDEX requests_user ON requests (user, created_at);
CREATE INDEX requests_state ON requests (state);

CREATE TABLE approvals (
    request_id  INTEGER NOT NULL REFERENCES requests (id),
    approver    TEXT    NOT NULL,
    decision    TEXT    NOT NULL,
    comment     TEXT,
    ts          TEXT    NOT NULL,
    -- One decision per approver and request: "two distinct approvers" must
    -- not be satisfiable by one person deciding twice.
    UNIQUE (request_id, approver)
);

CREATE TABLE grants (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id  INTEGER REFERENCES requests (id),
    user        TEXT    NOT NULL,
    role        TEXT    NOT NULL,
    tenant      TEXT    NOT NULL,
    starts_at   TEXT    NOT NULL,
    expires_at  TEXT    NOT NULL,
    ended_at    TEXT,
    end_reason  TEXT CHECK (end_reason IS NULL OR
                            end_reason IN ('expired', 'revoked', 'relinquished', 'deprovisioned'))
);
CREATE INDEX grants_user ON grants (user, expires_at);

CREATE TABLE sessions (
    id                TEXT    PRIMARY KEY,
    user              TEXT    NOT NULL,
    login             TEXT    NOT NULL,
    host              TEXT    NOT NULL,
    tenant            TEXT    NOT NULL,
    role              TEXT,
    grant_id          INTEGER REFERENCES grants (id),
    client_addr       TEXT,
    started_at        TEXT    NOT NULL,
    ended_at          TEXT,
    end_reason        TEXT,
    exit_status       INTEGER,
    recording_path    TEXT,                     -- relative to data_dir
    recording_sha256  TEXT,                     -- lowercase hex
    bytes_in          INTEGER NOT NULL DEFAULT 0,
    bytes_out         INTEGER NOT NULL DEFAULT 0,
    cert_serial       TEXT
);
CREATE INDEX sessions_started ON sessions (started_at);
CREATE INDEX sessions_user ON sessions (user, started_at);
CREATE INDEX sessions_host ON sessions (host, started_at);
CREATE INDEX sessions_open ON sessions (id) WHERE ended_at IS NULL;

CREATE TABLE commands (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    session_id  TEXT    NOT NULL REFERENCES sessions (id),
    ts          TEXT    NOT NULL,
    user        TEXT    NOT NULL,
    login       TEXT    NOT NULL,
    host        TEXT    NOT NULL,
    tenant      TEXT    NOT NULL,
    source      TEXT    NOT NULL CHECK (source IN ('exec', 'shell', 'sftp', 'scp')),
    command     TEXT    NOT NULL,
    action      TEXT    NOT NULL CHECK (action IN ('allowed', 'denied')),
    rule        TEXT
);
CREATE INDEX commands_session ON commands (session_id, ts);
CREATE INDEX commands_ts ON commands (ts);

-- audit_events is a hash chain (see the package documentation). seq is
-- assigned by the gateway's single writer, never by AUTOINCREMENT, so the chain
-- cannot fork.
CREATE TABLE audit_events (
    seq        INTEGER PRIMARY KEY,
    ts         TEXT    NOT NULL,
    type       TEXT    NOT NULL,
    actor      TEXT    NOT NULL,
    subject    TEXT    NOT NULL,
    data       TEXT    NOT NULL,                -- canonical JSON object
    prev_hash  TEXT    NOT NULL,
    hash       TEXT    NOT NULL UNIQUE
);

-- The triggers stop accidental edits. They are no defence against someone who
-- can drop them; the hash chain is, and "warden audit verify" checks it.
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
BEGIN
    SELECT RAISE(ABORT, 'audit_events is append-only');
END;
