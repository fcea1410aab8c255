package audit

import (
	"context"
	"strings"
	"time"
)

// The shared live registry (issue 12, CONTRACT §8): a node lists and
// kills the sessions other nodes hold by their open rows. A row is live
// while its session is open (ended_at NULL) on a node that is alive: not
// stopped cleanly, and whose heartbeat is younger than deadAfter. A node
// that died leaves open rows until a survivor reaps them
// (ReapDeadNodes); they are not offered as live meanwhile, since nobody
// could end them by a kill.

// NodeID is this store's node (Options.NodeID), "" when it has none.
func (s *Store) NodeID() string { return s.node }

// LiveSessions lists the open sessions of the live nodes, oldest first
// (OpenSession is the one of them by ID),
// this node's included (the caller has them in memory too, and may skip
// them by NodeID). tenants, when not nil, keeps only sessions of those
// tenants; an empty non-nil list keeps none.
func (s *Store) LiveSessions(ctx context.Context, deadAfter time.Duration, tenants []string) ([]Session, error) {
	where, args, err := s.liveWhere(deadAfter)
	if err != nil {
		return nil, err
	}
	if tenants != nil {
		if len(tenants) == 0 {
			return nil, nil
		}
		where += " AND tenant IN (?" + strings.Repeat(", ?", len(tenants)-1) + ")"
		for _, t := range tenants {
			args = append(args, t)
		}
	}
	return querySessions(ctx, s.db, "live sessions", "SELECT "+sessionColumns+" FROM sessions WHERE "+where+" ORDER BY started_at, id", args...)
}

// liveWhere selects the open rows of the live nodes. Times are stored as
// fixed-width UTC text (formatTime), so they compare as strings, as
// ReapDeadNodes compares them.
func (s *Store) liveWhere(deadAfter time.Duration) (string, []any, error) {
	if deadAfter <= 0 {
		return "", nil, invalidf("live sessions: dead-after %s is not positive", deadAfter)
	}
	cutoff, err := formatTime(s.now().Add(-deadAfter))
	if err != nil {
		return "", nil, err
	}
	return `ended_at IS NULL AND node_id IN
		(SELECT id FROM nodes WHERE stopped_at IS NULL AND heartbeat_at >= ?)`, []any{cutoff}, nil
}
