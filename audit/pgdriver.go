package audit

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/stdlib"
)

// pgDriverName is the database/sql driver of the PostgreSQL store: pgx's
// own driver (github.com/jackc/pgx/v5/stdlib) behind pgSQL, the one place
// where Warden's SQL, written for SQLite, is turned into PostgreSQL's.
// Every statement of every package that reaches the store through a Store,
// a Reader or a Tx passes through it, so callers keep writing '?'.
const pgDriverName = "warden-postgres"

// PostgresSQLDriver is pgDriverName for callers outside the package: a
// test harness that edits a PostgreSQL store's tables behind its back
// (internal/storetest.RawDB), in the SQL it writes for SQLite.
const PostgresSQLDriver = pgDriverName

func init() { sql.Register(pgDriverName, pgDriver{}) }

// pgDriver opens pgx connections wrapped by pgConn.
type pgDriver struct{}

// pgInner is what pgx's stdlib connection implements and pgConn forwards.
type pgInner interface {
	driver.Conn
	driver.ConnPrepareContext
	driver.ConnBeginTx
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.NamedValueChecker
	driver.SessionResetter
}

func (pgDriver) Open(dsn string) (driver.Conn, error) {
	c, err := stdlib.GetDefaultDriver().Open(dsn)
	if err != nil {
		return nil, err
	}
	return wrapPgConn(c)
}

// OpenConnector makes database/sql connect with the context of the call
// that needs the connection: through Open, pgx connected with
// context.Background(), so a new connection to a server that accepts and
// then never answers (a frozen host) waited for ever, whatever deadline
// the caller had.
func (pgDriver) OpenConnector(dsn string) (driver.Connector, error) {
	dc, ok := stdlib.GetDefaultDriver().(driver.DriverContext)
	if !ok {
		return nil, fmt.Errorf("audit: pgx's driver %T has no connector", stdlib.GetDefaultDriver())
	}
	inner, err := dc.OpenConnector(dsn)
	if err != nil {
		return nil, err
	}
	return pgConnector{inner}, nil
}

// pgConnector connects through pgx's connector and wraps each connection.
type pgConnector struct{ inner driver.Connector }

func (c pgConnector) Connect(ctx context.Context) (driver.Conn, error) {
	conn, err := c.inner.Connect(ctx)
	if err != nil {
		return nil, err
	}
	return wrapPgConn(conn)
}

func (pgConnector) Driver() driver.Driver { return pgDriver{} }

func wrapPgConn(c driver.Conn) (driver.Conn, error) {
	in, ok := c.(pgInner)
	if !ok {
		c.Close()
		return nil, fmt.Errorf("audit: pgx connection %T lacks a database/sql interface", c)
	}
	return &pgConn{pgInner: in}, nil
}

// pgConn rewrites every statement with pgSQL before pgx sees it, and runs
// the statements of a transaction under the transaction's context.
//
// Why the second: database/sql runs tx.Exec and tx.Query with
// context.Background(), so a transaction begun with a deadline (the
// audit writer's, writer.go) still had statements that could wait for
// ever on a server that hangs with its sockets open (a stuck disk, a
// frozen host): the kernel acknowledges what is sent and no error ever
// comes. The deadline then bounded only BEGIN and COMMIT, and the writer,
// with every session end and heartbeat queued behind it, stopped for good.
// A statement that brings a context of its own that can end keeps it.
//
// database/sql uses a driver connection from one goroutine at a time (its
// own rollback on a cancelled context waits for the statement in flight
// first), so txCtx needs no lock.
type pgConn struct {
	pgInner
	txCtx context.Context // the open transaction's context; nil outside one
}

func (c *pgConn) Prepare(q string) (driver.Stmt, error) { return c.pgInner.Prepare(pgSQL(q)) }

func (c *pgConn) PrepareContext(ctx context.Context, q string) (driver.Stmt, error) {
	return c.pgInner.PrepareContext(c.stmtCtx(ctx), pgSQL(q))
}

func (c *pgConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	return c.pgInner.ExecContext(c.stmtCtx(ctx), pgSQL(q), args)
}

func (c *pgConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	return c.pgInner.QueryContext(c.stmtCtx(ctx), pgSQL(q), args)
}

// BeginTx notes the transaction's context for its statements (stmtCtx).
func (c *pgConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.pgInner.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	c.txCtx = ctx
	return pgTx{Tx: tx, c: c}, nil
}

