// Package storetest is the harness switch for packages whose tests open
// an audit store: with WARDEN_STORE=postgres, Main makes every store the
// tests open by data directory (audit.Open with a zero Backend,
// audit.OpenReadOnly, audit.Verify) a fresh PostgreSQL database, one per
// directory, on a server internal/pgtest starts for the test binary; unset
// or "sqlite", the tests run on SQLite as always.
//
// A package uses it from its TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(storetest.Main(m)) }
//
// Package audit's own tests do the same in helpers_test.go (they cannot
// import this package, which imports audit).
package storetest

import (
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/pgtest"
)

// Server is the test binary's PostgreSQL server, started on first use.
var Server pgtest.Shared

// Main runs the tests under the switch and returns their exit code,
// stopping the server, if one was started, after them.
func Main(m *testing.M) int {
	on, err := pgtest.Postgres()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	if on {
		audit.SetTestBackend(func(dir string) audit.Backend {
			return audit.Backend{Driver: audit.DriverPostgres, DSN: Server.DSNFor(dir)}
		})
	}
	code := m.Run()
	if err := Server.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		code = 1
	}
	return code
}

// Postgres reports whether the switch puts the stores on PostgreSQL. Main
// has already refused a value it does not know, so an error reads as off.
func Postgres() bool {
	on, _ := pgtest.Postgres()
	return on
}

// SQLiteOnly skips t when the switch is on PostgreSQL. It is for the few
// tests of SQLite itself (its file on a full disk, a copy out of a SQLite
// database); why says what the test checks that PostgreSQL has no
// counterpart for, and is printed with the skip so that the PostgreSQL
// pass lists what it did not run.
func SQLiteOnly(t testing.TB, why string) {
	t.Helper()
	if Postgres() {
		t.Skipf("SQLite only (%s=postgres): %s", pgtest.SwitchEnv, why)
	}
}

// DB opens the database of dataDir for a test's own SQL, written as for
// SQLite: DATA/warden.db, or on PostgreSQL the database the switch gave
// dataDir, through the store's driver (so '?' and the column user are
// translated as for the store's own statements). It is read-only, as an
// auditor's access would be, and closed when t ends.
func DB(t testing.TB, dataDir string) *sql.DB {
	t.Helper()
	r, err := audit.OpenReadOnly(dataDir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r.DB()
}

// RawDB opens the database of dataDir for writing behind the store's
// back, as a tamperer with access to it would: DATA/warden.db with the
// sqlite3 driver, or, on PostgreSQL, the database the switch gave dataDir
// as the role that owns it (so it may drop the append-only triggers),
// through the store's driver, which takes the SQL as written for SQLite
// ('?', the column user). A statement without arguments may hold several,
// as in the sqlite3 shell. It is closed when t ends.
func RawDB(t testing.TB, dataDir string) *sql.DB {
	t.Helper()
	driver, dsn := "sqlite3", filepath.Join(dataDir, audit.DBName)
	if Postgres() {
		driver, dsn = audit.PostgresSQLDriver, Server.DSNFor(dataDir)
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// NoDatabase is how the error of opening a store that was never created
// goes on after "audit: ", on the switch's driver: a missing
// DATA/warden.db, or a PostgreSQL database without Warden's tables.
func NoDatabase() string {
	if Postgres() {
		return "no Warden tables in the PostgreSQL database"
	}
	return "no database at "
}

// PolicyStore returns the store: section of a policy whose data_dir is
// dataDir, for a test that runs warden as its own process (which the
// switch inside this test binary cannot reach): empty on SQLite, where
// DATA/warden.db is the default; on PostgreSQL driver postgres with
// dsn_file, a file written with the database the switch gave dataDir, so
// that the process and the test's own reads see one store.
func PolicyStore(t testing.TB, dataDir, dsnFile string) string {
	t.Helper()
	if !Postgres() {
		return ""
	}
	if err := os.WriteFile(dsnFile, []byte(Server.DSNFor(dataDir)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("store:\n  driver: postgres\n  dsn_file: %s\n", dsnFile)
}
