package audit

import (
	"context"
	"database/sql"
	"errors"
	"time"
)

// OpenSession returns session id if it is open (ended_at NULL) on a node
// that is alive: its nodes row was not stopped cleanly and its heartbeat
// is at or after aliveSince. Otherwise it returns an error matching
// ErrNotFound, whatever the reason (unknown, ended, on a dead or stopped
// node, or a row from before node_id existed): the caller, a gateway about
// to show another node's session live, gives one answer to all of them.
//
// It is how a node learns which other node holds a live session (issue
// 12, CONTRACT §8): the row's NodeID names it, and its Tenant is what the
// viewer's oversight is checked against before anything is asked of the
// cluster.
func (r *Reader) OpenSession(ctx context.Context, id string, aliveSince time.Time) (Session, error) {
	since, err := formatTime(aliveSince)
	if err != nil {
		return Session{}, err
	}
	row := r.db.QueryRowContext(ctx, "SELECT "+sessionColumns+` FROM sessions
		WHERE id = ? AND ended_at IS NULL AND node_id IN
			(SELECT id FROM nodes WHERE stopped_at IS NULL AND heartbeat_at >= ?)`, id, since)
	sess, err := scanSession(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Session{}, notFoundf("no open session %q on a live node", id)
	}
	return sess, err
}
