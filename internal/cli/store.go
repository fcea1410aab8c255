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
	fi, err := os.Stat(cfg.Store.DSNFile)
	if err != nil {
		return audit.Backend{}, fmt.Errorf("store.dsn_file: %w", err)
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o007 != 0 {
		return audit.Backend{}, fmt.Errorf("store.dsn_file %s: want a regular file that others cannot read (chmod o-rwx): it holds the database password", cfg.Store.DSNFile)
	}
	b, err := os.ReadFile(cfg.Store.DSNFile)
	if err != nil {
		return audit.Backend{}, fmt.Errorf("store.dsn_file: %w", err)
	}
	dsn := strings.TrimSpace(string(b))
	if dsn == "" || strings.ContainsAny(dsn, "\n\r") {
		return audit.Backend{}, fmt.Errorf("store.dsn_file %s: want one line, the connection string", cfg.Store.DSNFile)
	}
	return audit.Backend{Driver: audit.DriverPostgres, DSN: dsn}, nil
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

// openStoreReader opens the store dataStore names, read-only.
func openStoreReader(cfgPath, flagData string) (*audit.Reader, string, error) {
	dir, b, err := dataStore(cfgPath, flagData)
	if err != nil {
		return nil, "", err
	}
	r, err := audit.OpenReader(context.Background(), dir, b)
	return r, dir, err
}