// stmtCtx is the context a statement runs under: its own, unless that can
// never end (database/sql's context.Background() for tx.Exec and tx.Query)
// and a transaction is open, whose context then bounds it.
func (c *pgConn) stmtCtx(ctx context.Context) context.Context {
	if ctx.Done() == nil && c.txCtx != nil {
		return c.txCtx
	}
	return ctx
}

// pgTx forgets the transaction's context once it has ended.
type pgTx struct {
	driver.Tx
	c *pgConn
}

func (t pgTx) Commit() error {
	defer func() { t.c.txCtx = nil }()
	return t.Tx.Commit()
}

func (t pgTx) Rollback() error {
	defer func() { t.c.txCtx = nil }()
	return t.Tx.Rollback()
}

// CheckNamedValue stores a Go bool as SQLite does, the integer 1 or 0:
// the schema's flags are INTEGER columns on both drivers (migrate_pg.go),
// and pgx would refuse a bool for one. database/sql asks this for the
// arguments of prepared statements too.
func (c *pgConn) CheckNamedValue(nv *driver.NamedValue) error {
	if b, ok := nv.Value.(bool); ok {
		nv.Value = int64(0)
		if b {
			nv.Value = int64(1)
		}
		return nil
	}
	return c.pgInner.CheckNamedValue(nv)
}

// pgQuoted are the column names of CONTRACT section 5 that PostgreSQL
// reserves: a bare user means current_user there (so "WHERE user = ?"
// would silently compare the database role), and offset is the keyword
// of LIMIT ... OFFSET. pgSQL double-quotes them, which both databases read
// as the column. Warden's SQL writes keywords in upper case, so only the
// lower-case word offset is a column; OFFSET stays the keyword.
var pgQuoted = map[string]bool{"user": true, "offset": true}

// pgSQL translates one SQLite statement (or script) for PostgreSQL, token
// by token outside string literals, quoted identifiers and comments:
//
//   - each '?' becomes $1, $2, ... in order, and '?NNN' becomes $NNN
//     (SQLite's numbered parameters; a '?' after one takes the number
//     after the largest so far, as in SQLite); Warden uses no named ones;
//   - the columns in pgQuoted are double-quoted.
//
// Everything else passes through unchanged, dollar-quoted bodies
// ($$ ... $$) included. What cannot be translated token by token (full
// text search, table_info, JSON lists) is chosen per driver in dialect.
func pgSQL(q string) string {
	var b strings.Builder
	b.Grow(len(q) + 16)
	n := 0
	for i := 0; i < len(q); {
		c := q[i]
		switch {
		case c == '\'' || c == '"':
			j := i + 1
			for j < len(q) {
				if q[j] == c {
					if j+1 < len(q) && q[j+1] == c { // doubled quote inside
						j += 2
						continue
					}
					break
				}
				j++
			}
			j = min(j+1, len(q))
			b.WriteString(q[i:j])
			i = j
		case c == '-' && i+1 < len(q) && q[i+1] == '-':
			j := strings.IndexByte(q[i:], '\n')
			if j < 0 {
				j = len(q) - i
			}
			b.WriteString(q[i : i+j])
			i += j
		case c == '/' && i+1 < len(q) && q[i+1] == '*':
			j := strings.Index(q[i+2:], "*/")
			end := len(q)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			b.WriteString(q[i:end])
			i = end
		case c == '$' && i+1 < len(q) && q[i+1] == '$':
			j := strings.Index(q[i+2:], "$$")
			end := len(q)
			if j >= 0 {
				end = i + 2 + j + 2
			}
			b.WriteString(q[i:end])
			i = end
		case c == '?':
			j := i + 1
			for j < len(q) && '0' <= q[j] && q[j] <= '9' {
				j++
			}
			if j > i+1 { // ?NNN, SQLite's numbered parameter
				k, _ := strconv.Atoi(q[i+1 : j])
				n = max(n, k)
				b.WriteString("$" + q[i+1:j])
			} else {
				n++
				b.WriteString("$" + strconv.Itoa(n))
			}
			i = j
		case isIdentStart(c):
			j := i + 1
			for j < len(q) && isIdentPart(q[j]) {
				j++
			}
			if w := q[i:j]; pgQuoted[w] {
				b.WriteString(`"` + w + `"`)
			} else {
				b.WriteString(w)
			}
			i = j
		default:
			b.WriteByte(c)
			i++
		}
	}
	return b.String()
}

func isIdentStart(c byte) bool {
	return c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || c >= 0x80
}

func isIdentPart(c byte) bool { return isIdentStart(c) || '0' <= c && c <= '9' || c == '$' }
