package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
)

// The commands that write or list workflow data (exceptions add, close and
// list, requests, grants, identities, reconcile) reach the store the
// policy configures. With store.driver postgres, an exception written to a
// SQLite file in data_dir would be one that no node, auditor or evidence
// packet ever sees: every write lands in PostgreSQL, and no SQLite
// database is created.
func TestWorkflowCommandsUseTheConfiguredStore(t *testing.T) {
	dsn := pgServer.Database(t)
	data := t.TempDir()
	cfg := govPolicy(t, data)
	if err := os.WriteFile(filepath.Join(filepath.Dir(cfg), "pg.dsn"), []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(cfg, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("store:\n  driver: postgres\n  dsn_file: pg.dsn\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	// The gateway would have made the schema; so does this.
	st, err := audit.Open(context.Background(), data, audit.Options{Backend: audit.Backend{Driver: audit.DriverPostgres, DSN: dsn}})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	expires := time.Now().UTC().AddDate(0, 1, 0).Format(time.DateOnly)
	out, errOut, code := run("exceptions", "add", "-c", cfg, "--tenant", "acme", "--owner", "alice", "--by", "carol",
		"--reason", "legacy agent", "--controls", "allow-list", "--expires", expires)
	if code != 0 || out != "1\n" {
		t.Fatalf("exceptions add: %d %q %q", code, out, errOut)
	}
	out, errOut, code = run("exceptions", "-c", cfg, "--json")
	var list []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0]["owner"] != "alice" {
		t.Fatalf("exceptions -c: %d %q %q", code, out, errOut)
	}
	if out, errOut, code = run("exceptions", "close", "1", "--note", "done", "--by", "carol", "-c", cfg); code != 0 ||
		!strings.HasPrefix(out, "exception 1 closed at ") {
		t.Fatalf("exceptions close -c: %d %q %q", code, out, errOut)
	}
	for _, cmd := range [][]string{{"requests"}, {"grants"}, {"identities"}} {
		out, errOut, code := run(append(cmd, "-c", cfg, "--json")...)
		if code != 0 || !json.Valid([]byte(out)) {
			t.Fatalf("%s -c: %d %q %q", cmd[0], code, out, errOut)
		}
	}
	if out, errOut, code = run("reconcile", "-c", cfg, "--json"); code != 0 || !json.Valid([]byte(out)) {
		t.Fatalf("reconcile -c: %d %q %q", code, out, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "warden.db")); !os.IsNotExist(err) {
		t.Fatalf("a SQLite database was created beside the PostgreSQL store: %v", err)
	}
	// What was written is in PostgreSQL, in the chain, and verifies.
	out, errOut, code = run("audit", "verify", "-c", cfg)
	if code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify -c: %d %q %q", code, out, errOut)
	}
	r, err := audit.OpenReader(context.Background(), data, audit.Backend{Driver: audit.DriverPostgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var n int
	if err := r.DB().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE type LIKE 'exception.%'`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("exception events in PostgreSQL: %d %v", n, err)
	}
}

// exceptions close never creates a database to find an ID missing from it,
// on either store.
func TestExceptionsCloseCreatesNoDatabase(t *testing.T) {
	data := t.TempDir()
	_, errOut, code := run("exceptions", "close", "1", "--note", "x", "--by", "carol", "--data", data)
	if code == 0 || errOut == "" {
		t.Fatalf("close on no database: %d %q", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(data, "warden.db")); !os.IsNotExist(err) {
		t.Fatalf("a database was created: %v", err)
	}
}
