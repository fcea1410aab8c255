package cli

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/pgtest"
	"github.com/warden-gw/warden/internal/storetest"
)

// pgServer is this test binary's PostgreSQL server, stopped by TestMain.
var pgServer = &storetest.Server

// pgPolicy writes a policy whose store is PostgreSQL at dsn, and returns
// its path and data directory.
func pgPolicy(t *testing.T, dsn string, mode os.FileMode) (string, string) {
	t.Helper()
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	dsnFile := filepath.Join(dir, "pg.dsn")
	if err := os.WriteFile(dsnFile, []byte(dsn+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dsnFile, mode); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "warden.yaml")
	src := fmt.Sprintf("data_dir: %s\nstore:\n  driver: postgres\n  dsn_file: pg.dsn\n", data)
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg, data
}

// The data commands reach the configured PostgreSQL store with -c: the
// sessions and commands a store wrote there are listed, audit verify
// checks them, and an edit made in the database is caught.
func TestDataCommandsReadThePostgresStore(t *testing.T) {
	dsn := pgServer.Database(t)
	cfg, data := pgPolicy(t, dsn, 0o600)
	ctx := context.Background()
	st, err := audit.Open(ctx, data, audit.Options{Backend: audit.Backend{Driver: audit.DriverPostgres, DSN: dsn}})
	if err != nil {
		t.Fatal(err)
	}
	sess := audit.Session{ID: "pgsess1", User: "alice", Login: "root", Host: "web01", Tenant: "acme"}
	if err := st.StartSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	if err := st.LogCommand(ctx, audit.Command{SessionID: sess.ID, User: "alice", Login: "root", Host: "web01", Tenant: "acme",
		Source: audit.SourceShell, Command: "systemctl restart nginx", Action: "allowed"}); err != nil {
		t.Fatal(err)
	}
	if err := st.EndSession(ctx, sess.ID, audit.SessionEnd{Reason: "exit"}); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := run("sessions", "-c", cfg, "--json")
	if code != 0 || !strings.Contains(out, `"pgsess1"`) {
		t.Fatalf("sessions -c: %d %q %q", code, out, errOut)
	}
	out, errOut, code = run("commands", "-c", cfg)
	if code != 0 || !strings.Contains(out, "systemctl restart nginx") {
		t.Fatalf("commands -c: %d %q %q", code, out, errOut)
	}
	out, errOut, code = run("audit", "verify", "-c", cfg)
	if code != 0 || !strings.Contains(out, "ok: 1 audit events chained; 1 ended sessions, their 1 command rows") {
		t.Fatalf("audit verify -c: %d %q %q", code, out, errOut)
	}
	// --data alone is a SQLite store: there is none in data. (Under the
	// harness switch it is the empty database the switch gives data, still
	// not the store of -c.)
	if _, errOut, code = run("audit", "verify", "--data", data); code == 0 || !strings.Contains(errOut, storetest.NoDatabase()) {
		t.Fatalf("--data alone: %d %q", code, errOut)
	}

	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE commands SET command = 'true'`); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code = run("audit", "verify", "-c", cfg); code == 0 || !strings.Contains(errOut, "differ from the chained digest") {
		t.Fatalf("audit verify after an edit: %d %q", code, errOut)
	}
}

// The DSN holds a password: a DSN file others can read is refused, and a
// refused connection's error never shows the password.
func TestPostgresDSNStaysSecret(t *testing.T) {
	dsn := pgServer.Database(t)
	cfg, _ := pgPolicy(t, dsn, 0o644)
	if _, errOut, code := run("sessions", "-c", cfg); code == 0 || !strings.Contains(errOut, "others cannot read") {
		t.Fatalf("world-readable dsn_file: %d %q", code, errOut)
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	const wrong = "Sup3rSecretWrongPassword"
	u.User = url.UserPassword(pgtest.Role, wrong)
	cfg, _ = pgPolicy(t, u.String(), 0o600)
	out, errOut, code := run("audit", "verify", "-c", cfg)
	if code == 0 || strings.Contains(out+errOut, wrong) || !strings.Contains(errOut, "password authentication failed") {
		t.Fatalf("wrong password: %d %q %q", code, out, errOut)
	}
}
