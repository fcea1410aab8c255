package audit

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/pgtest"
)

// The harness switch: WARDEN_STORE=postgres runs this package's tests on
// PostgreSQL (a fresh database per data directory, on one server started
// by internal/pgtest for the test binary) instead of SQLite. Tests of what
// only SQLite has (its files, their modes, the sqlite3 shell) open SQLite
// explicitly and run the same under both.
var pgServer pgtest.Shared

func TestMain(m *testing.M) {
	on, err := pgtest.Postgres()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	if on {
		SetTestBackend(pgBackendFor)
	}
	code := m.Run()
	if err := pgServer.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	os.Exit(code)
}

// onPostgres tells whether the harness runs on PostgreSQL.
func onPostgres() bool { return testBackend != nil }

// pgBackendFor gives each data directory its own database, the same one
// each time, so a test that reopens a directory finds its data.
func pgBackendFor(dataDir string) Backend {
	return Backend{Driver: DriverPostgres, DSN: pgServer.DSNFor(dataDir)}
}

// testDialect is the dialect the harness runs on.
func testDialect() *dialect {
	if onPostgres() {
		return postgresDialect
	}
	return sqliteDialect
}

// testMigrations are the migrations of the harness's driver.
func testMigrations(t *testing.T) []migration {
	t.Helper()
	ms, err := loadMigrations(migrationFS)
	if err != nil {
		t.Fatal(err)
	}
	if onPostgres() {
		if ms, err = pgMigrations(ms); err != nil {
			t.Fatal(err)
		}
	}
	return ms
}

// t0 is the start of every test clock.
var t0 = time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)

// clock is a deterministic Options.Now: each call is one millisecond after
// the previous one. It is safe for concurrent use.
type clock struct{ n atomic.Int64 }

func (c *clock) Now() time.Time { return t0.Add(time.Duration(c.n.Add(1)) * time.Millisecond) }

// openStore opens a Store in dir with a test clock and closes it at cleanup.
func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, Options{Now: (&clock{}).Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// openSQLiteStore opens a SQLite Store in dir whichever store the harness
// runs on, for tests of what only SQLite has (its files and their modes).
func openSQLiteStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, Options{Now: (&clock{}).Now, Backend: Backend{Driver: DriverSQLite}})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testSession returns a valid session with the given ID.
func testSession(id string) Session {
	return Session{ID: id, User: "alice", Login: "root", Host: "web01", Tenant: "acme", Role: "prod-root"}
}

// mustStart starts sessions or fails the test.
func mustStart(t *testing.T, s *Store, sessions ...Session) {
	t.Helper()
	for _, sess := range sessions {
		if err := s.StartSession(context.Background(), sess); err != nil {
			t.Fatalf("StartSession(%s): %v", sess.ID, err)
		}
	}
}

// blockWriter parks the writer goroutine inside an open transaction until
// the returned release func is called, so tests can queue writes behind it.
func blockWriter(t *testing.T, s *Store, inTx func(*sql.Tx) error) (release func()) {
	t.Helper()
	entered, rel, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.write(context.Background(), func(tx *sql.Tx, _ *chainTip) error {
			var err error
			if inTx != nil {
				err = inTx(tx)
			}
			close(entered)
			<-rel
			return err
		})
	}()
	<-entered
	return func() {
		close(rel)
		if err := <-done; err != nil {
			t.Errorf("blocking write: %v", err)
		}
	}
}

// waitQueued waits until n writes wait in the queue.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	for len(s.ops) < n {
		time.Sleep(time.Millisecond)
	}
}

// rawDB opens the database of dir as a plain writable connection, the way
// a tamperer with file or database access would, bypassing the Store. On
// PostgreSQL it is a connection as the database's owner, through the
// store's driver (so '?' and the reserved column names work as in SQLite).
func rawDB(t *testing.T, dir string) *sql.DB {
	t.Helper()
	if onPostgres() {
		db, err := sql.Open(pgDriverName, pgBackendFor(dir).DSN)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	}
	return sqliteDB(t, dir)
}

// dropTrigger drops one of the append-only triggers, as a tamperer would.
func dropTrigger(t *testing.T, db *sql.DB, name, table string) {
	t.Helper()
	q := `DROP TRIGGER ` + name
	if onPostgres() {
		q += ` ON ` + table
	}
	if _, err := db.Exec(q); err != nil {
		t.Fatal(err)
	}
}

// sqliteDB opens DATA/warden.db in dir as a plain writable sqlite3
// connection, whichever store the harness runs on.
func sqliteDB(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", filepath.Join(dir, DBName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// assertChain checks that the store holds n events and verifies cleanly.
func assertChain(t *testing.T, s *Store, dir string, n int) {
	t.Helper()
	ev, err := s.Events(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != n {
		t.Fatalf("%d events, want %d", len(ev), n)
	}
	rep, err := Verify(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != n || len(rep.Problems) > 0 {
		t.Fatalf("Verify: %d events, problems %v", rep.Events, rep.Problems)
	}
}

// at parses an RFC 3339 time for a fixture.
func at(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}
