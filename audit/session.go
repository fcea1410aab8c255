package audit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
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
}

// SessionEnd is what is known when a session ends.
type SessionEnd struct {
	EndedAt         time.Time // zero means now
	Reason          string    // e.g. "exit", "killed", "grant expired"
	ExitStatus      *int
	RecordingPath   string // overrides the path given at start when set
	RecordingSHA256 string
	BytesIn         int64
	BytesOut        int64
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
	return s.write(ctx, func(tx *sql.Tx, _ *chainTip) error {
		_, err := tx.Exec(`INSERT INTO sessions
			(id, user, login, host, tenant, role, grant_id, client_addr, started_at, recording_path, cert_serial,
			 policy_version)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			sess.ID, sess.User, sess.Login, sess.Host, sess.Tenant, nullString(sess.Role),
			nullInt64(sess.GrantID), nullString(sess.ClientAddr), started,
			nullString(sess.RecordingPath), nullString(sess.CertSerial), nullString(sess.PolicyVersion))
		if err != nil {
			return fmt.Errorf("audit: %s: %w", what, err)
		}
		return nil
	})
}

// EndSession closes the open session id. It fails with ErrNotFound for an
// unknown id, and refuses a session that has already ended: an end record,
// with its recording digest, is written once and not replaced.
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
	if e.ExitStatus != nil {
		exit = sql.NullInt64{Int64: int64(*e.ExitStatus), Valid: true}
	}
	return s.write(ctx, func(tx *sql.Tx, _ *chainTip) error {
		res, err := tx.Exec(`UPDATE sessions SET ended_at = ?, end_reason = ?, exit_status = ?,
			recording_path = COALESCE(?, recording_path), recording_sha256 = ?, bytes_in = ?, bytes_out = ?
			WHERE id = ? AND ended_at IS NULL`,
			ended, nullString(e.Reason), exit, nullString(e.RecordingPath), nullString(e.RecordingSHA256),
			e.BytesIn, e.BytesOut, id)
		if err != nil {
			return fmt.Errorf("audit: %s: %w", what, err)
		}
		return explainMissedUpdate(tx, res, id, what, true)
	})
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
			return fmt.Errorf("audit: %s: session already ended", what)
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("audit: %s: %w", what, err)
		}
	}
	return notFoundf("%s: no such session", what)
}

// orphanEventType is the type of the event CloseOrphans writes per session.
const orphanEventType = "session.end"

// CloseOrphans ends every session still open, for use once at gateway start:
// such rows were left by a crash, since a running gateway ends its sessions.
// Each gets ended_at now, end_reason reason (default "orphaned") and, in the
// same transaction, a session.end audit event with actor "warden" and data
// {"reason": reason, "recovered": true}; callers need not log them again. It
// returns how many sessions it closed.
func (s *Store) CloseOrphans(ctx context.Context, reason string) (int, error) {
	if reason == "" {
		reason = "orphaned"
	}
	now, err := formatTime(s.now())
	if err != nil {
		return 0, err
	}
	data, err := canonicalData(map[string]any{"reason": reason, "recovered": true})
	if err != nil {
		return 0, invalidf("close orphaned sessions: reason: %v", err)
	}
	var closed int
	err = s.write(ctx, func(tx *sql.Tx, tip *chainTip) error {
		closed = 0
		rows, err := tx.Query(`SELECT id FROM sessions WHERE ended_at IS NULL ORDER BY started_at, id`)
		if err != nil {
			return fmt.Errorf("audit: close orphaned sessions: %w", err)
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return fmt.Errorf("audit: close orphaned sessions: %w", err)
			}
			ids = append(ids, id)
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("audit: close orphaned sessions: %w", err)
		}
		for _, id := range ids {
			if _, err := tx.Exec(`UPDATE sessions SET ended_at = ?, end_reason = ? WHERE id = ?`, now, reason, id); err != nil {
				return fmt.Errorf("audit: close orphaned session %s: %w", id, err)
			}
			ev := eventRow{ts: now, typ: orphanEventType, actor: "warden", subject: id, data: data}
			if err := appendEvent(tx, tip, ev); err != nil {
				return err
			}
		}
		closed = len(ids)
		return nil
	})
	if err != nil {
		return 0, err
	}
	return closed, nil
}
