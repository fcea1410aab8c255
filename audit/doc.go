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
// appends cannot fork the chain. Verify finds a changed, deleted or inserted
// event anywhere before the last one. It cannot, by itself, tell a chain
// whose newest events were removed, or to which someone appended events with
// correctly computed hashes, from a genuine one: keep VerifyReport.Head (or
// the last event's hash) somewhere the gateway's host cannot rewrite, and
// compare. Triggers refuse UPDATE and DELETE on audit_events, which stops
// mistakes; they do not stop anyone who can drop them, and are not meant to.
//
// # Event types
//
// Type is a free-form string. The gateway uses:
//
//	session.start       a session channel started (subject: session ID)
//	session.end         it ended; also written by CloseOrphans after a crash
//	session.refused     a connection or channel was refused (data: reason)
//	auth.failed         public key or certificate authentication failed
//	host_key.mismatch   a managed host presented an unexpected host key
//	forward.refused     a port or agent forwarding request was refused
//	recording.failed    writing a recording failed
//	credential.failed   issuing the per-session certificate failed
//
// Later packages add request.*, approval.*, grant.* and exception.* types.
package audit
