package audit

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/warden-gw/warden/recstore"
)

// Reader answers queries on warden.db through a read-only pool. The CLI
// uses it through OpenReadOnly without starting a writer; a Store embeds
// one. A Reader is safe for concurrent use.
type Reader struct {
	db *sql.DB
	d  *dialect
	// recs, when set (Options.Recordings of the gateway's Store), is where
	// CheckSession reads recordings; nil means the files under dataDir.
	recs recstore.Store
}

// SetRecordings makes CheckSession read recordings from recs (a CLI that
// reaches a configured object store); nil means the local files.
func (r *Reader) SetRecordings(recs recstore.Store) { r.recs = recs }

// recordings is where r reads the recordings of dataDir.
func (r *Reader) recordings(dataDir string) recstore.Store {
	if r.recs != nil {
		return r.recs
	}
	return recstore.Local{Dir: dataDir}
}

// OpenReadOnly opens an existing DATA/warden.db for queries only. It never
// creates or migrates the database, and fails with "audit: no database at
// PATH" when there is none.
func OpenReadOnly(dataDir string) (*Reader, error) {
	return OpenReader(context.Background(), dataDir, Backend{})
}

// OpenReader opens backend b for queries only, through a pool that
// refuses writes; the zero Backend is OpenReadOnly's SQLite database in
// dataDir. It never creates or migrates a database.
func OpenReader(ctx context.Context, dataDir string, b Backend) (*Reader, error) {
	path, err := dbPath(dataDir)
	if err != nil {
		return nil, err
	}
	b = resolve(dataDir, b)
	if err := b.check(); err != nil {
		return nil, err
	}
	if b.postgres() {
		db, err := openPostgres(ctx, b, true)
		if err != nil {
			return nil, err
		}
		// Like a missing warden.db: a database no Warden has migrated is
		// most likely the wrong DSN, and reading it would only fail later.
		var migrated bool
		if err := db.QueryRowContext(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&migrated); err != nil {
			db.Close()
			return nil, fmt.Errorf("audit: open postgres: %w", err)
		}
		if !migrated {
			db.Close()
			return nil, &noDatabaseError{"audit: no Warden tables in the PostgreSQL database (warden serve creates them)"}
		}
		db.SetMaxOpenConns(readConns)
		db.SetMaxIdleConns(readConns)
		return &Reader{db: db, d: postgresDialect}, nil
	}
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, &noDatabaseError{"audit: no database at " + path}
		}
		return nil, fmt.Errorf("audit: open %s: %w", path, err)
	}
	db, err := openReadPool(path)
	if err != nil {
		return nil, err
	}
	return &Reader{db: db, d: sqliteDialect}, nil
}

// Close closes the read pool.
func (r *Reader) Close() error {
	if err := r.db.Close(); err != nil {
		return fmt.Errorf("audit: close: %w", err)
	}
	return nil
}

// BeginSnapshot begins a read-only transaction that sees one snapshot of
// the database throughout, on either driver (PostgreSQL's default
// isolation takes a new snapshot per statement): for readers, like the
// evidence packet, whose figures must agree with each other.
func (r *Reader) BeginSnapshot(ctx context.Context) (*sql.Tx, error) {
	return r.db.BeginTx(ctx, r.d.snapshot())
}

// DB returns the read-only pool, for queries of later packages. Writes on it
// fail: every write goes through a Store's writer.
func (r *Reader) DB() *sql.DB { return r.db }

// SessionFilter selects sessions. Zero fields do not filter.
type SessionFilter struct {
	User  string    // exact Warden user name
	Host  string    // host name, or TENANT/HOST
	Since time.Time // sessions started at or after
	Limit int       // at most this many; 0 or less means all
	// Tenants, when not nil, keeps only sessions of these tenants; an
	// empty non-nil list keeps none (a viewer who oversees no tenant).
	Tenants []string
}

const sessionColumns = `id, user, login, host, tenant, role, grant_id, client_addr, started_at, ended_at,
	end_reason, exit_status, recording_path, recording_sha256, bytes_in, bytes_out, cert_serial, node_id`

