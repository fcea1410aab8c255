-- 0007_console_search: what the browser console's session list and session
-- page need (package audit, search.go, output_index.go, check.go).

-- Where a command sits in its session's recording: seconds from the cast's
-- start, on the clock that stamps the cast's events, taken when the command
-- was logged. NULL when there is no recording to seek in (file transfers,
-- a recording that failed, rows written before this migration). It is
-- navigation, not evidence: the session.end seal covers the command text,
-- not this column (doc.go, "What the chain binds").
ALTER TABLE commands ADD COLUMN offset REAL;

-- The session list pages by (started_at DESC, id DESC) under any filter.
-- Each filter column leads an index that continues with the order, so a
-- filtered page is a range scan, not a sort of every match.
CREATE INDEX sessions_page ON sessions (started_at, id);
CREATE INDEX sessions_tenant ON sessions (tenant, started_at, id);
CREATE INDEX sessions_role ON sessions (role, started_at, id);
CREATE INDEX sessions_end_reason ON sessions (end_reason, started_at, id);
CREATE INDEX sessions_tenant_host ON sessions (tenant, host, started_at, id);

-- "Command contains" is a substring match, which no B-tree can seek: the
-- search scans this covering index (command text and session only), the
-- smallest structure that answers it, instead of the table's wide rows.
CREATE INDEX commands_session_command ON commands (session_id, command);

-- The session.end event of a session, found without a scan of the chain
-- (the verified badge). Events written before session_id was in the data
-- are found by subject instead (check.go).
CREATE INDEX audit_events_session_end ON audit_events (json_extract(data, '$.session_id'))
    WHERE type = 'session.end';

-- The output index: the text that appeared on screen in each ended
-- session's recording, for "which sessions showed DROP TABLE". FTS4 (built
-- into the default go-sqlite3 build; FTS5 needs a build tag) with the
-- unicode61 tokenizer: words, case-folded, diacritics removed. Contentless
-- (content=""): the recording is the evidence and the text can be rebuilt
-- from it, so only the index is kept. A session's text is split into
-- chunks of a bounded size (so no single write holds the writer long), each
-- chunk one FTS row whose docid is a row of session_output_chunks; chunks
-- overlap by a few words so that a phrase across a cut is still found.
CREATE VIRTUAL TABLE session_output_fts USING fts4(content="", text, tokenize=unicode61);
-- Merge the index's segments a little after each write instead of all at
-- once when a level fills: a full merge of large segments would hold the
-- writer (and so every session's start) for as long as it takes.
INSERT INTO session_output_fts (session_output_fts) VALUES ('automerge=8');

CREATE TABLE session_output_chunks (
    -- AUTOINCREMENT: a docid is never reused, since the FTS rows of chunks
    -- replaced after an interrupted attempt stay in the contentless table.
    docid       INTEGER PRIMARY KEY AUTOINCREMENT,    -- session_output_fts docid
    session_id  TEXT    NOT NULL REFERENCES sessions (id)
);
CREATE INDEX session_output_chunks_session ON session_output_chunks (session_id);

-- One row per session whose recording has been indexed (written with its
-- last chunk): the backfill at start indexes ended sessions without one.
CREATE TABLE session_output_index (
    session_id  TEXT    PRIMARY KEY REFERENCES sessions (id),
    indexed_at  TEXT    NOT NULL,
    bytes       INTEGER NOT NULL,                     -- bytes of text indexed
    truncated   INTEGER NOT NULL CHECK (truncated IN (0, 1)),  -- cut at the cap
    error       TEXT                                  -- why the cast was not read to its end
);
