package audit

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// Nodes: several gateways on one store (issue 12, CONTRACT §8). Each node
// keeps a row in the nodes table with a heartbeat; a node whose heartbeat
// is older than a timeout is taken for dead, and a survivor ends its open
// sessions as EndInterrupted (ReapDeadNodes, nodes_reap.go).

// Audit events of the nodes table.
const (
	// EventNodeRefused: a gateway did not start because its node_id is
	// held by a live node on another host (NodeStarted).
	EventNodeRefused = "node.refused"
	// EventNodeDuplicate: a running gateway found its node's row taken by
	// another process (Heartbeat): two gateways share one node_id.
	EventNodeDuplicate = "node.duplicate"
)

// ErrNodeInUse is matched by the error of NodeStarted when another live
// node holds the node_id, and by Heartbeat's when another process has
// taken this node's row.
var ErrNodeInUse = errors.New("node_id in use")

// inUse is an error matching ErrNodeInUse that reads as msg alone: the
// one line an operator sees.
type inUse string

func (e inUse) Error() string        { return string(e) }
func (e inUse) Is(target error) bool { return target == ErrNodeInUse }

// Self is this gateway process as the nodes table knows it: its host and a
// random token drawn once per process. Two processes with one node_id tell
// themselves apart by the token; the host tells a restart after a crash
// (same host, a heartbeat that is still fresh) from a second gateway given
// the same node_id by mistake (another host).
type Self struct {
	Host     string
	Instance string
	// DeadAfter is how old a heartbeat must be for its node to count as
	// dead (the reaper's timeout).
	DeadAfter time.Duration
	// HostKey and CAKey are the SHA-256 fingerprints (ssh.FingerprintSHA256)
	// of the gateway host key and of the CA public key this node uses; ""
	// is not recorded and not compared (nodes_keys.go).
	HostKey, CAKey string

	reported atomic.Bool // node.duplicate appended once per process
}

