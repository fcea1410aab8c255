-- 0003_policy_versions: every policy the gateway (or a CLI command) loaded,
-- kept byte for byte, so that an evidence packet built later judges each
-- session and grant by the policy in force when it ran, not by today's.
-- A version is named by the lowercase hex SHA-256 of the policy file's exact
-- bytes; loading the same bytes again adds no row (the audit event
-- policy.loaded records every load). Rows are never updated or deleted.

CREATE TABLE policy_versions (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    sha256           TEXT    NOT NULL UNIQUE,
    content          BLOB    NOT NULL,
    path             TEXT,                      -- the file it was loaded from
    first_loaded_at  TEXT    NOT NULL
);

CREATE TRIGGER policy_versions_no_update BEFORE UPDATE ON policy_versions
BEGIN
    SELECT RAISE(ABORT, 'policy_versions is append-only');
END;
CREATE TRIGGER policy_versions_no_delete BEFORE DELETE ON policy_versions
BEGIN
    SELECT RAISE(ABORT, 'policy_versions is append-only');
END;

-- The policy version a session or grant ran under (policy_versions.sha256);
-- NULL for rows written before this migration.
ALTER TABLE sessions ADD COLUMN policy_version TEXT;
ALTER TABLE grants ADD COLUMN policy_version TEXT;
