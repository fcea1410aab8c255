// Package audit is Warden's record of what happened: the SQLite database
// DATA/warden.db with its sessions, command log and append-only, hash-chained
// audit events (CONTRACT.md section 5). Auditors read the same tables with
// the sqlite3 shell; "warden audit verify" checks them with Verify.
//
// # Writing
//
// The database runs in WAL mode. A Store owns the only write connection and
// one goroutine that uses it: writes are queued, and the writer commits
// whatever is queued (up to 256 writes) in one transaction, each write under
// its own savepoint so that one refused write does not undo the others. Every
// write method returns only when its write is committed, or with the reason it
// was not, so the gateway can refuse a session it could not record. Close
// lets the queue drain before it stops the writer.
//
// Queries run on a separate read-only pool, so auditors' queries and the CLI
// never wait for the gateway's writes and can never write themselves.
// OpenReadOnly gives that pool alone, without a writer, for the CLI.
//
// Files: the data directory is created with mode 0700 and warden.db (and so
// its -wal and -shm files) with mode 0600, since the command log holds what
// administrators typed. Schema migrations are embedded, numbered
// (migrations/0001_init.sql, ...), applied at Open in one transaction and
// recorded in schema_migrations.
//
// # Values
//
// Times are stored as RFC 3339 UTC text of fixed width with microseconds,
// "2006-01-02T15:04:05.000000Z", so that ordering the text orders the times;
// a zero time passed to a write means "now" by Options.Now. Optional values
// that are empty (a role, a grant ID of 0, an unknown exit status) are stored
// as NULL. Session IDs may contain only letters, digits, '-' and '_', since
// they name recording files; recording paths are '/'-separated and relative
// to the data directory, e.g. "recordings/2026-11-29/ID.cast".
//
// # The audit chain
//
// Each row of audit_events carries seq (1, 2, 3, ... with no gaps), prev_hash
// (the hash of the row before it, or 64 zeros for seq 1) and
//
//	hash = hex(sha256(prev_hash_bytes || canonical_event))
//
// where prev_hash_bytes are the 32 bytes that prev_hash spells in hex, and
// canonical_event is this JSON text, with no spaces and the keys in this order:
//
//	{"seq":SEQ,"ts":TS,"type":TYPE,"actor":ACTOR,"subject":SUBJECT,"data":DATA}
//
// SEQ is the decimal seq. TS, TYPE, ACTOR and SUBJECT are the stored column
// texts as JSON strings, escaped by exactly these rules: '"' and '\' get a
// backslash, each byte below 0x20 becomes \u00xx (lowercase hex), and every
// other byte is copied as is. DATA is the stored data column, verbatim; the
// writer stores it as a JSON object with keys sorted at every level, no
// spaces, and no HTML escaping. Hashing the stored text, not a re-encoding,
// lets any tool that can run SQL and SHA-256 repeat the check.
//
// Only the writer goroutine assigns seq and computes hashes, so concurrent
// appends cannot fork the chain. Triggers refuse UPDATE and DELETE on
// audit_events, which stops mistakes; they do not stop anyone who can drop
// them, and are not meant to.
//
// # What the chain binds
//
// Sessions and command rows live in their own tables, outside the chain, so
// each session's evidence is sealed into the chain when it ends. EndSession
// (and CloseOrphans, after a crash) closes the session row and, in the same
// writer transaction, appends its session.end event, whose data holds:
//
//	session_id         the session
//	recording_path     sessions.recording_path ("" when there is none)
//	recording_sha256   the SHA-256 of that file, lowercase hex ("" when none)
//	commands           the number of the session's rows in commands
//	commands_last_id   the id of the last of them (0 when none)
//	commands_sha256    hex(sha256(ROW_1 || ROW_2 || ... || ROW_n))
//
// where ROW_i are the session's rows of commands in ascending id, each the
// text
//
//	[ID,SESSION_ID,TS,USER,LOGIN,HOST,TENANT,SOURCE,COMMAND,ACTION,RULE]
//
// followed by one newline (0x0a), with no spaces: ID is the decimal id, RULE
// is null when the column is NULL, and every other value is the stored
// column text as a JSON string by the chain's rules above. With no rows,
// commands_sha256 is the SHA-256 of nothing (e3b0c442...). LogCommand refuses
// a session that has ended, and the writer runs one write at a time, so no
// row can be added between the digest and the end. Verify, for every
// session.end, re-hashes the file at the chained path, compares the session
// row's path and digest with the event's, and recomputes the command digest;
// it names the first bad session, file or row (a row added after the end is
// named by its id). It also reports ended session rows that have no
// session.end, command rows that name no session, and lists open sessions
// as live: their evidence is bound only when they end.
//
// Grants are bound the same way by the events package jit writes in the
// transaction that changes the row: grant.started (data grant_id,
// request_id, user, role, tenant, starts_at, expires_at) and one end event
// (grant.expired, grant.revoked, grant.relinquished or
// grant.deprovisioned, data grant_id, ended_at, end_reason). Verify
// compares every grants row with them (times as instants) and names the
// grant: a row without a grant.started, a row that disagrees, an open row
// the chain ended, an ended row the chain did not end, and events of a
// grant whose row is gone.
//
// Requests and their decisions likewise: request.created (data
// request_id, user, role, tenant, reason, ticket, duration; its ts is
// created_at), one closing event per closed request (request.approved,
// request.denied, request.cancelled or request.expired; its ts is
// decided_at, except for an expiry, whose row holds when the TTL ended),
// and per approvals row an approval.recorded (decision approved) or the
// request.denied (decision denied) with data approver and comment, its ts
// the row's. The evidence packet counts a break-glass grant's approvers
// from approvals, so a row there without its event fails verify.
//
// # What the chain cannot see, and the anchor that fixes it
//
// Verify finds a changed, deleted or inserted event anywhere before the last
// one, and through the seals any changed recording or command row of an
// ended session. It cannot, by itself, tell a genuine chain from
//   - one whose newest events were removed (truncation: the last sessions
//     then look live or vanish with their rows and files), or
//   - one rewritten wholesale by someone who can write the database and
//     recompute every hash from the first changed event on.
//
// An anchor fixes both: a copy of a chain head (a hash, with its seq) kept
// where the gateway's host cannot rewrite it. While the event with that hash
// is still in the chain at its seq and Verify finds no problem, nothing up to
// it has changed. "warden audit verify" prints the head to keep. The signed
// monthly evidence packet already carries one: audit_chain_head in
// summary.json (covered by MANIFEST.sha256 and its signature) is the hash of
// the last event stamped before the month's end; archive the packet away from
// the gateway and compare, e.g. with "warden audit verify --anchor HASH".
//
// # PostgreSQL
//
// With Options.Backend (config store.driver postgres) the same tables live
// in a PostgreSQL database shared by several gateway nodes, through pgx's
// database/sql driver (backend.go, pgdriver.go). The code and its SQL stay
// as written for SQLite: pgSQL rewrites each statement at one place ('?'
// to $n, the reserved column names user and offset quoted), the dialect
// holds the few fragments that differ, and the schema is translated from
// the same migration files (migrate_pg.go, migrations/postgres/). Each
// node's Store has its own writer, so the chain is kept one chain by the
// database: every writer transaction takes pg_advisory_xact_lock and then
// reads the chain head, never trusting its cached one; readers use
// repeatable-read snapshots (Reader.BeginSnapshot) where SQLite's read
// transactions give one by themselves.
//
// # The console's queries
//
// SearchSessions pages the session list by (started_at, id), newest first,
// with an opaque cursor instead of an offset, under any mix of filters and
// the asking person's tenant scope (search.go); every filter column leads
// an index that continues with that order (migration 0007). CheckSession is
// the verified badge: one session's file, row, command rows and sealed
// session.end event, and that event's links to its neighbours, in time
// that does not grow with the chain (check.go).
//
// The output index (output_index.go, output_text.go) holds the text each
// ended session's recording showed, in an FTS4 table. It is built by a
// worker goroutine that Open starts when Options.OutputIndex is set and
// Close stops before the writer: EndSession hands it the session ID without
// waiting, and at start it indexes every ended session that has none (the
// backfill). Its writes go through the writer like any other, a bounded
// chunk of text each.
//
// Command rows carry offset, the seconds into the session's recording at
// which the command was logged, so the player can seek to it; it is not
// part of the session.end seal.
//
// # Event types
//
// Type is a free-form string. The gateway uses:
//
//	session.start       a session channel started (data: session_id)
//	session.end         it ended, sealed as above; written only by EndSession
//	                    and, after a crash, CloseOrphans (Append refuses it;
//	                    end reason "interrupted", a torn cast line cut first
//	                    and recorded under recording_repaired)
//	session.access_removed  a reloaded policy no longer entitled a live session
//	policy.reload_failed    a reload kept the policy in force (data: errors)
//	session.refused     a connection or channel was refused (data: reason)
//	auth.failed         public key or certificate authentication failed
//	host_key.mismatch   a managed host presented an unexpected host key
//	forward.refused     a port or agent forwarding request was refused
//	recording.failed    writing a recording failed
//	credential.failed   issuing the per-session certificate failed
//	audit.delayed       events the store could not take were appended late,
//	                    with their own ts (data: held, dropped, since, until)
//
// Later packages add request.*, approval.*, grant.* and exception.* types,
// identity.user.*, identity.group.* and scim.refused (actor
// "scim:DIRECTORY"), scim.unauthorized (a bad token, once per source a
// minute), identity.access_removed (the gateway applied a directory
// change), and package sso sso.bound, sso.ended and sso.refused.
package audit
