package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

const (
	// writeTxTimeout bounds one batch's transaction on PostgreSQL (commitTx).
	// A batch is at most maxBatch small writes that take milliseconds; the
	// bound is for a server that stopped answering, and matches the 15 s
	// after which a node cut off from its store ends its sessions.
	writeTxTimeout = 15 * time.Second
	// queueSize is how many writes may wait for the writer before callers
	// block in the queue.
	queueSize = 1024
	// maxBatch bounds one transaction, so a burst cannot hold the write
	// lock (and delay other callers' answers) for long.
	maxBatch = 256
)

// opFunc performs one write inside the writer's transaction. tip is the
// writer's chain head; only Append moves it.
type opFunc func(tx *sql.Tx, tip *chainTip) error

// op is one queued write. done receives exactly one value: nil once the
// write is committed, or the reason it is not.
type op struct {
	fn   opFunc
	done chan error
}

// write queues fn and waits for its outcome. ctx bounds only the wait for a
// place in the queue: once queued, a write is always carried out and its
// outcome reported, so nil means committed and an error means not written.
// A cancelled session context therefore cannot lose its session.end record
// half-way, and the gateway can fail closed on any error.
func (s *Store) write(ctx context.Context, fn opFunc) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("audit: write not queued: %w", err)
	}
	o := &op{fn: fn, done: make(chan error, 1)}
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	select {
	case s.ops <- o:
		s.mu.RUnlock()
	case <-ctx.Done():
		s.mu.RUnlock()
		return fmt.Errorf("audit: write not queued: %w", ctx.Err())
	}
	return <-o.done
}

// run is the writer goroutine. It takes whatever is queued, up to maxBatch
// writes, and commits them in one transaction, until Close closes the queue
// and the queue is empty.
func (s *Store) run() {
	defer close(s.done)
	batch := make([]*op, 0, maxBatch)
	for first := range s.ops {
		batch = append(batch[:0], first)
	drain:
		for len(batch) < maxBatch {
			select {
			case o, ok := <-s.ops:
				if !ok {
					break drain
				}
				batch = append(batch, o)
			default:
				break drain
			}
		}
		s.commit(batch)
	}
}

// commit runs a batch in one transaction. Each write runs under its own
// savepoint, so one refused write (a duplicate ID, a failed constraint) is
// rolled back alone and the others still commit.
func (s *Store) commit(batch []*op) {
	results := make([]error, len(batch))
	start := s.tip
	err := s.commitTx(batch, results)
	if err != nil {
		// Nothing of the batch is stored: the chain head goes back to
		// where it was, and every write not already refused is told why.
		s.tip = start
		for i := range results {
			if results[i] == nil {
				results[i] = err
			}
		}
	}
	for i, o := range batch {
		o.done <- results[i]
	}
}

// commitTx fills results with per-write errors and returns an error that
// applies to the whole batch.
func (s *Store) commitTx(batch []*op, results []error) error {
	ctx := context.Background() // the writer answers to no single caller
	if s.d.postgres {
		// A server that hangs with its sockets open (a stuck disk, a
		// frozen host) returns no error, ever: without a deadline the
		// writer, and every session end, heartbeat and event queued behind
		// it, waited for good, and SIGTERM never finished. With one, the
		// batch fails, its writers fail closed as on any store error, and
		// a node's heartbeat fails too, so that its cut-off ends its
		// sessions (pgConn runs the statements under this context).
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, s.txTimeout)
		defer cancel()
	}
	tx, err := s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("audit: begin: %w", err)
	}
	// Another process (warden exceptions add, reconcile --apply) may have
	// appended events since our last batch. BEGIN IMMEDIATE holds the write
	// lock now, so the head read here is the one we chain onto.
	if s.d.postgres {
		// Several nodes write this database, so the head cached by this
		// process proves nothing: the lock serialises every node's
		// transaction, and the head is read again under it. Held until
		// commit or rollback.
		if _, err := tx.Exec(`SELECT pg_advisory_xact_lock(?)`, chainLockKey); err != nil {
			return errors.Join(fmt.Errorf("audit: lock chain: %w", err), tx.Rollback())
		}
	}
	tip, err := loadTipTx(tx)
	if err != nil {
		return errors.Join(err, tx.Rollback())
	}
	s.tip = tip
	for i, o := range batch {
		if _, err := tx.Exec("SAVEPOINT op"); err != nil {
			return errors.Join(fmt.Errorf("audit: savepoint: %w", err), tx.Rollback())
		}
		saved := s.tip
		if err := o.fn(tx, &s.tip); err != nil {
			results[i] = err
			s.tip = saved
			if _, err := tx.Exec("ROLLBACK TO op"); err != nil {
				return errors.Join(fmt.Errorf("audit: rollback to savepoint: %w", err), tx.Rollback())
			}
		}
		if _, err := tx.Exec("RELEASE op"); err != nil {
			return errors.Join(fmt.Errorf("audit: release savepoint: %w", err), tx.Rollback())
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("audit: commit: %w", err)
	}
	return nil
}
