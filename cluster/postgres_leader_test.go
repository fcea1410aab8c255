package cluster

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// leaderRetry is short in tests so that takeovers are quick.
const leaderRetry = 200 * time.Millisecond

// contenders runs Lead(name) on each bus. Each term sends the bus's index
// on terms and counts itself in active while its job runs, including
// stopDelay after its context ends (a job that takes time to stop: no
// successor may start meanwhile); most is the highest count seen. ended
// receives the index of each job whose context ended.
type contenders struct {
	terms  chan int
	ended  chan int
	active atomic.Int32
	most   atomic.Int32
	wg     sync.WaitGroup
}

func lead(ctx context.Context, buses []*Postgres, name string, stopDelay time.Duration) *contenders {
	c := &contenders{terms: make(chan int, 100), ended: make(chan int, 100)}
	for i, b := range buses {
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			b.Lead(ctx, name, func(ctx context.Context) {
				n := c.active.Add(1)
				for m := c.most.Load(); n > m && !c.most.CompareAndSwap(m, n); m = c.most.Load() {
				}
				c.terms <- i
				<-ctx.Done()
				c.ended <- i
				time.Sleep(stopDelay)
				c.active.Add(-1)
			})
		}()
	}
	return c
}

// next waits for the next term; the 30 s is a hang guard.
func (c *contenders) next(t *testing.T) int {
	t.Helper()
	select {
	case i := <-c.terms:
		return i
	case <-time.After(30 * time.Second):
		t.Fatal("nobody took the lead")
		return -1
	}
}

// Of three nodes exactly one leads at a time; when the leader goes (its
// bus closes, as in a clean stop) another takes over, and then the last.
func TestPostgresLeadOneAtATime(t *testing.T) {
	dsn := pg.Database(t)
	buses := []*Postgres{openBus(t, dsn, nil, leaderRetry), openBus(t, dsn, nil, leaderRetry), openBus(t, dsn, nil, leaderRetry)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := lead(ctx, buses, "jit", 100*time.Millisecond)
	seen := map[int]bool{}
	for range 3 {
		i := c.next(t)
		if seen[i] {
			t.Fatalf("node %d led twice though it was closed", i)
		}
		seen[i] = true
		select {
		case j := <-c.terms:
			t.Fatalf("node %d took the lead while node %d held it", j, i)
		case <-time.After(5 * leaderRetry):
		}
		start := time.Now()
		buses[i].Close() // returns once its job has returned and it let go
		t.Logf("node %d closed after %v", i, time.Since(start))
	}
	cancel()
	c.wg.Wait()
	if m := c.most.Load(); m != 1 {
		t.Fatalf("%d jobs ran at once", m)
	}
}

// A leader whose connection dies (killed from the server's side, as when
// PostgreSQL restarts or drops it) ends its job's context at once, and the
// lead is taken again. The lock went with the session, so a successor may
// start before the old job has returned: the jobs led are idempotent
// (postgres_leader.go); this test only logs the order.
func TestPostgresLeaderLosesTheLeadWithItsConnection(t *testing.T) {
	dsn := pg.Database(t)
	buses := []*Postgres{openBus(t, dsn, nil, leaderRetry), openBus(t, dsn, nil, leaderRetry)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := lead(ctx, buses, "evidence", 0)
	first := c.next(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(a.pid)) FROM pg_stat_activity a
		JOIN pg_locks l ON l.pid = a.pid AND l.locktype = 'advisory' AND l.granted
		WHERE a.application_name = 'warden leader evidence'`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminated %d leader connections (%v), want 1", n, err)
	}
	start := time.Now()
	select {
	case i := <-c.ended:
		if i != first {
			t.Fatalf("node %d's job ended, want the leader %d's", i, first)
		}
		t.Logf("node %d's job context ended %v after its connection was killed", i, time.Since(start))
	case <-time.After(30 * time.Second): // a hang guard
		t.Fatal("the leader's job went on after its connection died")
	}
	next := c.next(t)
	t.Logf("node %d took the lead %v after", next, time.Since(start))
	cancel()
	c.wg.Wait()
}

// A job that returns early leaves its node the leader: nobody else leads
// and the job is not called again in that term. Lead returns when its
// context ends.
func TestPostgresLeaderWhoseJobReturnsStaysLeader(t *testing.T) {
	dsn := pg.Database(t)
	a, b := openBus(t, dsn, nil, leaderRetry), openBus(t, dsn, nil, leaderRetry)
	ctx, cancel := context.WithCancel(context.Background())
	var calls atomic.Int32
	returned := make(chan struct{})
	go func() {
		a.Lead(ctx, "jit", func(context.Context) { calls.Add(1) })
		close(returned)
	}()
	for calls.Load() == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	bctx, bcancel := context.WithCancel(context.Background())
	defer bcancel()
	c := lead(bctx, []*Postgres{b}, "jit", 0)
	select {
	case <-c.terms:
		t.Fatal("b took the lead from a leader whose job had returned")
	case <-time.After(5 * leaderRetry):
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("job called %d times in one term", n)
	}
	cancel()
	select {
	case <-returned:
	case <-time.After(30 * time.Second):
		t.Fatal("Lead did not return when its context ended")
	}
	c.next(t) // a let go: b leads
	bcancel()
	c.wg.Wait()
}
