package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrNodeKeys is matched by NodeStarted's error when this node's gateway
// host key or CA key differs from a live node's.
var ErrNodeKeys = errors.New("node keys differ from the cluster's")

type keysDiffer string

func (e keysDiffer) Error() string        { return string(e) }
func (e keysDiffer) Is(target error) bool { return target == ErrNodeKeys }

// checkNodeKeys refuses a node whose host key or CA key is not the one
// the live nodes of the cluster use (migration 0011). Behind one DNS name
// or load balancer, a node with its own host key makes clients see the
// gateway's key change between connections, which teaches people to accept
// that warning: the one that reveals a man in the middle. A node with its
// own CA issues certificates the hosts do not trust. Fail closed at start,
// with one line naming both fingerprints and a node.refused event, rather
// than serve a cluster that does not present one identity. Only live nodes
// count (no stopped_at, heartbeat fresher than me.DeadAfter): after a key
// rotation the whole cluster is restarted with the new files.
func checkNodeKeys(tx *sql.Tx, tip *chainTip, node string, me *Self, now time.Time, nowS string) (refused, err error) {
	cutoff, err := formatTime(now.Add(-me.DeadAfter))
	if err != nil {
		return nil, err
	}
	for _, k := range []struct{ col, mine, what, file string }{
		{"host_key", me.HostKey, "gateway host key", "host_key"},
		{"ca_key", me.CAKey, "CA key", "CA key file (or the same Vault mount)"},
	} {
		if k.mine == "" {
			continue
		}
		var other, theirs string
		// k.col is one of the two constants above, never input.
		err := tx.QueryRow(`SELECT id, `+k.col+` FROM nodes WHERE id <> ? AND stopped_at IS NULL AND heartbeat_at >= ?
			AND `+k.col+` IS NOT NULL AND `+k.col+` <> ? ORDER BY id LIMIT 1`, node, cutoff, k.mine).Scan(&other, &theirs)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("audit: node %s start: %w", node, err)
		}
		data, err := canonicalData(map[string]any{"node": node, "host": me.Host, "reason": k.col + " differs",
			"key": k.mine, "live_node": other, "live_key": theirs})
		if err != nil {
			return nil, err
		}
		if err := appendEvent(tx, tip, eventRow{ts: nowS, typ: EventNodeRefused, actor: "warden", subject: node, data: data}); err != nil {
			return nil, err
		}
		return keysDiffer(fmt.Sprintf("the %s of node %s (%s) differs from live node %s's (%s); every node must use the same %s",
			k.what, node, k.mine, other, theirs, k.file)), nil
	}
	return nil, nil
}

// NodeKeys checks and records the fingerprints in me.HostKey and me.CAKey
// for this node, once its keys are loaded (after NodeStarted, which
// compares them too when they are already set). A node whose keys differ
// from a live node's gets an error matching ErrNodeKeys and a node.refused
// event, and must not serve.
func (s *Store) NodeKeys(ctx context.Context, me *Self) error {
	if err := me.check("keys"); err != nil {
		return err
	}
	if s.node == "" {
		return invalidf("node keys: the store has no node ID")
	}
	now := s.now()
	nowS, err := formatTime(now)
	if err != nil {
		return err
	}
	var refused error
	err = s.write(ctx, func(tx *sql.Tx, tip *chainTip) error {
		if refused, err = checkNodeKeys(tx, tip, s.node, me, now, nowS); err != nil {
			return err
		}
		if refused != nil {
			// This node will not serve: its row must not look live to
			// the others (a fresh heartbeat and no stopped_at).
			if _, err := tx.Exec(`UPDATE nodes SET stopped_at = ? WHERE id = ? AND instance = ?`, nowS, s.node, me.Instance); err != nil {
				return fmt.Errorf("audit: node %s keys: %w", s.node, err)
			}
			return nil
		}
		if _, err := tx.Exec(`UPDATE nodes SET host_key = ?, ca_key = ? WHERE id = ? AND instance = ?`,
			nullString(me.HostKey), nullString(me.CAKey), s.node, me.Instance); err != nil {
			return fmt.Errorf("audit: node %s keys: %w", s.node, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return refused
}
