package audit

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sort"
	"strings"
	"unicode/utf8"
)

// CopyReport says what CopyToPostgres did, table by table.
type CopyReport struct {
	Tables []TableCopy
	// Indexed is how many sessions' screen text the output index gained
	// after the copy (IndexPending on the PostgreSQL store).
	Indexed int
	// Verify is Verify on the PostgreSQL store after the copy.
	Verify VerifyReport
}

// TableCopy counts one table's rows: copied now, or already present with
// the same content (a re-run).
type TableCopy struct {
	Table           string
	Copied, Existed int
}

// copySkipped are the SQLite tables not copied: the migrations table (the
// target is migrated by Open to the same version instead), and the output
// index, whose PostgreSQL form differs (dialect.outputText) and which the
// store's catch-up indexer rebuilds from the recordings after the copy.
func copySkipped(table string) bool {
	return table == "schema_migrations" || table == "session_output_chunks" ||
		table == "session_output_index" || strings.HasPrefix(table, "session_output_fts") ||
		strings.HasPrefix(table, "sqlite_")
}

// CopyToPostgres copies the SQLite store src (opened read-only) into the
// PostgreSQL database dst, whose schema it first migrates to the same
// version; dataDir holds the recordings (for the output index and Verify).
//
// Everything is copied in one transaction that holds the chain lock, so a
// gateway already writing to dst waits, and a copy that stops changes
// nothing. Ids and the events chain are kept byte for byte; identity
// counters are then moved past the copied ids (setval), so new rows get
// fresh ids. A row already in dst with the same content is skipped, so a
// second run copies nothing; a row with different content, a dst chain
// longer than src's, and text PostgreSQL cannot hold (a NUL byte, invalid
// UTF-8) stop the copy with an error naming the table and row: data is
// never altered to fit.
func CopyToPostgres(ctx context.Context, src *Reader, dataDir string, dst Backend, opt Options) (CopyReport, error) {
	var rep CopyReport
	if src.d.postgres {
		return rep, errors.New("audit: copy: the source must be a SQLite store")
	}
	if dst.Driver != DriverPostgres {
		return rep, errors.New("audit: copy: the target must be a PostgreSQL store")
	}
	if err := dst.check(); err != nil {
		return rep, err
	}
	srcVer, err := schemaVersion(ctx, src.db)
	if err != nil {
		return rep, err
	}
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		return rep, err
	}
	if srcVer != len(ms) {
		// Open migrates the target to this binary's version; a source at
		// another one would be copied into columns it does not have.
		return rep, fmt.Errorf("audit: copy: the SQLite database is at schema version %d, this binary's is %d: run warden serve (or any data command) on it once first", srcVer, len(ms))
	}
	opt.Backend = dst
	opt.OutputIndex = false
	s, err := Open(ctx, dataDir, opt) // migrates the schema
	if err != nil {
		return rep, err
	}
	if err := s.Close(); err != nil {
		return rep, err
	}

	db, err := openPostgres(ctx, dst, false)
	if err != nil {
		return rep, err
	}
	defer db.Close()
	if rep.Tables, err = copyAll(ctx, src.db, db); err != nil {
		return rep, err
	}

	// Reopen: the store reads the chain head at start.
	s, err = Open(ctx, dataDir, opt)
	if err != nil {
		return rep, err
	}
	defer s.Close()
	if rep.Indexed, err = s.IndexPending(ctx); err != nil {
		return rep, fmt.Errorf("audit: copy: output index: %w", err)
	}
	if opt.Recordings != nil {
		s.Reader.SetRecordings(opt.Recordings)
	}
	if rep.Verify, err = s.Reader.Verify(ctx, dataDir); err != nil {
		return rep, err
	}
	return rep, nil
}

func schemaVersion(ctx context.Context, db *sql.DB) (int, error) {
	var v int
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("audit: copy: schema version: %w", err)
	}
	return v, nil
}

// copyTable is one table's shape as SQLite has it.
type copyTable struct {
	name string
	cols []string
	pk   []string // primary key columns, in key order; all columns when none
	deps []string // tables its foreign keys name
}

