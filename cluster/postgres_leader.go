package cluster

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Leadership on PostgreSQL: a session-level advisory lock per job name,
// held on a connection of its own. PostgreSQL releases the lock when that
// session ends, however it ends: a clean stop unlocks at once, a node
// killed with -9 or cut off loses it when the server sees its connection
// close, and a server restart drops every session. A node that does not
// lead tries again every Options.LeaderRetry, so a survivor takes over
// within about that long after the server let the lock go.
//
// A leader watches its connection: a session the server ends is noticed
// at once, a silent link by a ping after LeaderRetry of quiet. Either way
// it ends its job's context, but the lock went with the session, so a
// successor may start before the old job has returned (or, on a silent
// link, up to the ping's timeout earlier). The jobs led this way (grant
// and request expiry, the monthly evidence) re-read their rows in the
// store's serialised writer and do nothing when another did the work, so
// an overlap repeats no event. A clean hand-over (ctx ends, Close) has no
// overlap: the lock is released only after the job has returned.

// LeaderKey is the advisory lock key of the job name: the first 8 bytes
// of SHA-256("warden leader " + name), big-endian, as a signed 64-bit
// integer (the single-bigint form of pg_try_advisory_lock). The store's
// own transaction locks use two fixed keys (package audit); a collision
// with them is a 2^-63 chance, and would only make a writer wait.
func LeaderKey(name string) int64 {
	sum := sha256.Sum256([]byte("warden leader " + name))
	return int64(binary.BigEndian.Uint64(sum[:8]))
}

// Lead implements Leader. It returns when ctx ends or the bus is closed.
// fn must return when its context ends: the lock is released only then,
// so that two nodes' jobs never overlap through this node's doing.
func (p *Postgres) Lead(ctx context.Context, name string, fn func(ctx context.Context)) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.wg.Add(1) // Close waits for the term to end
	p.mu.Unlock()
	defer p.wg.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(p.ctx, cancel)()

	key := LeaderKey(name)
	var conn *pgx.Conn
	closeConn := func() {
		if conn != nil {
			cctx, c := context.WithTimeout(context.Background(), 5*time.Second)
			conn.Close(cctx)
			c()
			conn = nil
		}
	}
	defer closeConn()
	fails := 0
	for ctx.Err() == nil {
		var err error
		if conn == nil {
			cfg := p.cfg.Copy()
			cfg.RuntimeParams["application_name"] = "warden leader " + name
			conn, err = pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				conn = nil
			} else {
				p.serverKeepalives(ctx, conn, name)
			}
		}
		var got bool
		if err == nil {
			tctx, c := context.WithTimeout(ctx, p.pingTimeout())
			err = conn.QueryRow(tctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&got)
			c()
		}
		switch {
		case ctx.Err() != nil:
		case err != nil:
			closeConn()
			if fails++; fails <= 3 || fails%30 == 0 {
				p.log.Warn("cluster: cannot try for the lead", "job", name, "err", p.redact(err), "failures", fails)
			}
		case got:
			fails = 0
			p.term(ctx, conn, name, key, fn)
			closeConn() // a failed connection cannot be reused; a clean stop ends here
		default:
			fails = 0
		}
		select {
		case <-ctx.Done():
		case <-time.After(p.retry):
		}
	}
}

// serverKeepalives asks the server to probe this connection after 5 s of
// silence, every 2 s, 3 times: a leader whose machine died without closing
// its connection (power loss, a cut link) then loses the lock within about
// 15 s, instead of the system default of two hours. A server that refuses
// is logged, and leadership still works, only slower to move in that case.
func (p *Postgres) serverKeepalives(ctx context.Context, conn *pgx.Conn, name string) {
	_, err := conn.Exec(ctx, `SELECT set_config('tcp_keepalives_idle', '5', false),
		set_config('tcp_keepalives_interval', '2', false), set_config('tcp_keepalives_count', '3', false)`)
	if err != nil && ctx.Err() == nil {
		p.log.Warn("cluster: server keepalives not set on the leader connection", "job", name, "err", p.redact(err))
	}
}

// pingTimeout bounds a leadership query: long enough not to lose the lead
// to a slow moment, short enough to notice a dead link.
func (p *Postgres) pingTimeout() time.Duration {
	return max(3*p.retry, 5*time.Second)
}

// term runs fn while this node holds the lock on conn: until ctx ends or
// the connection fails. It waits for fn to return, then unlocks.
//
// Between checks it waits for anything from the server on the connection,
// so a session the server ends (a restart, pg_terminate_backend, a server
// crash) ends the term at once; after a quiet interval it pings, which
// finds a link gone silent. Neither query uses ctx: pgx closes a
// connection whose query's context ends, and that would let the lock go
// while fn still runs. A wait's context may end: pgx keeps the connection.
func (p *Postgres) term(ctx context.Context, conn *pgx.Conn, name string, key int64, fn func(context.Context)) {
	p.log.Info("cluster: leading", "job", name)
	tctx, end := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn(tctx)
	}()
	for {
		wctx, c := context.WithTimeout(ctx, p.retry)
		_, err := conn.WaitForNotification(wctx)
		c()
		if ctx.Err() != nil {
			break
		}
		if err == nil {
			continue // a notification: this connection listens to nothing
		}
		if !pgconn.Timeout(err) {
			p.log.Warn("cluster: lost the lead: its connection failed", "job", name, "err", p.redact(err))
			break
		}
		pctx, c := context.WithTimeout(context.Background(), p.pingTimeout())
		err = conn.Ping(pctx)
		c()
		if err != nil {
			p.log.Warn("cluster: lost the lead: its connection failed", "job", name, "err", p.redact(err))
			break
		}
	}
	end()
	<-done
	if !conn.IsClosed() {
		// Unlocked explicitly so that a successor need not wait for the
		// connection to close.
		uctx, c := context.WithTimeout(context.Background(), 5*time.Second)
		conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, key)
		c()
	}
	p.log.Info("cluster: no longer leading", "job", name)
}
