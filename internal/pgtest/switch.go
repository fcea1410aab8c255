package pgtest

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
)

// SwitchEnv is the harness switch: WARDEN_STORE=postgres runs a package's
// store-backed tests on PostgreSQL instead of SQLite; unset or "sqlite"
// keeps SQLite.
const SwitchEnv = "WARDEN_STORE"

// Postgres reads the switch. Any value but "", "sqlite" and "postgres" is
// an error, so a typo cannot silently test SQLite.
func Postgres() (bool, error) {
	switch v := os.Getenv(SwitchEnv); v {
	case "", "sqlite":
		return false, nil
	case "postgres":
		return true, nil
	default:
		return false, fmt.Errorf("pgtest: %s=%q: want sqlite or postgres", SwitchEnv, v)
	}
}

// dirDSNs maps data directories to their databases, per Shared.
type dirDSNs struct {
	mu sync.Mutex
	m  map[string]string
}

var perDir = map[*Shared]*dirDSNs{}
var perDirMu sync.Mutex

// DSNFor returns the database of a data directory: a fresh one the first
// time, the same one after, so a test that reopens a directory finds its
// data as it would in DATA/warden.db. It panics when the server cannot
// start or create a database, failing the test binary with the reason.
func (l *Shared) DSNFor(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		panic(err)
	}
	perDirMu.Lock()
	d := perDir[l]
	if d == nil {
		d = &dirDSNs{m: map[string]string{}}
		perDir[l] = d
	}
	perDirMu.Unlock()
	d.mu.Lock()
	defer d.mu.Unlock()
	if dsn, ok := d.m[abs]; ok {
		return dsn
	}
	srv, err := l.Get()
	if err != nil {
		panic(err)
	}
	dsn, err := srv.CreateDatabase(context.Background())
	if err != nil {
		panic(err)
	}
	d.m[abs] = dsn
	return dsn
}
