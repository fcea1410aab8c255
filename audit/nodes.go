package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Nodes: several gateways on one store (issue 12, CONTRACT §8). Each node
// keeps a row in the nodes table with a heartbeat; a node whose heartbeat
// is older than a timeout is taken for dead, and a survivor ends its open
// sessions as EndInterrupted with CloseOrphans' logic (ReapDeadNodes).

// NodeStarted records that this node (Options.NodeID) starts serving:
// started_at and heartbeat_at now, stopped_at cleared.
func (s *Store) NodeStarted(ctx context.Context) error {
	return s.nodeWrite(ctx, "start", `INSERT INTO nodes (id, started_at, heartbeat_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, stopped_at = NULL`, 3)
}

// Heartbeat sets this node's heartbeat_at to now (and makes its row if
// missing, e.g. after someone deleted it).
func (s *Store) Heartbeat(ctx context.Context) error {
	return s.nodeWrite(ctx, "heartbeat", `INSERT INTO nodes (id, started_at, heartbeat_at) VALUES (?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stopped_at = NULL`, 3)
}

// NodeStopped records a clean exit: heartbeat_at and stopped_at now. A
// node that stopped cleanly ended its sessions, so ReapDeadNodes finds
// nothing of it to reap.
func (s *Store) NodeStopped(ctx context.Context) error {
	return s.nodeWrite(ctx, "stop", `UPDATE nodes SET heartbeat_at = ?, stopped_at = ? WHERE id = ?`, -1)
}

// nodeWrite runs one statement on this node's row. nargs 3 is (id, now,
// now); -1 is (now, now, id).
func (s *Store) nodeWrite(ctx context.Context, what, stmt string, nargs int) error {
	if s.node == "" {
		return invalidf("node %s: the store has no node ID", what)
	}
	now, err := formatTime(s.now())
	if err != nil {
		return err
	}
	args := []any{s.node, now, now}
	if nargs < 0 {
		args = []any{now, now, s.node}
	}
	return s.write(ctx, func(tx *sql.Tx, _ *chainTip) error {
		if _, err := tx.Exec(stmt, args...); err != nil {
			return fmt.Errorf("audit: node %s %s: %w", s.node, what, err)
		}
		return nil
	})
}

// Node is a row of the nodes table.
type Node struct {
	ID                   string
	StartedAt, Heartbeat time.Time
	StoppedAt            time.Time // zero: not stopped cleanly (running, or died)
}

// Nodes lists the nodes table, by ID.
func (r *Reader) Nodes(ctx context.Context) ([]Node, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT id, started_at, heartbeat_at, stopped_at FROM nodes ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("audit: nodes: %w", err)
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		var n Node
		var started, beat string
		var stopped sql.NullString
		if err := rows.Scan(&n.ID, &started, &beat, &stopped); err != nil {
			return nil, fmt.Errorf("audit: nodes: %w", err)
		}
		if n.StartedAt, err = parseTime(started); err == nil {
			if n.Heartbeat, err = parseTime(beat); err == nil {
				n.StoppedAt, err = parseNullTime(stopped)
			}
		}
		if err != nil {
			return nil, fmt.Errorf("audit: node %s: %w", n.ID, err)
		}
		out = append(out, n)
	}
	return out, rows.Err()
}

// ReapDeadNodes ends, as EndInterrupted, the open sessions of every other
// node whose heartbeat is older than timeout: their node died (a node that
// stopped cleanly ended its sessions first). Each such session is closed
// as CloseOrphans closes one (recording repaired and sealed as far as it
// is, a session.end event with "recovered": true). It is safe for several
// survivors to race: inside the one write transaction the node's heartbeat
// is read again, so a node that came back is left alone, and each session
// row is closed only while still open, so each gets one session.end. (On
// SQLite there is one writer; on PostgreSQL every write takes the chain's
// append lock, which serialises the writers of all nodes.) It returns how
// many sessions it closed.
func (s *Store) ReapDeadNodes(ctx context.Context, timeout time.Duration) (int, error) {
	if timeout <= 0 {
		return 0, invalidf("reap dead nodes: timeout %s is not positive", timeout)
	}
	cutoff, err := formatTime(s.now().Add(-timeout))
	if err != nil {
		return 0, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT n.id FROM nodes n JOIN sessions s ON s.node_id = n.id
		WHERE s.ended_at IS NULL AND n.heartbeat_at < ? AND n.id <> ? ORDER BY n.id`, cutoff, s.node)
	if err != nil {
		return 0, fmt.Errorf("audit: reap dead nodes: %w", err)
	}
	var dead []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return 0, fmt.Errorf("audit: reap dead nodes: %w", err)
		}
		dead = append(dead, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, fmt.Errorf("audit: reap dead nodes: %w", err)
	}
	var total int
	for _, id := range dead {
		orphans, err := s.openSessions(ctx, " AND node_id = ?", id)
		if err != nil {
			return total, err
		}
		n, err := s.closeOrphans(ctx, EndInterrupted, orphans, func(tx *sql.Tx) (bool, error) {
			// Still dead? The heartbeat may have moved since the read
			// above (the node came back), and then its sessions are its own.
			var beat string
			err := tx.QueryRow(`SELECT heartbeat_at FROM nodes WHERE id = ?`, id).Scan(&beat)
			if err != nil {
				return false, fmt.Errorf("audit: reap node %s: %w", id, err)
			}
			return beat < cutoff, nil
		})
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