// Sessions lists the sessions that match f, newest first.
func (r *Reader) Sessions(ctx context.Context, f SessionFilter) ([]Session, error) {
	var where []string
	var args []any
	if f.User != "" {
		where, args = append(where, "user = ?"), append(args, f.User)
	}
	if tenant, host, ok := strings.Cut(f.Host, "/"); ok {
		where, args = append(where, "tenant = ? AND host = ?"), append(args, tenant, host)
	} else if f.Host != "" {
		where, args = append(where, "host = ?"), append(args, f.Host)
	}
	if !f.Since.IsZero() {
		since, err := formatTime(f.Since)
		if err != nil {
			return nil, err
		}
		where, args = append(where, "started_at >= ?"), append(args, since)
	}
	if f.Tenants != nil {
		if len(f.Tenants) == 0 {
			return nil, nil
		}
		where = append(where, "tenant IN (?"+strings.Repeat(", ?", len(f.Tenants)-1)+")")
		for _, t := range f.Tenants {
			args = append(args, t)
		}
	}
	q := "SELECT " + sessionColumns + " FROM sessions"
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY started_at DESC, id DESC"
	if f.Limit > 0 {
		q, args = q+" LIMIT ?", append(args, f.Limit)
	}
	return querySessions(ctx, r.db, "list sessions", q, args...)
}

// querySessions runs q, which selects sessionColumns, and scans its rows;
// what names the query in errors.
func querySessions(ctx context.Context, db *sql.DB, what, q string, args ...any) ([]Session, error) {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: %s: %w", what, err)
	}
	defer rows.Close()
	var out []Session
	for rows.Next() {
		sess, err := scanSession(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, sess)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: %s: %w", what, err)
	}
	return out, nil
}

// Session returns the session id, or an error matching ErrNotFound.
func (r *Reader) Session(ctx context.Context, id string) (Session, error) {
	row := r.db.QueryRowContext(ctx, "SELECT "+sessionColumns+" FROM sessions WHERE id = ?", id)
	sess, err := scanSession(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, notFoundf("session %q not found", id)
	}
	return sess, err
}

// scanner is what *sql.Row and *sql.Rows have in common.
type scanner interface{ Scan(dest ...any) error }

func scanSession(sc scanner) (Session, error) {
	var (
		s                                                   Session
		role, client, ended, reason, rec, sum, serial, node sql.NullString
		started                                             string
		grant, exit                                         sql.NullInt64
	)
	err := sc.Scan(&s.ID, &s.User, &s.Login, &s.Host, &s.Tenant, &role, &grant, &client, &started, &ended,
		&reason, &exit, &rec, &sum, &s.BytesIn, &s.BytesOut, &serial, &node)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, err
	}
	if err != nil {
		return Session{}, fmt.Errorf("audit: read session: %w", err)
	}
	s.Role, s.GrantID, s.ClientAddr = role.String, grant.Int64, client.String
	s.EndReason, s.RecordingPath, s.RecordingSHA256, s.CertSerial = reason.String, rec.String, sum.String, serial.String
	s.NodeID = node.String
	if exit.Valid {
		n := int(exit.Int64)
		s.ExitStatus = &n
	}
	if s.StartedAt, err = parseTime(started); err != nil {
		return Session{}, fmt.Errorf("audit: session %s: started_at: %w", s.ID, err)
	}
	if s.EndedAt, err = parseNullTime(ended); err != nil {
		return Session{}, fmt.Errorf("audit: session %s: ended_at: %w", s.ID, err)
	}
	return s, nil
}

// CommandFilter selects commands. Zero fields do not filter.
type CommandFilter struct {
	SessionID string
	Grep      *regexp.Regexp // matched against the command text
	Limit     int            // at most this many; 0 or less means all
}

const commandSelect = `id, session_id, ts, user, login, host, tenant, source, command, action, rule, offset`

