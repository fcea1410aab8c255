package gateway

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/warden-gw/warden/audit"
)

// Session ends the store could not take. When the database is unreachable
// (PostgreSQL restarting, a network cut), a session that ends cannot close
// its row; before, the row stayed open and the recording unsealed until
// the node restarted, and on a cluster a survivor could take the row for
// a dead node's. The end, as it happened (time, reason, bytes, the
// recording's SHA-256), is kept and written again until the store takes
// it, so the session.end event is the one the session would have had, only
// later. Nothing is written twice: EndSession refuses a row that already
// ended (audit.ErrEnded), and that, an unknown row or an invalid value,
// ends the retries. Ends still pending when the gateway stops are closed
// by the next start's CloseOrphans as interrupted, with the spool's digest.

// endRetryEvery is how often pending ends are written again.
const endRetryEvery = 2 * time.Second

// endWriter writes one session end (audit.Store.EndSession).
type endWriter func(ctx context.Context, id string, end audit.SessionEnd) error

type pendingEnd struct {
	end  audit.SessionEnd
	done func(sealed bool) // told once: the end was written (true) or given up (false)
}

// endRetrier holds the ends waiting for the store. Its loop runs while the
// gateway serves (Server.Serve).
type endRetrier struct {
	write endWriter
	log   *slog.Logger
	every time.Duration

	mu      sync.Mutex
	pending map[string]pendingEnd
	wake    chan struct{}
}

func newEndRetrier(write endWriter, log *slog.Logger) *endRetrier {
	return &endRetrier{write: write, log: log, every: endRetryEvery, pending: map[string]pendingEnd{}, wake: make(chan struct{}, 1)}
}

// retriable reports whether a failed EndSession may succeed later: the
// store was unreachable or busy, not the end refused for what it says.
func retriable(err error) bool {
	return !errors.Is(err, audit.ErrEnded) && !errors.Is(err, audit.ErrNotFound) && !errors.Is(err, audit.ErrInvalid)
}

// add queues the end of session id; done is called once when it is
// written or given up.
func (r *endRetrier) add(id string, end audit.SessionEnd, done func(sealed bool)) {
	r.mu.Lock()
	r.pending[id] = pendingEnd{end: end, done: done}
	r.mu.Unlock()
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// UnclosedRows reports how many sessions ended without their row closed:
// the store did not take the end, and the retries had not got it in yet.
// After Serve returned, the next start's CloseOrphans closes those rows as
// interrupted.
func (s *Server) UnclosedRows() int { return s.ends.len() }

// len reports how many ends wait.
func (r *endRetrier) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// run writes the pending ends every r.every until ctx ends.
func (r *endRetrier) run(ctx context.Context) {
	t := time.NewTicker(r.every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-r.wake:
			continue // a new end: its first retry waits for the tick
		case <-t.C:
		}
		r.pass(ctx)
	}
}

// pass tries each pending end once.
func (r *endRetrier) pass(ctx context.Context) {
	r.mu.Lock()
	batch := make(map[string]pendingEnd, len(r.pending))
	for id, p := range r.pending {
		batch[id] = p
	}
	r.mu.Unlock()
	for id, p := range batch {
		if ctx.Err() != nil {
			return
		}
		err := r.write(ctx, id, p.end)
		if err != nil && retriable(err) {
			continue // still unreachable: next tick
		}
		r.mu.Lock()
		delete(r.pending, id)
		r.mu.Unlock()
		if err != nil {
			r.log.Error("session end given up", "session", id, "err", err)
			p.done(false)
			continue
		}
		r.log.Info("session row closed after the store came back", "session", id, "ended_at", p.end.EndedAt)
		p.done(true)
	}
}
