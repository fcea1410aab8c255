package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/warden-gw/warden/recorder"
	"github.com/warden-gw/warden/recstore"
)

// ReapDeadNodes ends, as EndInterrupted, the open sessions of every other
// node whose heartbeat is older than timeout: their node died (a node that
// stopped cleanly ended its sessions first). Each gets a session.end event
// with "recovered": true, like CloseOrphans', and "node": the dead node.
//
// The survivor does not have the dead node's spool, so it never reads its
// own data directory for them. With recordings in an object store (remote
// set, recordings.store s3) it seals what the store holds: the segments
// the dead node uploaded, which must tile the recording from byte 0
// (remote.SealRemote). recording_sha256 is their SHA-256, and the event
// says so under "recording_sealed" {"from": "object store", "bytes",
// "segments", "object", "node"}; once the end is committed the segments
// become the final object (remote.StoreSealed), which readers and Verify
// then find. Up to one upload interval of the session, still only in the
// dead node's spool, is not in the seal; if that node comes back, its
// Uploader.Recover stores it as a separate tail object. Without an object
// store (remote nil), or when the store holds nothing usable (no segments,
// a gap, a recording path that does not name the session), the session
// ends without a digest and "recording_note" says the recording is on the
// dead node, not sealed. A store that does not answer is waited for (the
// session stays open, tried again next round) until the node has been
// dead for reapPatience timeouts; then the session ends with a note.
//
// It is safe for several survivors to race: inside the one write
// transaction the node's heartbeat is read again, so a node that came back
// is left alone, and each session row is closed only while still open, so
// each gets one session.end. (On SQLite there is one writer; on PostgreSQL
// every write takes the chain's append lock, which serialises the writers
// of all nodes.) It returns how many sessions it closed.
func (s *Store) ReapDeadNodes(ctx context.Context, timeout time.Duration, remote recstore.Sealer) (int, error) {
	if timeout <= 0 {
		return 0, invalidf("reap dead nodes: timeout %s is not positive", timeout)
	}
	cutoff, err := formatTime(s.now().Add(-timeout))
	if err != nil {
		return 0, err
	}
	// Until a node has been dead for patience, a seal that failed for a
	// passing reason (the object store did not answer) is tried again at
	// the next round rather than given up for a note.
	patient, err := formatTime(s.now().Add(-reapPatience * timeout))
	if err != nil {
		return 0, err
	}
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT n.id, n.heartbeat_at FROM nodes n JOIN sessions s ON s.node_id = n.id
		WHERE s.ended_at IS NULL AND n.heartbeat_at < ? AND n.id <> ? ORDER BY n.id`, cutoff, s.node)
	if err != nil {
		return 0, fmt.Errorf("audit: reap dead nodes: %w", err)
	}
	var dead []string
	wait := map[string]bool{}
	for rows.Next() {
		var id, beat string
		if err := rows.Scan(&id, &beat); err != nil {
			rows.Close()
			return 0, fmt.Errorf("audit: reap dead nodes: %w", err)
		}
		dead, wait[id] = append(dead, id), beat >= patient
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return 0, fmt.Errorf("audit: reap dead nodes: %w", err)
	}
	var total int
	for _, id := range dead {
		orphans, err := s.deadSessions(ctx, id, remote, wait[id])
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
		for _, o := range orphans {
			if !o.closed || o.seal == nil {
				continue
			}
			// After the commit, not before: a node that came back keeps
			// its session, and its own upload makes the final object.
			// Should this fail, readers and Verify still find the sealed
			// bytes in the segments, and the returning node's Recover
			// makes the object.
			if err := remote.StoreSealed(ctx, o.rel, *o.seal); err != nil {
				s.log.Error("reaped session's recording not stored as one object; the segments keep it",
					"session", o.id, "node", id, "err", err)
			}
		}
	}
	return total, nil
}

// reapPatience times the reaper's timeout is how long a dead node's
// sessions wait for an object store that does not answer (5 minutes with
// the gateway's 30 s): then they are ended with a note all the same, so
// that a dead node does not leave sessions that look live for ever.
const reapPatience = 10

// sealRefused reports a seal that no retry can give: a recording path
// that is not the session's, nothing in the store, segments with a gap, or
// a final object stored for the open session (not the node's: planted).
func sealRefused(err error) bool {
	return errors.Is(err, recorder.ErrUnsafePath) || errors.Is(err, os.ErrNotExist) || errors.Is(err, recstore.ErrGap) ||
		errors.Is(err, recstore.ErrUnexpectedFinal)
}

// deadSessions lists the open sessions of the dead node, each sealed from
// remote as ReapDeadNodes describes. With wait, a session whose seal
// failed for a passing reason is left out (left open for the next round).
func (s *Store) deadSessions(ctx context.Context, node string, remote recstore.Sealer, wait bool) ([]orphan, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, recording_path FROM sessions WHERE ended_at IS NULL AND node_id = ?
		ORDER BY started_at, id`, node)
	if err != nil {
		return nil, fmt.Errorf("audit: reap node %s: %w", node, err)
	}
	var list []orphan
	for rows.Next() {
		var o orphan
		var rel sql.NullString
		if err := rows.Scan(&o.id, &rel); err != nil {
			rows.Close()
			return nil, fmt.Errorf("audit: reap node %s: %w", node, err)
		}
		o.rel, o.node = rel.String, node
		list = append(list, o)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("audit: reap node %s: %w", node, err)
	}
	for i := range list {
		o := &list[i]
		switch {
		case o.rel == "":
		case remote == nil:
			o.note = fmt.Sprintf("recording is on node %s, not sealed: recordings are local files there", node)
		default:
			seal, err := remote.SealRemote(ctx, o.id, o.rel)
			if err != nil {
				if ctx.Err() != nil {
					return nil, ctx.Err()
				}
				if wait && !sealRefused(err) {
					s.log.Warn("dead node's recording not sealed yet; tried again next round", "session", o.id, "node", node, "err", err)
					o.skip = true
					continue
				}
				o.note = fmt.Sprintf("recording is on node %s, not sealed: the object store's copy could not be: %v", node, err)
				continue
			}
			o.sum, o.seal = seal.SHA256, &seal
		}
	}
	return slices.DeleteFunc(list, func(o orphan) bool { return o.skip }), nil
}

// sealedData is the "recording_sealed" of a session.end whose recording was
// sealed from the object store.
func (o *orphan) sealedData() map[string]any {
	return map[string]any{
		"from": "object store", "node": o.node, "bytes": o.seal.Bytes,
		"segments": o.seal.Segments, "object": o.seal.Object,
	}
}
