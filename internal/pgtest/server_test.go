package pgtest

import (
	"context"
	"database/sql"
	"os"
	"strings"
	"testing"
)

var shared Shared

func TestMain(m *testing.M) {
	code := m.Run()
	if err := shared.Stop(); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		code = 1
	}
	os.Exit(code)
}

// Each database is fresh and reachable as the non-superuser role over
// TCP with its password; a wrong password is refused.
func TestDatabasesAreFreshAndPasswordProtected(t *testing.T) {
	ctx := context.Background()
	a, b := shared.Database(t), shared.Database(t)
	if a == b {
		t.Fatalf("two databases share a DSN: %s", a)
	}
	dba, err := sql.Open("pgx", a)
	if err != nil {
		t.Fatal(err)
	}
	defer dba.Close()
	if _, err := dba.ExecContext(ctx, `CREATE TABLE t (x int)`); err != nil {
		t.Fatal(err)
	}
	var super bool
	var ver string
	if err := dba.QueryRowContext(ctx, `SELECT rolsuper, current_setting('server_version') FROM pg_roles WHERE rolname = current_user`).Scan(&super, &ver); err != nil {
		t.Fatal(err)
	}
	if super || !strings.HasPrefix(ver, "15") {
		t.Fatalf("superuser %v, version %s: want a plain role on 15", super, ver)
	}
	dbb, err := sql.Open("pgx", b)
	if err != nil {
		t.Fatal(err)
	}
	defer dbb.Close()
	var n int
	if err := dbb.QueryRowContext(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 't'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("second database sees %d tables named t (err %v): want a fresh one", n, err)
	}
	wrong := strings.Replace(b, "warden:", "warden:x", 1)
	bad, _ := sql.Open("pgx", wrong)
	defer bad.Close()
	if err := bad.PingContext(ctx); err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("wrong password: %v, want a password failure", err)
	}
}

// A restarted server keeps its data and its port, so DSNs handed out
// before work again; while it is halted, connections are refused.
func TestRestartKeepsDataAndPort(t *testing.T) {
	srv, err := Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Stop() })
	ctx := context.Background()
	dsn, err := srv.CreateDatabase(ctx)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `CREATE TABLE kept (x int); INSERT INTO kept VALUES (42)`); err != nil {
		t.Fatal(err)
	}
	port := srv.Port()
	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	fresh, _ := sql.Open("pgx", dsn)
	defer fresh.Close()
	if err := fresh.PingContext(ctx); err == nil {
		t.Fatal("connected to a halted server")
	}
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	var x int
	if err := fresh.QueryRowContext(ctx, `SELECT x FROM kept`).Scan(&x); err != nil || x != 42 || srv.Port() != port {
		t.Fatalf("after restart: x=%d err=%v port %d (was %d)", x, err, srv.Port(), port)
	}
}
