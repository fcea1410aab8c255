-- 0007_console_search, PostgreSQL part: the output index. SQLite keeps it
-- in a contentless FTS4 table; here session_output_fts keeps each chunk's
-- words (dialect.outputText: unicode61's words, lower-cased, one space
-- apart, a space at each end) under a trigram index, and a phrase is the
-- substring " w1 w2 " (dialect.outputPattern). docid is a row of
-- session_output_chunks, as in SQLite; rows of replaced chunks stay, as
-- they stay in the contentless FTS4 table, and are never reached since the
-- search goes through session_output_chunks. pg_trgm ships with Debian's
-- postgresql package and is a trusted extension: the database's owner may
-- create it.
CREATE EXTENSION IF NOT EXISTS pg_trgm;
CREATE TABLE session_output_fts (
    docid  BIGINT PRIMARY KEY,
    text   TEXT COLLATE "C" NOT NULL
);
CREATE INDEX session_output_fts_text ON session_output_fts USING GIN (text gin_trgm_ops);
