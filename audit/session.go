package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/warden-gw/warden/recorder"
	"github.com/warden-gw/warden/recstore"
)

// Session is one session channel that ran a shell, a command or a
// subsystem: a row of the sessions table.
type Session struct {
	ID         string // random, URL-safe; see checkSessionID
	User       string // the Warden user (identity from the key)
	Login      string // the account on the host
	Host       string
	Tenant     string
	Role       string
	GrantID    int64 // 0 = no grant (standing access), stored as NULL
	ClientAddr string
	StartedAt  time.Time // zero means now
	EndedAt    time.Time // zero = still open (NULL)
	EndReason  string
	ExitStatus *int // nil = none reported (NULL)

	RecordingPath   string // relative to the data directory, '/'-separated
	RecordingSHA256 string // lowercase hex, set when the recording is finished
	BytesIn         int64
	BytesOut        int64
	CertSerial      string // serial of the per-session certificate, if any
	// PolicyVersion is the Version of the policy that admitted the
	// session (lowercase hex SHA-256); "" is stored as NULL.
	PolicyVersion string
	// NodeID is the gateway node that runs the session (config node_id);
	// "" means the Store's Options.NodeID. NULL for rows from before
	// migration 0009.
	NodeID string
}

// SessionEnd is what is known when a session ends. EndSession records it in
// the session row and in the session.end event it appends to the chain.
type SessionEnd struct {
	EndedAt         time.Time // zero means now
	Reason          string    // e.g. "exit", "killed", "grant expired"
	ExitStatus      *int
	RecordingPath   string // overrides the path given at start when set
	RecordingSHA256 string
	BytesIn         int64
	BytesOut        int64

	// Actor and Subject name the session.end event: who ended up using
	// the session, and what it reached (e.g. "root@web01"). Empty means
	// "warden" and the session ID.
	Actor, Subject string
}

