package audit

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/pgtest"
)

// hungWait only ends a test that hangs; no timing is asserted.
const hungWait = 2 * time.Minute

// appendWithin appends an event from another goroutine and returns its
// error, or fails the test if Append has not returned within hungWait.
func appendWithin(t *testing.T, s *Store, what string) error {
	t.Helper()
	errc := make(chan error, 1)
	go func() { errc <- s.Append(context.Background(), Event{Type: "t", Actor: what}) }()
	select {
	case err := <-errc:
		return err
	case <-time.After(hungWait):
		t.Fatalf("%s: Append still waiting after %v", what, hungWait)
		return nil
	}
}

// TestPostgresWriterGivesUpOnStatementThatHangs: another session holds the
// chain's lock, so the writer's first statement waits on the server. A
// statement inside the writer's transaction runs under the transaction's
// deadline (pgConn.stmtCtx): Append fails instead of waiting for the
// lock's release, and once the lock is gone the store writes again and the
// chain verifies. Before, database/sql ran the statement with
// context.Background() and the writer waited as long as the lock was held.
func TestPostgresWriterGivesUpOnStatementThatHangs(t *testing.T) {
	ctx := context.Background()
	b := Backend{Driver: DriverPostgres, DSN: pgServer.Database(t)}
	dir := t.TempDir()
	s, err := Open(ctx, dir, Options{Backend: b, WriteTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := appendWithin(t, s, "before"); err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("pgx", b.DSN)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	holder, err := raw.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := holder.Exec(`SELECT pg_advisory_xact_lock($1)`, chainLockKey); err != nil {
		t.Fatal(err)
	}
	err = appendWithin(t, s, "while locked")
	if err == nil {
		t.Fatal("Append succeeded while another session held the chain's lock")
	}
	if err := holder.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := appendWithin(t, s, "after"); err != nil {
		t.Fatalf("the store does not write again once the lock is gone: %v", err)
	}
	// The events that failed are not in the chain; the two written are.
	if v, err := s.Verify(ctx, dir); err != nil || v.Events != 2 {
		t.Fatalf("verify: %d events, %v; want the 2 written", v.Events, err)
	}
}

// TestPgDriverConnectsUnderTheCallersContext: database/sql opens the
// store's connections through pgDriver's connector, with the context of
// the call that needs one. Through Open, pgx connects under a context of
// its own (60 s in pgx's stdlib), whatever the writer's deadline: a
// connection already refused by a cancelled context shows the difference.
func TestPgDriverConnectsUnderTheCallersContext(t *testing.T) {
	var d driver.Driver = pgDriver{}
	dc, ok := d.(driver.DriverContext)
	if !ok {
		t.Fatal("pgDriver does not open connectors: database/sql would connect without the caller's context")
	}
	c, err := dc.OpenConnector(pgServer.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if conn, err := c.Connect(ctx); err == nil {
		conn.Close()
		t.Fatal("a connection opened under a cancelled context")
	}
	conn, err := c.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, ok := conn.(*pgConn); !ok {
		t.Fatalf("the connector's connection is %T, not the SQL-translating pgConn", conn)
	}
}

// TestPostgresWriterGivesUpOnFrozenServer: the server's processes are
// stopped (SIGSTOP), so its sockets stay open and nothing answers: neither
// the ping that checks an idle connection nor a new connection's start-up.
// Append fails within the writer's deadline instead of waiting for ever
// (database/sql now connects with the transaction's context, through
// pgDriver.OpenConnector); once the server runs again, so does the store.
func TestPostgresWriterGivesUpOnFrozenServer(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server of its own")
	}
	srv, dsn := pgtest.Own(t)
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(ctx, dir, Options{Backend: Backend{Driver: DriverPostgres, DSN: dsn}, WriteTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := appendWithin(t, s, "before"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Freeze(); err != nil {
		t.Fatal(err)
	}
	// The idle connection is pinged before it is reused (after a second
	// idle), then a new one is tried: both must give up.
	time.Sleep(1100 * time.Millisecond)
	if err := appendWithin(t, s, "frozen"); err == nil {
		t.Fatal("Append succeeded on a frozen server")
	}
	if err := appendWithin(t, s, "still frozen"); err == nil {
		t.Fatal("Append succeeded on a frozen server, second try")
	}
	if err := srv.Thaw(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(hungWait)
	for {
		err := appendWithin(t, s, "after")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store does not write again after the server resumed: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The events that failed are not in the chain; the two written are.
	if v, err := s.Verify(ctx, dir); err != nil || v.Events != 2 {
		t.Fatalf("verify: %d events, %v; want the 2 written", v.Events, err)
	}
}
