package cluster

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgxlisten"
)

// The listening connection, driven by pgxlisten in one goroutine.
//
// pgxlisten LISTENs the channels it has handlers for when it connects, and
// its handlers run in its goroutine with the connection at hand. The bus
// registers one handler up front, for its control channel, and uses it for
// everything that must happen on the connection:
//
//   - after each connection, the control handler's backlog hook sends
//     "connect" to the control channel from the connection itself; it
//     arrives after pgxlisten has LISTENed every channel, and its handler
//     then LISTENs the subscribed topics not yet listened to, UNLISTENs the
//     ones nobody wants any more, and queues the resyncs;
//   - a Subscribe to a new topic sends "sync" to the control channel from
//     the pool, and the handler LISTENs the topic and wakes the Subscribe.
//
// So the handler table and the LISTENs change only in pgxlisten's
// goroutine, which pgxlisten requires. The table keeps an entry per topic
// ever subscribed (a few bytes each); PostgreSQL stops sending a topic once
// it is UNLISTENed.

// connectListener is pgxlisten's Connect: it waits out the backoff after a
// lost or failed connection, then opens a new one.
func (p *Postgres) connectListener(ctx context.Context) (*pgx.Conn, error) {
	p.mu.Lock()
	wasUp, fails, first := p.connected, p.fails, !p.tried
	p.connected, p.tried = false, true
	p.listened = map[string]bool{}
	p.fails++
	p.mu.Unlock()
	if wasUp {
		p.log.Warn("cluster: lost the listening connection; reconnecting (messages sent meanwhile are missed; subscribers resync)")
	}
	if !first {
		select {
		case <-time.After(backoff(fails)):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	conn, err := pgx.ConnectConfig(ctx, p.cfg.Copy())
	if err != nil {
		return nil, p.redact(err)
	}
	return conn, nil
}

// backoff is the wait before a reconnection after fails failures in a row.
func backoff(fails int) time.Duration {
	d := reconnectMin
	for i := 0; i < fails && d < reconnectMax; i++ {
		d *= 2
	}
	return min(d, reconnectMax)
}

// logListenError logs the listener's errors: the first few of an outage,
// then one in thirty, so a long one does not flood the log.
func (p *Postgres) logListenError(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return // closing
	}
	p.mu.Lock()
	fails := p.fails
	p.mu.Unlock()
	if fails <= 3 || fails%30 == 0 {
		p.log.Warn("cluster: listening connection", "err", p.redact(err), "failures", fails)
	}
}

// ctlHandler handles the bus's control channel.
type ctlHandler struct{ p *Postgres }

// HandleBacklog runs right after each connection: it asks for the setup to
// run once pgxlisten has LISTENed all its channels (see above).
func (h ctlHandler) HandleBacklog(ctx context.Context, _ string, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, `SELECT pg_notify($1, 'connect')`, h.p.ctl); err != nil {
		conn.Close(ctx) // without the setup this connection is useless: start again
		return fmt.Errorf("start listening: %w", h.p.redact(err))
	}
	return nil
}

// HandleNotification sets up a new connection ("connect") or LISTENs
// newly subscribed topics ("sync").
func (h ctlHandler) HandleNotification(ctx context.Context, n *pgconn.Notification, conn *pgx.Conn) error {
	p := h.p
	connect := n.Payload == "connect"
	if connect {
		// pgxlisten LISTENed every channel it has a handler for.
		p.mu.Lock()
		p.listened = maps.Clone(p.handled)
		p.mu.Unlock()
	}
	if err := p.reconcile(ctx, conn); err != nil {
		conn.Close(ctx)
		return fmt.Errorf("listen: %w", p.redact(err))
	}
	if !connect {
		return nil
	}
	p.mu.Lock()
	again := p.everUp
	p.everUp, p.connected, p.fails = true, true, 0
	p.mu.Unlock()
	p.enqueue(message{resync: true}) // every (re)connection, the first included
	if again {
		p.log.Info("cluster: listening again; subscribers resync")
	} else {
		close(p.up)
	}
	return nil
}

// reconcile makes the connection LISTEN exactly the subscribed topics and
// wakes the Subscribe calls waiting for theirs.
func (p *Postgres) reconcile(ctx context.Context, conn *pgx.Conn) error {
	p.mu.Lock()
	var add []string
	for topic := range p.subs {
		if ch := channelPrefix + topic; !p.listened[ch] {
			add = append(add, ch)
		}
	}
	p.mu.Unlock()
	for _, ch := range add {
		if !p.handled[ch] {
			p.ln.Handle(ch, pgxlisten.HandlerFunc(p.dispatch))
			p.handled[ch] = true
		}
		if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
		p.mu.Lock()
		p.listened[ch] = true
		p.mu.Unlock()
	}
	// A topic is dropped from listened under the lock that Subscribe
	// holds, so a Subscribe either keeps it or sees it gone and asks again.
	p.mu.Lock()
	var drop []string
	for ch := range p.listened {
		if ch != p.ctl && p.subs[strings.TrimPrefix(ch, channelPrefix)] == nil {
			drop = append(drop, ch)
			delete(p.listened, ch)
		}
	}
	for ch, ws := range p.waiters {
		if p.listened[ch] {
			for _, w := range ws {
				close(w)
			}
			delete(p.waiters, ch)
		}
	}
	p.mu.Unlock()
	for _, ch := range drop {
		if _, err := conn.Exec(ctx, "UNLISTEN "+pgx.Identifier{ch}.Sanitize()); err != nil {
			return err
		}
	}
	return nil
}

// dispatch queues a topic's notification for the delivery goroutine, so
// that a slow subscriber never holds up the connection.
//
// With a key, a message that does not authenticate is dropped here, before
// it takes room in the queue: a flood of forged ones must not push out the
// nodes' own (sign.go).
func (p *Postgres) dispatch(_ context.Context, n *pgconn.Notification, _ *pgx.Conn) error {
	topic := strings.TrimPrefix(n.Channel, channelPrefix)
	payload := []byte(n.Payload)
	if p.sealer != nil {
		var err error
		if payload, err = p.sealer.open(topic, n.Payload); err != nil {
			p.log.Warn("cluster: message dropped", "topic", topic, "bytes", len(n.Payload), "err", err)
			return nil
		}
	}
	p.enqueue(message{topic: topic, payload: payload})
	return nil
}
