package cli

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// storeBackend is the audit backend cfg's store section names. The DSN is
// read from store.dsn_file; it holds a password, so it never appears in an
// error or a log line, and a file others may read is refused.
func storeBackend(cfg *policy.Config) (audit.Backend, error) {
	if cfg.Store.Driver != policy.StorePostgres {
		return audit.Backend{}, nil
	}
	dsn, err := readDSNFile("store.dsn_file", cfg.Store.DSNFile)
	if err != nil {
		return audit.Backend{}, err
	}
	return audit.Backend{Driver: audit.DriverPostgres, DSN: dsn}, nil
}

// readDSNFile reads a PostgreSQL connection string from path (what names
// the setting or flag, for errors). A file others may read is refused: it
// holds the database password.
func readDSNFile(what, path string) (string, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o007 != 0 {
		return "", fmt.Errorf("%s %s: want a regular file that others cannot read (chmod o-rwx): it holds the database password", what, path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	dsn := strings.TrimSpace(string(b))
	if dsn == "" || strings.ContainsAny(dsn, "\n\r") {
		return "", fmt.Errorf("%s %s: want one line, the connection string", what, path)
	}
	return dsn, nil
}

// dataStore resolves where a data command reads: --data DIR alone is a
// SQLite database there; otherwise the store of -c FILE (else of
// ./warden.yaml when present), with its data_dir unless --data names
// another (policyAndData); with no policy, ./data.
func dataStore(cfgPath, flagData string) (string, audit.Backend, error) {
	if cfgPath == "" && flagData != "" {
		return flagData, audit.Backend{}, nil
	}
	cfg, dir, err := policyAndData(cfgPath, flagData, false)
	if err != nil || cfg == nil {
		return dir, audit.Backend{}, err
	}
	b, err := storeBackend(cfg)
	return dir, b, err
}

// backendOf is the store a policy configures; without a policy, the
// zero Backend: the SQLite database in the data directory.
func backendOf(cfg *policy.Config) (audit.Backend, error) {
	if cfg == nil {
		return audit.Backend{}, nil
	}
	return storeBackend(cfg)
}

// openExistingStore opens the store of cfg (SQLite in dir without a
// policy) for writing, but never creates a database: a command that finds
// nothing to act on must not leave an empty database (or, on PostgreSQL,
// a migrated schema) behind. It checks through a read-only open first.
func openExistingStore(ctx context.Context, cfg *policy.Config, dir string) (*audit.Store, error) {
	b, err := backendOf(cfg)
	if err != nil {
		return nil, err
	}
	r, err := audit.OpenReader(ctx, dir, b)
	if err != nil {
		return nil, err
	}
	r.Close()
	return audit.Open(ctx, dir, audit.Options{Backend: b})
}

// openCfgReader opens the store of cfg (SQLite in dir without a policy)
// read-only.
func openCfgReader(ctx context.Context, cfg *policy.Config, dir string) (*audit.Reader, error) {
	b, err := backendOf(cfg)
	if err != nil {
		return nil, err
	}
	return audit.OpenReader(ctx, dir, b)
}

// openStoreReader opens the store dataStore names, read-only.
func openStoreReader(cfgPath, flagData string) (*audit.Reader, string, error) {
	dir, b, err := dataStore(cfgPath, flagData)
	if err != nil {
		return nil, "", err
	}
	r, err := audit.OpenReader(context.Background(), dir, b)
	return r, dir, err
}

// storePolicy resolves a writing command's -c and --data as dataStore
// does for readers: --data DIR alone is a SQLite database there (nil
// policy); otherwise the policy of -c FILE (else ./warden.yaml when
// present) with its store, and its data_dir unless --data names another.
func storePolicy(cfgPath, flagData string) (*policy.Config, string, error) {
	if cfgPath == "" && flagData != "" {
		return nil, flagData, nil
	}
	return policyAndData(cfgPath, flagData, false)
}