// StartSession inserts sess as an open session (ended_at NULL). The end
// fields (EndedAt, EndReason, ExitStatus, RecordingSHA256, BytesIn/Out) are
// ignored: a row starts open and only EndSession closes it.
func (s *Store) StartSession(ctx context.Context, sess Session) error {
	if err := checkSessionID(sess.ID); err != nil {
		return err
	}
	what := "start session " + sess.ID
	if err := checkRequired(what, "user", sess.User, "login", sess.Login, "host", sess.Host, "tenant", sess.Tenant); err != nil {
		return err
	}
	if sess.GrantID < 0 {
		return invalidf("%s: negative grant ID %d", what, sess.GrantID)
	}
	if err := checkRecordingPath(sess.RecordingPath); err != nil {
		return err
	}
	if checkSHA256(sess.PolicyVersion) != nil {
		return invalidf("%s: policy version %q: want 64 lowercase hex digits", what, sess.PolicyVersion)
	}
	started, err := stampOrNow(sess.StartedAt, s.now)
	if err != nil {
		return err
	}
	node := orDefault(sess.NodeID, s.node)
	return s.write(ctx, func(tx *sql.Tx, _ *chainTip) error {
		_, err := tx.Exec(`INSERT INTO sessions
			(id, user, login, host, tenant, role, grant_id, client_addr, started_at, recording_path, cert_serial,
			 policy_version, node_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sess.ID, sess.User, sess.Login, sess.Host, sess.Tenant, nullString(sess.Role),
			nullInt64(sess.GrantID), nullString(sess.ClientAddr), started,
			nullString(sess.RecordingPath), nullString(sess.CertSerial), nullString(sess.PolicyVersion), nullString(node))
		if err != nil {
			return fmt.Errorf("audit: %s: %w", what, err)
		}
		return nil
	})
}

// EndSession closes the open session id and, in the same transaction,
// appends its session.end event, which carries the recording's path and
// SHA-256 and the digest of the session's command rows (see doc.go). Since
// the writer runs one write at a time and LogCommand refuses an ended
// session, no command row can be added between the digest and the end. It
// fails with ErrNotFound for an unknown id, and refuses a session that has
// already ended: an end record, with its digests, is written once and not
// replaced.
func (s *Store) EndSession(ctx context.Context, id string, e SessionEnd) error {
	if err := checkSessionID(id); err != nil {
		return err
	}
	what := "end session " + id
	if e.BytesIn < 0 || e.BytesOut < 0 {
		return invalidf("%s: negative byte count", what)
	}
	if err := checkRecordingPath(e.RecordingPath); err != nil {
		return err
	}
	if err := checkSHA256(e.RecordingSHA256); err != nil {
		return err
	}
	ended, err := stampOrNow(e.EndedAt, s.now)
	if err != nil {
		return err
	}
	var exit sql.NullInt64
	data := map[string]any{"end_reason": e.Reason, "bytes_in": e.BytesIn, "bytes_out": e.BytesOut}
	if e.ExitStatus != nil {
		exit = sql.NullInt64{Int64: int64(*e.ExitStatus), Valid: true}
		data["exit_status"] = *e.ExitStatus
	}
	ev := eventRow{ts: ended, typ: EventSessionEnd, actor: orDefault(e.Actor, "warden"), subject: orDefault(e.Subject, id)}
	err = s.write(ctx, func(tx *sql.Tx, tip *chainTip) error {
		res, err := tx.Exec(`UPDATE sessions SET ended_at = ?, end_reason = ?, exit_status = ?,
			recording_path = COALESCE(?, recording_path), recording_sha256 = ?, bytes_in = ?, bytes_out = ?
			WHERE id = ? AND ended_at IS NULL`,
			ended, nullString(e.Reason), exit, nullString(e.RecordingPath), nullString(e.RecordingSHA256),
			e.BytesIn, e.BytesOut, id)
		if err != nil {
			return fmt.Errorf("audit: %s: %w", what, err)
		}
		if err := explainMissedUpdate(tx, res, id, what, true); err != nil {
			return err
		}
		return appendSessionEnd(tx, tip, ev, id, data)
	})
	if err == nil && s.idx != nil {
		s.idx.enqueue(id)
	}
	return err
}

// appendSessionEnd seals data with the session's digests and appends the
// session.end event row; the caller has just closed the session row in tx.
func appendSessionEnd(tx *sql.Tx, tip *chainTip, ev eventRow, id string, data map[string]any) error {
	if err := sealData(tx, id, data); err != nil {
		return err
	}
	var err error
	if ev.data, err = canonicalData(data); err != nil {
		return invalidf("end session %s: data: %v", id, err)
	}
	ev.actor = strings.ToValidUTF8(ev.actor, "\uFFFD")
	ev.subject = strings.ToValidUTF8(ev.subject, "\uFFFD")
	return appendEvent(tx, tip, ev)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// SetSessionCert records the serial of the certificate issued for session
// id. It fails with ErrNotFound for an unknown id.
func (s *Store) SetSessionCert(ctx context.Context, id, serial string) error {
	if err := checkSessionID(id); err != nil {
		return err
	}
	what := "set certificate of session " + id
	if serial == "" {
		return invalidf("%s: empty serial", what)
	}
	return s.write(ctx, func(tx *sql.Tx, _ *chainTip) error {
		res, err := tx.Exec(`UPDATE sessions SET cert_serial = ? WHERE id = ?`, serial, id)
		if err != nil {
			return fmt.Errorf("audit: %s: %w", what, err)
		}
		return explainMissedUpdate(tx, res, id, what, false)
	})
}

// explainMissedUpdate turns an UPDATE that touched no row into ErrNotFound,
// or, when openOnly, into "already ended" for a session that exists.
func explainMissedUpdate(tx *sql.Tx, res sql.Result, id, what string, openOnly bool) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("audit: %s: %w", what, err)
	}
	if n > 0 {
		return nil
	}
	if openOnly {
		var one int
		err := tx.QueryRow(`SELECT 1 FROM sessions WHERE id = ?`, id).Scan(&one)
		if err == nil {
			return &kindError{msg: fmt.Sprintf("audit: %s: session already ended", what), kind: ErrEnded}
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("audit: %s: %w", what, err)
		}
	}
	return notFoundf("%s: no such session", what)
}

// EndInterrupted is the end_reason of a session a crash left open
// (CONTRACT §8): CloseOrphans' default.
const EndInterrupted = "interrupted"

// CloseOrphans ends the sessions this node left open, for use once at
// gateway start: such rows were left by a crash, since a running gateway
// ends its sessions. With Options.NodeID set, those are the open sessions
// with that node_id or with none (rows from before migration 0009); other
// nodes' sessions on a shared store are left to them (and to
// ReapDeadNodes). Without a NodeID it ends every open session.
// Each gets ended_at now, end_reason reason (default EndInterrupted) and, in the
// same transaction, a session.end audit event with actor "warden", subject
// the session ID and data {"reason": reason, "recovered": true} sealed with
// the session's digests like any session.end (see EndSession). A recording
// left behind is first repaired (recorder.RepairTail: a last line the crash
// tore is cut, so the file is valid asciicast again) and then hashed, so
// that from now on the chain binds it; a cut is recorded in the event under
// "recording_repaired" (bytes cut and the digest as found). One that is
// missing or unsafe to open gets no digest, and the event says why under
// "recording_note". Callers need not log the sessions again. It
// returns how many sessions it closed.
func (s *Store) CloseOrphans(ctx context.Context, reason string) (int, error) {
	where, args := "", []any(nil)
	if s.node != "" {
		where, args = " AND (node_id = ? OR node_id IS NULL)", []any{s.node}
	}
	orphans, err := s.openSessions(ctx, where, args...)
	if err != nil {
		return 0, err
	}
	return s.closeOrphans(ctx, reason, orphans, nil)
}

// closeOrphans ends orphans as CloseOrphans describes, in one write, and
// marks those it ended (closed). When
// still is set, it runs first inside the write transaction and nothing is
// closed unless it returns true: the re-check that makes a reap happen
// once however many survivors race for it.
func (s *Store) closeOrphans(ctx context.Context, reason string, orphans []orphan, still func(*sql.Tx) (bool, error)) (int, error) {
	if reason == "" {
		reason = EndInterrupted
	}
	now, err := formatTime(s.now())
	if err != nil {
		return 0, err
	}
	if len(orphans) == 0 {
		return 0, nil
	}
	var closed int
	err = s.write(ctx, func(tx *sql.Tx, tip *chainTip) error {
		closed = 0
		for i := range orphans {
			orphans[i].closed = false
		}
		if still != nil {
			if ok, err := still(tx); err != nil || !ok {
				return err
			}
		}
		for i := range orphans {
			o := &orphans[i]
			res, err := tx.Exec(`UPDATE sessions SET ended_at = ?, end_reason = ?, recording_sha256 = COALESCE(?, recording_sha256)
				WHERE id = ? AND ended_at IS NULL`, now, reason, nullString(o.sum), o.id)
			if err != nil {
				return fmt.Errorf("audit: close orphaned session %s: %w", o.id, err)
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				continue // ended meanwhile: it has its own session.end
			}
			data := map[string]any{"reason": reason, "recovered": true}
			if o.note != "" {
				data["recording_note"] = o.note
			}
			if o.node != "" {
				data["node"] = o.node // reaped: the node that died with it
			}
			if o.seal != nil {
				data["recording_sealed"] = o.sealedData()
			}
			if o.repair.TruncatedBytes > 0 {
				data["recording_repaired"] = map[string]any{
					"truncated_bytes": o.repair.TruncatedBytes, "sha256_before": o.repair.SHA256Before,
				}
			}
			ev := eventRow{ts: now, typ: EventSessionEnd, actor: "warden", subject: o.id}
			if err := appendSessionEnd(tx, tip, ev, o.id, data); err != nil {
				return err
			}
			o.closed = true
			closed++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	if closed > 0 && s.idx != nil {
		s.idx.sweepSoon()
	}
	return closed, nil
}

// orphan is an open session found by CloseOrphans or ReapDeadNodes, with
// the digest of the recording it left.
type orphan struct {
	id, sum, note string
	repair        recorder.Repair
	// Set by ReapDeadNodes: the recording path, the dead node, and the
	// seal taken from the object store (nil: none).
	rel, node string
	seal      *recstore.Seal
	closed    bool // set by closeOrphans when this one's end was written
	skip      bool // left open for now (deadSessions)
}

// openSessions lists the open sessions that also match where (" AND ..."
// with args), repairs and hashes their recordings, before the write:
// hashing large files must not hold up the writer.
func (s *Store) openSessions(ctx context.Context, where string, args ...any) ([]orphan, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, recording_path FROM sessions WHERE ended_at IS NULL`+where+` ORDER BY started_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: close orphaned sessions: %w", err)
	}
	var list []orphan
	var paths []string
	for rows.Next() {
		var o orphan
		var rel sql.NullString
		if err := rows.Scan(&o.id, &rel); err != nil {
			rows.Close()
			return nil, fmt.Errorf("audit: close orphaned sessions: %w", err)
		}
		list, paths = append(list, o), append(paths, rel.String)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("audit: close orphaned sessions: %w", err)
	}
	for i, rel := range paths {
		if rel == "" {
			continue
		}
		rep, err := recorder.RepairTail(s.dir, rel)
		if err != nil && !errors.Is(err, os.ErrNotExist) && !errors.Is(err, recorder.ErrUnsafePath) {
			// Hashed as found all the same: a recording the repair could
			// not write is still evidence, and its digest binds it.
			list[i].note = "torn last line not repaired: " + err.Error()
		}
		list[i].repair = rep
		sum, note := hashRecording(ctx, recstore.Local{Dir: s.dir}, rel)
		list[i].sum = sum
		if note != "" {
			list[i].note = note
		}
	}
	return list, nil
}
