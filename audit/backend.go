package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/mattn/go-sqlite3"
)

// Driver names of Backend.Driver (config store.driver).
const (
	DriverSQLite   = "sqlite"
	DriverPostgres = "postgres"
)

// Backend says which database holds the store. The zero value is SQLite,
// DATA/warden.db in the data directory; with Driver "postgres" the tables
// live in the PostgreSQL database DSN names, and the data directory keeps
// only the recordings. The DSN holds a password: it is never logged and
// never part of an error.
type Backend struct {
	Driver string // DriverSQLite (or "") or DriverPostgres
	DSN    string // DriverPostgres only: a pgx connection string or URL
}

// check refuses an unknown driver and a PostgreSQL backend without a DSN.
func (b Backend) check() error {
	switch b.Driver {
	case "", DriverSQLite:
		return nil
	case DriverPostgres:
		if strings.TrimSpace(b.DSN) == "" {
			return invalidf("store driver postgres: empty DSN")
		}
		return nil
	}
	return invalidf("store driver %q: want %s or %s", b.Driver, DriverSQLite, DriverPostgres)
}

func (b Backend) postgres() bool { return b.Driver == DriverPostgres }

// testBackend, when a test harness sets it (SetTestBackend), chooses the
// backend of a zero Options.Backend and of the functions that take only a
// data directory (OpenReadOnly, Verify): the harness switch
// WARDEN_STORE=postgres. It is nil in every binary but tests.
var testBackend func(dataDir string) Backend

// SetTestBackend is for test harnesses only (a TestMain, before any test
// runs): from then on a zero Backend, and OpenReadOnly and Verify, use
// choose(dataDir) instead of SQLite in dataDir, so a package's existing
// tests run on PostgreSQL unchanged. Warden's binaries never call it.
func SetTestBackend(choose func(dataDir string) Backend) { testBackend = choose }

// resolve returns b, or the test harness's choice for a zero b.
func resolve(dataDir string, b Backend) Backend {
	if b == (Backend{}) && testBackend != nil {
		return testBackend(dataDir)
	}
	return b
}

// dialect holds the few pieces of SQL that differ between the drivers and
// that pgSQL cannot translate token by token.
type dialect struct {
	postgres bool
	// like is the case-insensitive substring operator: SQLite's LIKE
	// ignores ASCII case; PostgreSQL's ILIKE under the "C" collation
	// every text column has (migrate_pg.go) does the same.
	like string
	// jsonList selects the values of a JSON array of strings bound as one
	// parameter, as a one-column subquery body.
	jsonList string
	// hasOffset tells whether commands has the offset column (0007).
	hasOffset string
	// outputMatch is the condition on session_output_fts that finds a
	// phrase; its parameter is outputPattern's.
	outputMatch string
}

// snapshot is a read-only transaction that sees one snapshot throughout:
// SQLite's read transactions always do; PostgreSQL's default, READ
// COMMITTED, takes a new snapshot per statement, so Verify could see a
// session.end without the rows it seals.
func (d *dialect) snapshot() *sql.TxOptions {
	if d.postgres {
		return &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}
	}
	return &sql.TxOptions{ReadOnly: true}
}

var sqliteDialect = &dialect{
	like:        "LIKE",
	jsonList:    "SELECT value FROM json_each(?)",
	hasOffset:   `SELECT EXISTS (SELECT 1 FROM pragma_table_info('commands') WHERE name = 'offset')`,
	outputMatch: "session_output_fts MATCH ?",
}

var postgresDialect = &dialect{
	postgres:    true,
	like:        "ILIKE",
	jsonList:    "SELECT json_array_elements_text(CAST(? AS json))",
	hasOffset:   `SELECT EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'commands' AND column_name = 'offset')`,
	outputMatch: "text LIKE ?",
}

// checkSearch refuses search text that PostgreSQL cannot hold in a text
// value (a NUL byte, invalid UTF-8): no stored row can contain it there, and
// the server would fail the query. SQLite stores any bytes and searches
// them as they are.
func (d *dialect) checkSearch(what, s string) error {
	if d.postgres && (strings.IndexByte(s, 0) >= 0 || !utf8.ValidString(s)) {
		return invalidf("%s holds a NUL byte or invalid UTF-8", what)
	}
	return nil
}

// outputText is what the output index stores for a chunk of screen text.
// SQLite's FTS4 table (unicode61) tokenizes the chunk itself. PostgreSQL
// has no tokenizer that splits exactly where unicode61 does (its parser
// keeps paths, e-mail addresses and versions whole), so the chunk is
// reduced here to unicode61's words, lower-cased, one space apart and
// padded with a space at each end: a phrase is then found as the
// substring " w1 w2 ", served by a pg_trgm index (migrations/postgres/
// 0007_console_search.sql). Unlike unicode61 it keeps diacritics.
func (d *dialect) outputText(chunk string) string {
	if !d.postgres {
		return chunk
	}
	return " " + strings.Join(outputWords(chunk), " ") + " "
}

// outputPattern is the parameter of outputMatch for the phrase words.
func (d *dialect) outputPattern(words []string) string {
	if !d.postgres {
		return `"` + strings.Join(words, " ") + `"`
	}
	return "% " + strings.ToLower(strings.Join(words, " ")) + " %"
}

// outputWords splits s as unicode61 does: runs of letters and digits,
// lower-cased.
func outputWords(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsNumber(r) })
}

// isForeignKeyErr tells whether err is a failed foreign key constraint.
func isForeignKeyErr(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode == sqlite3.ErrConstraintForeignKey
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23503" // foreign_key_violation
}

// openPostgres opens a pool on b's database. readOnly makes every
// transaction of the pool read-only (default_transaction_read_only), the
// counterpart of SQLite's mode=ro: nothing handed out by DB() can write
// past the writer and its hash chain. Errors never include the DSN.
func openPostgres(ctx context.Context, b Backend, readOnly bool) (*sql.DB, error) {
	dsn := b.DSN
	if readOnly {
		var err error
		if dsn, err = withRuntimeParam(dsn, "default_transaction_read_only", "on"); err != nil {
			return nil, err
		}
	}
	db, err := sql.Open(pgDriverName, dsn)
	if err != nil {
		return nil, errors.New("audit: open postgres: bad DSN")
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("audit: open postgres: %w", redactDSN(err, b.DSN))
	}
	return db, nil
}

// withRuntimeParam adds a server setting to a DSN in either of pgx's forms
// (URL or key=value); pgx sends settings it does not know to the server.
func withRuntimeParam(dsn, key, value string) (string, error) {
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			return "", errors.New("audit: open postgres: bad DSN URL")
		}
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String(), nil
	}
	return dsn + " " + key + "=" + value, nil
}

// redactDSN keeps a DSN (and so its password) out of an error's text.
func redactDSN(err error, dsn string) error {
	if dsn != "" && strings.Contains(err.Error(), dsn) {
		return errors.New(strings.ReplaceAll(err.Error(), dsn, "[DSN]"))
	}
	return err
}

// chainLockKey is the pg_advisory_xact_lock key of the audit chain: every
// node's writer takes it at the start of each transaction, so appends from
// all nodes are serialised and each reads the chain head committed by the
// one before. The value spells "warden" in ASCII.
const chainLockKey = 0x77617264656e
