package audit

import (
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestOpenCreatesPrivateFiles(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	s := openSQLiteStore(t, dir) // SQLite's files, under either harness
	mustStart(t, s, testSession("S1"))

	for _, c := range []struct {
		path string
		mode os.FileMode
	}{
		{dir, 0o700 | os.ModeDir},
		{filepath.Join(dir, DBName), 0o600},
		{filepath.Join(dir, DBName+"-wal"), 0o600},
		{filepath.Join(dir, DBName+"-shm"), 0o600},
	} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != c.mode {
			t.Errorf("%s: mode %v, want %v", c.path, fi.Mode(), c.mode)
		}
	}
	var mode string
	if err := s.DB().QueryRow(`PRAGMA journal_mode`).Scan(&mode); err != nil || mode != "wal" {
		t.Errorf("journal_mode = %q, %v; want wal", mode, err)
	}
}

func TestOpenEscapesDataDirInURI(t *testing.T) {
	// A data directory name that would end or alter a file: URI if pasted
	// into one unescaped.
	dir := filepath.Join(t.TempDir(), "odd?mode=ro#x%20y")
	s := openSQLiteStore(t, dir) // SQLite's file: URI, under either harness
	mustStart(t, s, testSession("S1"))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, DBName)); err != nil {
		t.Fatalf("database not at the literal path: %v", err)
	}
	r, err := OpenReader(context.Background(), dir, Backend{Driver: DriverSQLite})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Session(context.Background(), "S1"); err != nil {
		t.Fatalf("read back: %v", err)
	}
}

func TestReopenKeepsDataAndAppliesMigrationsOnce(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	for i := range 3 {
		s, err := Open(ctx, dir, Options{})
		if err != nil {
			t.Fatalf("open %d: %v", i, err)
		}
		if i == 0 {
			mustStart(t, s, testSession("S1"))
		}
		var n, version int
		if err := s.DB().QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &version); err != nil {
			t.Fatal(err)
		}
		ms, _ := loadMigrations(migrationFS)
		if n != len(ms) || version != len(ms) {
			t.Errorf("open %d: %d migration rows up to version %d, want %d", i, n, version, len(ms))
		}
		if _, err := s.Session(ctx, "S1"); err != nil {
			t.Errorf("open %d: %v", i, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestSchemaHasContractColumns(t *testing.T) {
	// CONTRACT.md section 5: auditors rely on these names, in this order.
	want := map[string]string{
		"sessions":     "id user login host tenant role grant_id client_addr started_at ended_at end_reason exit_status recording_path recording_sha256 bytes_in bytes_out",
		"commands":     "id session_id ts user login host tenant source command action rule",
		"requests":     "id user role tenant reason ticket duration state created_at decided_at",
		"approvals":    "request_id approver decision comment ts",
		"grants":       "id request_id user role tenant starts_at expires_at ended_at end_reason",
		"audit_events": "seq ts type actor subject data prev_hash hash",
	}
	s := openStore(t, t.TempDir())
	for table, cols := range want {
		q := `SELECT name FROM pragma_table_info(?) ORDER BY cid`
		if onPostgres() {
			q = `SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position`
		}
		rows, err := s.DB().Query(q, table)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for rows.Next() {
			var name string
			if err := rows.Scan(&name); err != nil {
				t.Fatal(err)
			}
			got = append(got, name)
		}
		rows.Close()
		wantCols := strings.Fields(cols)
		if len(got) < len(wantCols) || strings.Join(got[:len(wantCols)], " ") != cols {
			t.Errorf("%s columns = %v, want prefix %v", table, got, wantCols)
		}
		if table == "sessions" && !strings.Contains(strings.Join(got, " "), "cert_serial") {
			t.Errorf("sessions lacks cert_serial: %v", got)
		}
	}
}

func TestOpenRefusesNewerSchema(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := rawDB(t, dir).Exec(`INSERT INTO schema_migrations VALUES (99, '0099_future.sql', 'x')`); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), dir, Options{})
	if err == nil || !strings.Contains(err.Error(), "newer than this binary") {
		t.Fatalf("Open on a newer schema: %v", err)
	}
}

func TestReadPoolRefusesWrites(t *testing.T) {
	s := openStore(t, t.TempDir())
	_, err := s.DB().Exec(`INSERT INTO sessions (id, user, login, host, tenant, started_at) VALUES ('X','a','b','c','d','e')`)
	if err == nil || !strings.Contains(err.Error(), "readonly") && !strings.Contains(err.Error(), "read-only transaction") {
		t.Fatalf("write through DB(): %v, want a read-only error", err)
	}
}

func TestReadsDoNotWaitForAnOpenWriteTransaction(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	mustStart(t, s, testSession("S1"))
	release := blockWriter(t, s, func(tx *sql.Tx) error {
		_, err := tx.Exec(`INSERT INTO sessions (id, user, login, host, tenant, started_at)
			VALUES ('S2', 'bob', 'root', 'web01', 'acme', '2026-11-29T09:00:00.000000Z')`)
		return err
	})

	// The writer holds the write lock with S2 uncommitted. Both the store's
	// pool and a separate read-only opener answer from the last commit.
	got, err := s.Sessions(ctx, SessionFilter{})
	if err != nil || len(got) != 1 || got[0].ID != "S1" {
		t.Fatalf("Sessions during write tx = %v, %v; want only S1", got, err)
	}
	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got, err := r.Sessions(ctx, SessionFilter{}); err != nil || len(got) != 1 {
		t.Fatalf("Reader.Sessions during write tx = %v, %v; want only S1", got, err)
	}

	release()
	if got, err := s.Sessions(ctx, SessionFilter{}); err != nil || len(got) != 2 {
		t.Fatalf("Sessions after commit = %d rows, %v; want 2", len(got), err)
	}
}

func TestCloseDrainsQueuedWrites(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	release := blockWriter(t, s, nil)

	const n = 100
	errs := make(chan error, n)
	for i := range n {
		go func() {
			errs <- s.Append(context.Background(), Event{Type: "test.queued", Subject: string(rune('a' + i%26))})
		}()
	}
	waitQueued(t, s, n)
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range n {
		if err := <-errs; err != nil {
			t.Errorf("queued Append: %v", err)
		}
	}
	rep, err := Verify(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != n || len(rep.Problems) != 0 {
		t.Fatalf("after Close: %d events, problems %v; want %d, none", rep.Events, rep.Problems, n)
	}
}

func TestWritesAfterCloseFail(t *testing.T) {
	s := openStore(t, t.TempDir())
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Append(context.Background(), Event{Type: "late"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Append after Close: %v, want ErrClosed", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestCancelledContextIsNotQueued(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Append(ctx, Event{Type: "x"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with cancelled ctx: %v", err)
	}
	if ev, err := s.Events(context.Background(), 0, 0); err != nil || len(ev) != 0 {
		t.Fatalf("events = %v, %v; want none", ev, err)
	}
}

func TestOpenRejectsEmptyDataDir(t *testing.T) {
	if _, err := Open(context.Background(), "", Options{}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("Open(\"\"): %v, want ErrInvalid", err)
	}
}