// NewSelf returns the Self of this process: host "" means os.Hostname().
func NewSelf(host string, deadAfter time.Duration) (*Self, error) {
	if host == "" {
		h, err := os.Hostname()
		if err != nil {
			return nil, fmt.Errorf("audit: host name: %w", err)
		}
		host = h
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	return &Self{Host: host, Instance: hex.EncodeToString(b[:]), DeadAfter: deadAfter}, nil
}

func (me *Self) check(what string) error {
	if me == nil || me.Host == "" || me.Instance == "" || me.DeadAfter <= 0 {
		return invalidf("node %s: want a host, an instance and a positive dead-after", what)
	}
	return nil
}

// NodeStarted records that this node (Options.NodeID), run by the process
// me, starts serving: started_at and heartbeat_at now, stopped_at cleared,
// host and instance set. Call it before CloseOrphans: it refuses, with an
// error matching ErrNodeInUse and a node.refused event, a node_id whose row
// says another live node holds it (no stopped_at, heartbeat fresher than
// me.DeadAfter, another host, or a host unknown from before migration
// 0010): that node's sessions must not be taken for this one's orphans.
// The same host with another instance is this host after a crash, whose
// heartbeat has not aged yet: allowed.
func (s *Store) NodeStarted(ctx context.Context, me *Self) error {
	if err := me.check("start"); err != nil {
		return err
	}
	if s.node == "" {
		return invalidf("node start: the store has no node ID")
	}
	now := s.now()
	nowS, err := formatTime(now)
	if err != nil {
		return err
	}
	var refused error
	err = s.write(ctx, func(tx *sql.Tx, tip *chainTip) error {
		refused = nil
		var host, inst, stopped sql.NullString
		var beat string
		err := tx.QueryRow(`SELECT host, instance, heartbeat_at, stopped_at FROM nodes WHERE id = ?`, s.node).
			Scan(&host, &inst, &beat, &stopped)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("audit: node %s start: %w", s.node, err)
		}
		if err == nil && !stopped.Valid && inst.String != me.Instance && (!host.Valid || host.String != me.Host) {
			bt, err := parseTime(beat)
			if err != nil {
				return fmt.Errorf("audit: node %s: %w", s.node, err)
			}
			if age := now.Sub(bt); age < me.DeadAfter {
				// Fail closed: a second gateway with this node_id would end
				// the live one's sessions as its own orphans, and the two
				// would overwrite each other's heartbeat.
				other := host.String
				if !host.Valid {
					other = "(unknown: a gateway from before migration 0010)"
				}
				age = max(age, 0).Round(time.Second)
				refused = inUse(fmt.Sprintf("node_id %s is in use by a live node on host %s (heartbeat %s ago); give each node its own node_id",
					s.node, other, age))
				data, err := canonicalData(map[string]any{
					"node": s.node, "host": me.Host, "live_host": host.String,
					"heartbeat_age_seconds": int64(age / time.Second),
				})
				if err != nil {
					return err
				}
				return appendEvent(tx, tip, eventRow{ts: nowS, typ: EventNodeRefused, actor: "warden", subject: s.node, data: data})
			}
		}
		if refused, err = checkNodeKeys(tx, tip, s.node, me, now, nowS); err != nil || refused != nil {
			return err // nodes_keys.go: the refusal's event is appended
		}
		_, err = tx.Exec(`INSERT INTO nodes (id, started_at, heartbeat_at, host, instance, host_key, ca_key) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at,
			stopped_at = NULL, host = excluded.host, instance = excluded.instance, host_key = excluded.host_key,
			ca_key = excluded.ca_key`, s.node, nowS, nowS, me.Host, me.Instance, nullString(me.HostKey), nullString(me.CAKey))
		if err != nil {
			return fmt.Errorf("audit: node %s start: %w", s.node, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return refused
}

// Heartbeat sets this node's heartbeat_at to now (and makes its row if
// missing, e.g. after someone deleted it). When the row names another
// instance, another process runs with this node_id (NodeStarted let it in
// as this host after a crash, or it predates the check): the heartbeat is
// still written, since both processes serve sessions that must not be
// reaped, but the row is left to the other, a node.duplicate event is
// appended once per process, and the error matches ErrNodeInUse.
func (s *Store) Heartbeat(ctx context.Context, me *Self) error {
	if err := me.check("heartbeat"); err != nil {
		return err
	}
	if s.node == "" {
		return invalidf("node heartbeat: the store has no node ID")
	}
	nowS, err := formatTime(s.now())
	if err != nil {
		return err
	}
	var dup error
	var appended bool
	err = s.write(ctx, func(tx *sql.Tx, tip *chainTip) error {
		dup, appended = nil, false
		var host, inst sql.NullString
		err := tx.QueryRow(`SELECT host, instance FROM nodes WHERE id = ?`, s.node).Scan(&host, &inst)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("audit: node %s heartbeat: %w", s.node, err)
		}
		if err == nil && inst.Valid && inst.String != me.Instance {
			dup = inUse(fmt.Sprintf("node_id %s is also used by another gateway process on host %s; give each node its own node_id",
				s.node, host.String))
			if _, err := tx.Exec(`UPDATE nodes SET heartbeat_at = ? WHERE id = ?`, nowS, s.node); err != nil {
				return fmt.Errorf("audit: node %s heartbeat: %w", s.node, err)
			}
			if me.reported.Load() {
				return nil
			}
			data, err := canonicalData(map[string]any{"node": s.node, "host": me.Host, "row_host": host.String})
			if err != nil {
				return err
			}
			appended = true
			return appendEvent(tx, tip, eventRow{ts: nowS, typ: EventNodeDuplicate, actor: "warden", subject: s.node, data: data})
		}
		_, err = tx.Exec(`INSERT INTO nodes (id, started_at, heartbeat_at, host, instance) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at, stopped_at = NULL,
			host = excluded.host, instance = excluded.instance`, s.node, nowS, nowS, me.Host, me.Instance)
		if err != nil {
			return fmt.Errorf("audit: node %s heartbeat: %w", s.node, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	if appended {
		me.reported.Store(true)
	}
	return dup
}

// NodeStopped records a clean exit: heartbeat_at and stopped_at now. A
// node that stopped cleanly ended its sessions, so ReapDeadNodes finds
// nothing of it to reap.
func (s *Store) NodeStopped(ctx context.Context) error {
	if s.node == "" {
		return invalidf("node stop: the store has no node ID")
	}
	now, err := formatTime(s.now())
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx, _ *chainTip) error {
		if _, err := tx.Exec(`UPDATE nodes SET heartbeat_at = ?, stopped_at = ? WHERE id = ?`, now, now, s.node); err != nil {
			return fmt.Errorf("audit: node %s stop: %w", s.node, err)
		}
		return nil
	})
}

// Node is a row of the nodes table.
type Node struct {
	ID                   string
	StartedAt, Heartbeat time.Time
	StoppedAt            time.Time // zero: not stopped cleanly (running, or died)
	Host, Instance       string    // "" for rows from before migration 0010
}

// Nodes lists the nodes table, by ID.
func (r *Reader) Nodes(ctx context.Context) ([]Node, error) {
	rows, err := r.db.QueryContext(ctx, `SELECT id, started_at, heartbeat_at, stopped_at, host, instance FROM nodes ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("audit: nodes: %w", err)
	}
	defer rows.Close()
	var out []Node
	for rows.Next() {
		var n Node
		var started, beat string
		var stopped, host, inst sql.NullString
		if err := rows.Scan(&n.ID, &started, &beat, &stopped, &host, &inst); err != nil {
			return nil, fmt.Errorf("audit: nodes: %w", err)
		}
		n.Host, n.Instance = host.String, inst.String
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
