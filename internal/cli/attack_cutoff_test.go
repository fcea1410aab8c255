package cli

import (
	"context"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/pgtest"
)

// Attack (a partition that hangs rather than fails): the database stops
// answering without an error, so each heartbeat waits out the writer's
// deadline. The other nodes take this node for dead DeadAfter after its
// last heartbeat and end its rows as interrupted; its own sessions must
// have ended by then (DeadAfter less one period), or they run on a node
// the cluster has written off, their ends already sealed. The cut-off was
// counted from the first failure the node saw, which a hung write reports
// only a write deadline later, so they ran a deadline or two too long.
func TestAttackHungStoreEndsSessionsBeforeTheOthersReap(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL server of its own")
	}
	srv, dsn := pgtest.Own(t)
	ctx := context.Background()
	const every, deadAfter = time.Second, 4 * time.Second
	st, err := audit.Open(ctx, t.TempDir(), audit.Options{Backend: audit.Backend{Driver: audit.DriverPostgres, DSN: dsn},
		NodeID: "gw-hung", WriteTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	me, err := audit.NewSelf("host-hung", deadAfter)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.NodeStarted(ctx, me); err != nil {
		t.Fatal(err)
	}
	var lostAt atomic.Int64
	lost := func() int { lostAt.CompareAndSwap(0, time.Now().UnixNano()); return 1 }
	stop := startNode(ctx, st, me, nil, slog.New(slog.NewTextHandler(testWriter{t}, nil)), every, lost)
	defer stop()
	time.Sleep(3 * every) // heartbeats written
	if lostAt.Load() != 0 {
		t.Fatal("sessions ended while the store answered")
	}
	frozen := time.Now() // the last heartbeat written is no later than this
	if err := srv.Freeze(); err != nil {
		t.Fatal(err)
	}
	defer srv.Thaw()
	// The requirement, not the schedule: the node's sessions end before
	// the others may take it for dead (deadAfter after its last heartbeat,
	// which is no later than frozen). When within that they end is
	// TestCutOffNodeEndsItsSessionsOncePerOutage's, on exact times; a busy
	// machine only delays the watchdog's tick here.
	limit := deadAfter
	for lostAt.Load() == 0 && time.Since(frozen) < 3*limit {
		time.Sleep(50 * time.Millisecond)
	}
	at := lostAt.Load()
	if at == 0 {
		t.Fatalf("sessions not ended %s after the store hung; the others reap %s after the last heartbeat", 3*limit, deadAfter)
	}
	if d := time.Duration(at - frozen.UnixNano()); d > limit {
		t.Fatalf("sessions ended %s after the store hung; the others may reap from %s after the last heartbeat", d.Round(100*time.Millisecond), deadAfter)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }
