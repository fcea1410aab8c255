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
	"fmt"
	"os"
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
