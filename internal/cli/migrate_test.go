package cli

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/s3test"
	"github.com/warden-gw/warden/recorder"
	"github.com/warden-gw/warden/recstore"
)

// seedSQLite writes one ended, recorded session with two commands into a
// SQLite store in data, whichever store the harness runs on.
func seedSQLite(t *testing.T, data string) (id, rel string) {
	t.Helper()
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	st, err := audit.Open(ctx, data, audit.Options{Now: func() time.Time { return now }, Backend: audit.Backend{Driver: audit.DriverSQLite}})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id = "migrateSessionAbcdefghijk"
	w, err := recorder.Create(data, recorder.Header{Width: 80, Height: 24, Warden: recorder.Meta{SessionID: id, User: "alice"}},
		recorder.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	w.Output([]byte("hello from the migrated recording\r\n"))
	sum, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.StartSession(ctx, audit.Session{ID: id, User: "alice", Login: "root", Host: "web01", Tenant: "acme", StartedAt: now, RecordingPath: w.RelPath()}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"uptime", "systemctl restart nginx"} {
		if err := st.LogCommand(ctx, audit.Command{SessionID: id, TS: now, User: "alice", Login: "root", Host: "web01", Tenant: "acme", Source: "shell", Command: c, Action: "allowed"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.EndSession(ctx, id, audit.SessionEnd{EndedAt: now.Add(time.Minute), Reason: "exit", RecordingPath: w.RelPath(), RecordingSHA256: sum}); err != nil {
		t.Fatal(err)
	}
	return id, w.RelPath()
}

func writeDSNFile(t *testing.T, dir, dsn string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(dir, "pg.dsn")
	if err := os.WriteFile(p, []byte(dsn+"\n"), mode); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// warden migrate copies a SQLite store and its recordings (to S3) into
// PostgreSQL; the configured PostgreSQL store then verifies and finds the
// session's screen text; a second run uploads and copies nothing.
func TestMigrateToPostgresWithS3(t *testing.T) {
	srv := s3test.Start(t)
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	id, rel := seedSQLite(t, data)
	dsn := pgServer.Database(t)
	dsnFile := writeDSNFile(t, dir, dsn, 0o600)
	lite := filepath.Join(dir, "sqlite.yaml")
	if err := os.WriteFile(lite, []byte(fmt.Sprintf("data_dir: %s\n%s", data, srv.YAML("recordings/"))), 0o600); err != nil {
		t.Fatal(err)
	}

	out, errOut, code := run("migrate", "--to", "postgres", "--dsn-file", dsnFile, "-c", lite)
	if code != 0 || !strings.Contains(out, "recordings: 1 uploaded to s3, 0 already there") ||
		!strings.Contains(out, "audit verify on postgres: ok: 1 audit events chained; 1 ended sessions, their 2 command rows and 1 recordings match the chain") ||
		!strings.Contains(out, "output index: 1 sessions indexed") {
		t.Fatalf("migrate: %d\n%s\n%s", code, out, errOut)
	}
	key, _ := recstore.Key("recordings/", rel)
	if objs := srv.Objects(key); len(objs) != 1 {
		t.Fatalf("objects after migrate: %v", objs)
	}
	if _, err := os.Stat(filepath.Join(data, rel)); err != nil {
		t.Fatalf("migrate must keep the local recording: %v", err)
	}

	out, errOut, code = run("migrate", "--to", "postgres", "--dsn-file", dsnFile, "-c", lite)
	if code != 0 || !strings.Contains(out, "recordings: 0 uploaded to s3, 1 already there") ||
		!strings.Contains(out, "copied 0 rows (") || !strings.Contains(out, "audit verify on postgres: ok: 1 audit events chained") {
		t.Fatalf("second migrate: %d\n%s\n%s", code, out, errOut)
	}

	// The policy switched to PostgreSQL and S3 reads what was copied.
	pgCfg := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(pgCfg, []byte(fmt.Sprintf("data_dir: %s\nstore:\n  driver: postgres\n  dsn_file: pg.dsn\n%s", data, srv.YAML("recordings/"))), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code = run("audit", "verify", "-c", pgCfg); code != 0 || !strings.Contains(out, "ok: 1 audit events chained") {
		t.Fatalf("audit verify -c postgres: %d %q %q", code, out, errOut)
	}
	if out, errOut, code = run("commands", "-c", pgCfg); code != 0 || !strings.Contains(out, "systemctl restart nginx") {
		t.Fatalf("commands -c postgres: %d %q %q", code, out, errOut)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM session_output_fts WHERE text LIKE '% migrated recording %'`).Scan(&n); err != nil || n == 0 {
		t.Fatalf("output index on postgres: %d %v", n, err)
	}

	// A recording in the bucket that differs from the sealed digest is a
	// conflict: reported, not overwritten.
	if _, err := srv.Client().PutObject(context.Background(), s3test.Bucket, key, strings.NewReader("forged\n"), 7, minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code = run("migrate", "--to", "postgres", "--dsn-file", dsnFile, "-c", lite); code != 1 ||
		!strings.Contains(errOut, "session "+id+": ") || !strings.Contains(errOut, "not overwritten") {
		t.Fatalf("migrate over a forged object: %d %q", code, errOut)
	}
}

// Bad input is one line on stderr and exit status 2, and touches nothing.
func TestMigrateBadInput(t *testing.T) {
	dir := t.TempDir()
	data := filepath.Join(dir, "data")
	seedSQLite(t, data)
	dsn := pgServer.Database(t)
	good := writeDSNFile(t, dir, dsn, 0o600)
	open := filepath.Join(dir, "open.dsn")
	if err := os.WriteFile(open, []byte(dsn), 0o644); err != nil {
		t.Fatal(err)
	}
	os.Chmod(open, 0o644)
	pgCfg := filepath.Join(dir, "pg.yaml")
	if err := os.WriteFile(pgCfg, []byte(fmt.Sprintf("data_dir: %s\nstore:\n  driver: postgres\n  dsn_file: pg.dsn\n", data)), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--dsn-file", good, "--data", data}, "--to postgres is required"},
		{[]string{"--to", "mysql", "--dsn-file", good, "--data", data}, "--to postgres is required"},
		{[]string{"--to", "postgres", "--data", data}, "--dsn-file FILE is required"},
		{[]string{"--to", "postgres", "--dsn-file", filepath.Join(dir, "missing.dsn"), "--data", data}, "no such file"},
		{[]string{"--to", "postgres", "--dsn-file", dir, "--data", data}, "want a regular file"},
		{[]string{"--to", "postgres", "--dsn-file", open, "--data", data}, "others cannot read"},
		{[]string{"--to", "postgres", "--dsn-file", good, "-c", pgCfg}, "store.driver is postgres"},
	} {
		out, errOut, code := run(append([]string{"migrate"}, c.args...)...)
		if code != 2 || !strings.Contains(errOut, c.want) || strings.Count(errOut, "\n") != 1 || strings.Contains(errOut, dsn) {
			t.Errorf("migrate %q: %d %q %q; want exit 2 and %q", c.args, code, out, errOut, c.want)
		}
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var migrated bool
	if err := db.QueryRow(`SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&migrated); err != nil || migrated {
		t.Fatalf("bad input touched the database: %v %v", migrated, err)
	}
}
