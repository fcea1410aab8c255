package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/pgtest"
)

// TestServeSIGTERMWithHungDatabase: the PostgreSQL server of a running
// `warden serve` hangs (every process of it stopped with SIGSTOP: its
// sockets stay open and the kernel acknowledges what is sent, so no error
// ever comes) while alice has a shell open, and the gateway gets SIGTERM.
// Before, the audit writer waited on the server for ever, and with it the
// session's end, the node's heartbeat and the drain: the process never
// exited. Now the live session is told and closed after shutdown_grace,
// the process exits on its own, saying that a row was left open instead
// of claiming every row ended, and once the server runs again the next
// start closes that row as interrupted and `audit verify` passes.
func TestServeSIGTERMWithHungDatabase(t *testing.T) {
	if pg, _ := pgtest.Postgres(); pg {
		t.Skip("brings a PostgreSQL server of its own; runs once, in the SQLite pass")
	}
	b := newFaultBed(t)
	srv, dsn := pgtest.Own(t)
	ctx := context.Background()
	dsnFile := filepath.Join(b.dir, "own-pg.dsn")
	if err := os.WriteFile(dsnFile, []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	storeYAML := "store:\n  driver: postgres\n  dsn_file: " + dsnFile + "\n"
	b.writePolicy(b.policy("[ops]", "shutdown_grace: 3s\n"+storeYAML))
	b.start()
	sh := b.alice.StartPTY(t, b.port, "root@web01", 80, 24)
	sh.Send("echo ready-$((1+1))\r")
	sh.Expect(t, `ready-2`, faultWait)

	if err := srv.Freeze(); err != nil {
		t.Fatal(err)
	}
	if err := b.gw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sh.Expect(t, `warden: gateway restarting; session closed`, faultWait)
	if code, err := sh.Wait(faultWait); err != nil || code != 1 {
		t.Fatalf("the shell closed by the drain: code %d, %v", code, err)
	}
	// The writer's transactions are bounded (15 s each); the process must
	// end by itself. Three minutes is only to end a hung test.
	select {
	case <-b.gw.done:
	case <-time.After(3 * time.Minute):
		_ = b.gw.cmd.Process.Kill()
		t.Fatalf("warden serve still running with its database hung, 3 minutes after SIGTERM\n%s", b.gw.log.String())
	}
	log := b.gw.log.String()
	if !strings.Contains(log, "session rows left open because the store did not take their ends") ||
		strings.Contains(log, "every session row ended") {
		t.Fatalf("the last lines do not say that a row was left open:\n%s", log)
	}

	// The database runs again; the next start closes the row it could not.
	if err := srv.Thaw(); err != nil {
		t.Fatal(err)
	}
	r, err := audit.OpenReader(ctx, b.data, audit.Backend{Driver: audit.DriverPostgres, DSN: dsn})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var id string
	if err := r.DB().QueryRowContext(ctx, `SELECT id FROM sessions WHERE ended_at IS NULL`).Scan(&id); err != nil {
		t.Fatalf("the open row left by the stop: %v", err)
	}
	b.start()
	deadline := time.Now().Add(time.Minute)
	for {
		s, err := r.Session(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !s.EndedAt.IsZero() {
			if s.EndReason != audit.EndInterrupted {
				t.Fatalf("the row left open ended as %q, want %q", s.EndReason, audit.EndInterrupted)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the row left open is still open a minute after the restart\n%s", b.gw.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	verify := filepath.Join(b.dir, "verify.yaml")
	if err := os.WriteFile(verify, []byte("data_dir: "+b.data+"\n"+storeYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := b.warden("audit", "verify", "-c", verify); code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("audit verify: code %d\n%s%s", code, out, errOut)
	}
}
