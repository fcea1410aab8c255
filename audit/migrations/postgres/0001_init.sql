-- 0001_init, PostgreSQL part: what the SQLite file's statements cannot say
-- token for token (migrate_pg.go).

-- json_extract(data, '$.key'): SQLite's JSON function for the one path
-- shape Warden's queries use ('$.a' or '$.a.b'), so the same SQL runs on
-- both stores. It returns the value as text (SQLite returns a number for a
-- number); NULL when the key is missing or data is NULL. IMMUTABLE, so an
-- index may use it (0007's audit_events_session_end).
CREATE FUNCTION json_extract(data TEXT, path TEXT) RETURNS TEXT
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT (data::jsonb) #>> string_to_array(substr(path, 3), '.') $$;

-- The append-only triggers of audit_events, with SQLite's names. Like the
-- SQLite ones they stop accidents, not someone who can drop them; the hash
-- chain and "warden audit verify" are the control. TRUNCATE, which SQLite
-- lacks, is refused too.
CREATE FUNCTION warden_append_only() RETURNS trigger LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$;
CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION warden_append_only();
CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION warden_append_only();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION warden_append_only();

-- min(a, b) and max(a, b): SQLite's scalar functions of two values (the
-- evidence queries clamp times with them). Unlike LEAST and GREATEST,
-- which skip NULLs, they are NULL when either value is, as in SQLite.
CREATE FUNCTION min(a TEXT, b TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL WHEN a < b THEN a ELSE b END $$;
CREATE FUNCTION max(a TEXT, b TEXT) RETURNS TEXT LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL WHEN a > b THEN a ELSE b END $$;
CREATE FUNCTION min(a BIGINT, b BIGINT) RETURNS BIGINT LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL WHEN a < b THEN a ELSE b END $$;
CREATE FUNCTION max(a BIGINT, b BIGINT) RETURNS BIGINT LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT CASE WHEN a IS NULL OR b IS NULL THEN NULL WHEN a > b THEN a ELSE b END $$;

-- approvals has no key of its own, and the approvals of a request are
-- listed in the order they were given (jit: ORDER BY request_id, ts,
-- rowid), which SQLite keeps in its implicit rowid. PostgreSQL has no
-- rowid: this column is one, assigned in insertion order. Readers of the
-- contract's columns do not see a difference; SQLite's is hidden too.
ALTER TABLE approvals ADD COLUMN rowid BIGINT GENERATED ALWAYS AS IDENTITY;