// Commands lists the commands that match f, oldest first (by time, then in
// the order they were logged). For one session that is the order of its
// recording: the rows beside the player, or a transfer's file operations
// (sources sftp and scp).
func (r *Reader) Commands(ctx context.Context, f CommandFilter) ([]Command, error) {
	cols, err := r.commandColumns(ctx)
	if err != nil {
		return nil, err
	}
	q := `SELECT ` + cols + ` FROM commands`
	var args []any
	if f.SessionID != "" {
		q, args = q+" WHERE session_id = ?", append(args, f.SessionID)
	}
	q += " ORDER BY ts, id"
	// The regexp runs here rather than in SQL, so a LIMIT must wait for it.
	if f.Limit > 0 && f.Grep == nil {
		q, args = q+" LIMIT ?", append(args, f.Limit)
	}
	rows, err := r.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: list commands: %w", err)
	}
	defer rows.Close()
	var out []Command
	for rows.Next() && (f.Limit <= 0 || len(out) < f.Limit) {
		c, err := scanCommand(rows)
		if err != nil {
			return nil, err
		}
		if f.Grep != nil && !f.Grep.MatchString(c.Command) {
			continue
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: list commands: %w", err)
	}
	return out, nil
}

// commandColumns returns the select list of scanCommand. The CLI reads
// databases it does not migrate (OpenReadOnly): one that no gateway of
// version 0007 or later has opened yet has no offset column, and its
// commands are listed without offsets rather than not at all.
func (r *Reader) commandColumns(ctx context.Context) (string, error) {
	var has bool
	err := r.db.QueryRowContext(ctx, r.d.hasOffset).Scan(&has)
	if err != nil {
		return "", fmt.Errorf("audit: list commands: %w", err)
	}
	if !has {
		return strings.Replace(commandSelect, "offset", "NULL", 1), nil
	}
	return commandSelect, nil
}

// scanCommand reads a row of commandSelect.
func scanCommand(sc scanner) (Command, error) {
	var c Command
	var ts string
	var rule sql.NullString
	var offset sql.NullFloat64
	if err := sc.Scan(&c.ID, &c.SessionID, &ts, &c.User, &c.Login, &c.Host, &c.Tenant,
		&c.Source, &c.Command, &c.Action, &rule, &offset); err != nil {
		return Command{}, fmt.Errorf("audit: list commands: %w", err)
	}
	c.Rule = rule.String
	if offset.Valid {
		o := offset.Float64
		c.Offset = &o
	}
	var err error
	if c.TS, err = parseTime(ts); err != nil {
		return Command{}, fmt.Errorf("audit: command %d: ts: %w", c.ID, err)
	}
	return c, nil
}

// Events returns up to limit events with seq greater than afterSeq, in
// chain order; limit 0 or less means all. Data numbers are json.Number, so
// they keep their exact stored text.
func (r *Reader) Events(ctx context.Context, afterSeq int64, limit int) ([]Event, error) {
	q := `SELECT seq, ts, type, actor, subject, data, prev_hash, hash FROM audit_events WHERE seq > ? ORDER BY seq`
	args := []any{afterSeq}
	if limit > 0 {
		q, args = q+" LIMIT ?", append(args, limit)
	}
	rows, err := r.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: list events: %w", err)
	}
	defer rows.Close()
	var out []Event
	for rows.Next() {
		var e Event
		var ts, data string
		if err := rows.Scan(&e.Seq, &ts, &e.Type, &e.Actor, &e.Subject, &data, &e.PrevHash, &e.Hash); err != nil {
			return nil, fmt.Errorf("audit: list events: %w", err)
		}
		if e.TS, err = parseTime(ts); err != nil {
			return nil, fmt.Errorf("audit: event %d: ts: %w", e.Seq, err)
		}
		if e.Data, err = decodeData(data); err != nil {
			return nil, fmt.Errorf("audit: event %d: data: %w", e.Seq, err)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: list events: %w", err)
	}
	return out, nil
}

// decodeData parses a stored data column; "{}" gives an empty, non-nil map.
func decodeData(s string) (map[string]any, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	return m, nil
}
