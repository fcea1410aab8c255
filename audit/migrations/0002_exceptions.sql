-- 0002_exceptions: the exception register (package exceptions). An exception
-- is a documented, owned, time-limited departure from policy: who owns it, for
-- which tenant, why, which compensating controls stand in for the control it
-- suspends, and when it lapses. Rows are never deleted: closing one sets the
-- closed_* columns, so the evidence packet of any month can show what was open.
-- Times are RFC 3339 UTC text of fixed width, as in 0001_init.

CREATE TABLE exceptions (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant      TEXT    NOT NULL,
    owner       TEXT    NOT NULL,
    reason      TEXT    NOT NULL,
    controls    TEXT    NOT NULL,               -- compensating controls
    expires_at  TEXT    NOT NULL,
    created_by  TEXT    NOT NULL,
    created_at  TEXT    NOT NULL,
    closed_at   TEXT,
    closed_by   TEXT,
    close_note  TEXT,
    -- A closed exception always says who closed it, when and why.
    CHECK ((closed_at IS NULL) = (closed_by IS NULL) AND (closed_at IS NULL) = (close_note IS NULL))
);
CREATE INDEX exceptions_tenant ON exceptions (tenant, expires_at);