// copyAll copies every table in one transaction on dst.
func copyAll(ctx context.Context, src, dst *sql.DB) (out []TableCopy, err error) {
	tables, err := copyTables(ctx, src)
	if err != nil {
		return nil, err
	}
	stx, err := src.BeginTx(ctx, sqliteDialect.snapshot())
	if err != nil {
		return nil, fmt.Errorf("audit: copy: %w", err)
	}
	defer stx.Rollback()
	tx, err := dst.BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("audit: copy: %w", err)
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	// The writers of every node take this lock per transaction: none
	// appends to the chain while the copy runs.
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(?)`, chainLockKey); err != nil {
		return nil, fmt.Errorf("audit: copy: %w", err)
	}
	// A target with events past the source's chain is another chain (or
	// a gateway already ran on it): merging would break both.
	var srcMax, dstMax int64
	if err := stx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM audit_events`).Scan(&srcMax); err != nil {
		return nil, fmt.Errorf("audit: copy: %w", err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(seq), 0) FROM audit_events`).Scan(&dstMax); err != nil {
		return nil, fmt.Errorf("audit: copy: %w", err)
	}
	if dstMax > srcMax {
		return nil, fmt.Errorf("audit: copy refused: the PostgreSQL database has audit events up to seq %d, the SQLite one only to %d (another chain)", dstMax, srcMax)
	}
	for _, t := range tables {
		n, err := copyOne(ctx, stx, tx, t)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
	}
	if err := setIdentities(ctx, tx); err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("audit: copy: commit: %w", err)
	}
	return out, nil
}

// copyTables lists the SQLite tables to copy, parents before children.
func copyTables(ctx context.Context, db *sql.DB) ([]copyTable, error) {
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("audit: copy: %w", err)
	}
	var names []string
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("audit: copy: %w", err)
		}
		if !copySkipped(n) {
			names = append(names, n)
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: copy: %w", err)
	}
	byName := map[string]*copyTable{}
	for _, n := range names {
		t := &copyTable{name: n}
		type pkCol struct {
			n   int
			col string
		}
		var pks []pkCol
		r, err := db.QueryContext(ctx, `SELECT name, pk FROM pragma_table_info(?) ORDER BY cid`, n)
		if err != nil {
			return nil, fmt.Errorf("audit: copy: %s: %w", n, err)
		}
		for r.Next() {
			var c string
			var pk int
			if err := r.Scan(&c, &pk); err != nil {
				r.Close()
				return nil, fmt.Errorf("audit: copy: %s: %w", n, err)
			}
			t.cols = append(t.cols, c)
			if pk > 0 {
				pks = append(pks, pkCol{pk, c})
			}
		}
		r.Close()
		sort.Slice(pks, func(i, j int) bool { return pks[i].n < pks[j].n })
		for _, p := range pks {
			t.pk = append(t.pk, p.col)
		}
		if len(t.pk) == 0 {
			t.pk = t.cols
		}
		r, err = db.QueryContext(ctx, `SELECT DISTINCT "table" FROM pragma_foreign_key_list(?)`, n)
		if err != nil {
			return nil, fmt.Errorf("audit: copy: %s: %w", n, err)
		}
		for r.Next() {
			var d string
			if err := r.Scan(&d); err != nil {
				r.Close()
				return nil, fmt.Errorf("audit: copy: %s: %w", n, err)
			}
			if d != n {
				t.deps = append(t.deps, d)
			}
		}
		r.Close()
		byName[n] = t
	}
	// Depth-first topological order; names are sorted, so it is stable.
	var out []copyTable
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n string) error
	visit = func(n string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("audit: copy: foreign key cycle through %s", n)
		case 2:
			return nil
		}
		state[n] = 1
		t, ok := byName[n]
		if !ok {
			return fmt.Errorf("audit: copy: a foreign key names table %s, which is not copied", n)
		}
		for _, d := range t.deps {
			if err := visit(d); err != nil {
				return err
			}
		}
		state[n] = 2
		out = append(out, *t)
		return nil
	}
	for _, n := range names {
		if err := visit(n); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// pgBytea returns which columns of table are BYTEA in PostgreSQL.
func pgBytea(ctx context.Context, tx *sql.Tx, table string) (map[string]bool, error) {
	rows, err := tx.QueryContext(ctx, `SELECT column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = ? AND data_type = 'bytea'`, table)
	if err != nil {
		return nil, fmt.Errorf("audit: copy: %s: %w", table, err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return nil, err
		}
		out[c] = true
	}
	return out, rows.Err()
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// copyOne copies one table's rows, in SQLite's rowid order (the insertion
// order, which approvals' PostgreSQL rowid column then keeps).
func copyOne(ctx context.Context, stx, tx *sql.Tx, t copyTable) (TableCopy, error) {
	rep := TableCopy{Table: t.name}
	bytea, err := pgBytea(ctx, tx, t.name)
	if err != nil {
		return rep, err
	}
	qc := make([]string, len(t.cols))
	for i, c := range t.cols {
		qc[i] = quoteIdent(c)
	}
	var where []string
	for _, c := range t.pk {
		where = append(where, quoteIdent(c)+" IS NOT DISTINCT FROM ?")
	}
	order := "rowid"
	if withoutRowid(ctx, stx, t.name) {
		order = strings.Join(quotedAll(t.pk), ", ")
	}
	// Quoted identifiers pass through pgSQL untouched; both databases
	// read them as the column.
	sel := `SELECT ` + strings.Join(qc, ", ") + ` FROM ` + quoteIdent(t.name)
	lookup := sel + ` WHERE ` + strings.Join(where, " AND ")
	ins := `INSERT INTO ` + quoteIdent(t.name) + ` (` + strings.Join(qc, ", ") + `) VALUES (` +
		strings.TrimSuffix(strings.Repeat("?, ", len(qc)), ", ") + `)`
	rows, err := stx.QueryContext(ctx, sel+` ORDER BY `+order)
	if err != nil {
		return rep, fmt.Errorf("audit: copy: %s: %w", t.name, err)
	}
	defer rows.Close()
	for rows.Next() {
		vals := make([]any, len(t.cols))
		ptrs := make([]any, len(t.cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			return rep, fmt.Errorf("audit: copy: %s: %w", t.name, err)
		}
		key := rowKey(t, vals)
		for i, c := range t.cols {
			v, err := pgValue(vals[i], bytea[c])
			if err != nil {
				return rep, fmt.Errorf("audit: copy refused: %s row %s column %s: %v; PostgreSQL cannot hold it and the copy does not alter data", t.name, key, c, err)
			}
			vals[i] = v
		}
		keyVals := make([]any, 0, len(t.pk))
		for _, p := range t.pk {
			keyVals = append(keyVals, vals[colIndex(t.cols, p)])
		}
		have := make([]any, len(t.cols))
		hptrs := make([]any, len(t.cols))
		for i := range have {
			hptrs[i] = &have[i]
		}
		err = tx.QueryRowContext(ctx, lookup, keyVals...).Scan(hptrs...)
		switch {
		case err == nil:
			for i, c := range t.cols {
				if !sameValue(vals[i], have[i]) {
					return rep, fmt.Errorf("audit: copy refused: %s row %s is already in PostgreSQL with a different %s; nothing was copied", t.name, key, c)
				}
			}
			rep.Existed++
			continue
		case !errors.Is(err, sql.ErrNoRows):
			return rep, fmt.Errorf("audit: copy: %s row %s: %w", t.name, key, err)
		}
		if _, err := tx.ExecContext(ctx, ins, vals...); err != nil {
			return rep, fmt.Errorf("audit: copy: %s row %s: %w", t.name, key, err)
		}
		rep.Copied++
	}
	if err := rows.Err(); err != nil {
		return rep, fmt.Errorf("audit: copy: %s: %w", t.name, err)
	}
	return rep, nil
}

func quotedAll(cs []string) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = quoteIdent(c)
	}
	return out
}

// withoutRowid tells whether a SQLite table has no rowid.
func withoutRowid(ctx context.Context, tx *sql.Tx, table string) bool {
	var s string
	if err := tx.QueryRowContext(ctx, `SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = ?`, table).Scan(&s); err != nil {
		return false
	}
	return strings.Contains(strings.ToUpper(s), "WITHOUT ROWID")
}

func colIndex(cols []string, c string) int {
	for i, x := range cols {
		if x == c {
			return i
		}
	}
	return -1
}

// rowKey names a row by its primary key, for error lines; values are
// quoted so stored text cannot forge the line.
func rowKey(t copyTable, vals []any) string {
	var parts []string
	for _, p := range t.pk {
		v := vals[colIndex(t.cols, p)]
		if b, ok := v.([]byte); ok {
			v = string(b)
		}
		s := fmt.Sprintf("%v", v)
		if len(s) > 64 {
			s = s[:64] + "…"
		}
		parts = append(parts, fmt.Sprintf("%s=%q", p, s))
	}
	return strings.Join(parts, ",")
}

// pgValue is a SQLite value as PostgreSQL must receive it; text PostgreSQL
// cannot store is an error, never repaired.
func pgValue(v any, bytea bool) (any, error) {
	switch x := v.(type) {
	case string:
		if bytea {
			return []byte(x), nil
		}
		if strings.IndexByte(x, 0) >= 0 {
			return nil, errors.New("holds a NUL byte")
		}
		if !utf8.ValidString(x) {
			return nil, errors.New("holds invalid UTF-8")
		}
	case []byte:
		if bytea {
			return x, nil
		}
		if bytes.IndexByte(x, 0) >= 0 {
			return nil, errors.New("holds a NUL byte")
		}
		if !utf8.Valid(x) {
			return nil, errors.New("holds invalid UTF-8")
		}
		return string(x), nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, errors.New("holds a non-finite number")
		}
	}
	return v, nil
}

// sameValue compares a value about to be copied with the stored one.
func sameValue(a, b any) bool {
	if ab, ok := a.([]byte); ok {
		bb, ok := b.([]byte)
		return ok && bytes.Equal(ab, bb)
	}
	if bb, ok := b.([]byte); ok { // pgx may give text as bytes
		b = string(bb)
	}
	switch x := a.(type) {
	case int64:
		switch y := b.(type) {
		case int64:
			return x == y
		case int32:
			return x == int64(y)
		}
		return false
	case float64:
		y, ok := b.(float64)
		return ok && x == y
	}
	return a == b
}

// setIdentities moves every identity counter past the largest id in its
// column: ids copied explicitly do not advance it, and the next insert
// would otherwise collide with a copied row.
func setIdentities(ctx context.Context, tx *sql.Tx) error {
	rows, err := tx.QueryContext(ctx, `SELECT table_name, column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND is_identity = 'YES' ORDER BY table_name`)
	if err != nil {
		return fmt.Errorf("audit: copy: identities: %w", err)
	}
	var ids [][2]string
	for rows.Next() {
		var t, c string
		if err := rows.Scan(&t, &c); err != nil {
			rows.Close()
			return fmt.Errorf("audit: copy: identities: %w", err)
		}
		ids = append(ids, [2]string{t, c})
	}
	rows.Close()
	for _, id := range ids {
		t, c := quoteIdent(id[0]), quoteIdent(id[1])
		// The next id is past both the largest copied id and any id the
		// counter already handed out (never lowered: like AUTOINCREMENT,
		// an id is not reused); is_called false makes it exactly that.
		q := `SELECT setval(q.s, GREATEST(COALESCE((SELECT MAX(` + c + `) FROM ` + t + `), 0), COALESCE(pg_sequence_last_value(q.s), 0)) + 1, false)
			FROM (SELECT CAST(pg_get_serial_sequence(?, ?) AS regclass) AS s) q`
		if _, err := tx.ExecContext(ctx, q, t, id[1]); err != nil {
			return fmt.Errorf("audit: copy: setval %s.%s: %w", id[0], id[1], err)
		}
	}
	return nil
}
