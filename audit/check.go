package audit

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
)

// SessionCheck is the evidence check of one session: the console's
// "verified" badge. Match is true only when every part agrees; each
// disagreement is one line in Problems.
type SessionCheck struct {
	SessionID string
	// Live: the session is still open, so nothing is sealed yet. Match is
	// false and Problems empty: live is not a failure.
	Live bool
	// Seq is the seq of the session's session.end event (0 when none).
	Seq int64
	// RecordingPath is the chained recording path ("" when none).
	RecordingPath string
	// RecordingSHA256 is sessions.recording_sha256; SealedSHA256 the
	// digest sealed in the session.end event; FileSHA256 the digest of
	// the file as it is now ("" when there is no file or it cannot be
	// read, with the reason in Problems).
	RecordingSHA256, SealedSHA256, FileSHA256 string
	// CommandsOK: the session's command rows hash to the digest sealed in
	// the event (doc.go, "What the chain binds").
	CommandsOK bool
	// ChainOK: the event's stored hash is the hash of its own content
	// and its prev_hash, and it is linked to the events before and after
	// it (see CheckSession for what that does and does not prove).
	ChainOK bool
	// Match: the session has ended and recording file, session row,
	// command rows and chained event all agree, and ChainOK.
	Match bool
	// Problems says what disagrees, one line each, in words for people.
	Problems []string
}

// CheckSession checks ended session id's evidence the way Verify does for
// every session, in time that does not grow with the size of the chain:
//
//   - the recording file is re-hashed (so the cost is the file's size) and
//     compared with sessions.recording_sha256 and with the digest sealed in
//     the session.end event; the row's recording path with the sealed one;
//   - the session's command rows are hashed and compared with the sealed
//     command digest;
//   - the event itself: its hash is recomputed from its stored content and
//     prev_hash, prev_hash must equal the stored hash of the event before
//     it, and the next event's prev_hash must equal its hash.
//
// The local chain check catches an event edited in place, whether or not
// its own hash was recomputed (the next event's link then breaks), and an
// event deleted next to it. It does not re-verify the whole chain on every
// page view, which at hundreds of thousands of events would cost seconds:
// a rewrite of every event from this one to the head, by someone who can
// write the database and recompute all the hashes, is found only by
// "warden audit verify" against a kept anchor (doc.go). The badge says so
// by what it is: this session's evidence agrees with its own seal.
//
// It returns an error matching ErrNotFound for an unknown session; other
// errors are failures to check, not findings.
func (r *Reader) CheckSession(ctx context.Context, dataDir string, id string) (SessionCheck, error) {
	if err := checkSessionID(id); err != nil {
		return SessionCheck{}, err
	}
	c := SessionCheck{SessionID: id}
	// One read transaction: row, commands and events from one snapshot.
	tx, err := r.db.BeginTx(ctx, r.d.snapshot())
	if err != nil {
		return SessionCheck{}, fmt.Errorf("audit: check session %s: %w", id, err)
	}
	defer tx.Rollback()

	var rel, sum, ended sql.NullString
	err = tx.QueryRowContext(ctx, `SELECT recording_path, recording_sha256, ended_at FROM sessions WHERE id = ?`, id).
		Scan(&rel, &sum, &ended)
	if errors.Is(err, sql.ErrNoRows) {
		return SessionCheck{}, notFoundf("session %q not found", id)
	}
	if err != nil {
		return SessionCheck{}, fmt.Errorf("audit: check session %s: %w", id, err)
	}
	c.RecordingSHA256 = sum.String

	ev, found, err := findSessionEnd(ctx, tx, id)
	if err != nil {
		return SessionCheck{}, err
	}
	if !found {
		if !ended.Valid {
			c.Live = true
			return c, nil
		}
		c.problem("the session row says it ended, but the chain has no session.end event for it (row altered or event removed)")
		return c, nil
	}
	c.Seq = ev.seq
	if !ended.Valid {
		c.problem("the chain says the session ended (seq %d), the session row says it is open (row altered?)", ev.seq)
	}
	c.ChainOK = c.checkLinks(ctx, tx, ev)

	end, err := parseEnd(ev.seq, ev.row.subject, ev.row.data)
	switch {
	case err != nil:
		c.problem("session.end event data unreadable: %v", err)
		return c, nil
	case end.id != id:
		c.problem("the session.end event found names session %q", end.id)
		return c, nil
	case !end.sealed:
		c.problem("the session.end event predates sealed digests: its recording and commands are not bound to the chain")
		return c, nil
	}
	c.RecordingPath, c.SealedSHA256 = end.rel, end.sum
	if rel.String != end.rel {
		c.problem("sessions.recording_path %q differs from the sealed %q (row altered?)", rel.String, end.rel)
	}
	if sum.String != end.sum {
		c.problem("sessions.recording_sha256 differs from the digest sealed in the session.end event (row altered?)")
	}
	if end.sum != "" || end.rel != "" {
		file, msg := hashRecording(ctx, r.recordings(dataDir), end.rel)
		c.FileSHA256 = file
		switch {
		case end.rel == "":
			c.problem("a recording digest is sealed but no recording path")
		case msg != "":
			c.problem("recording %s: %s", end.rel, msg)
		case file != end.sum:
			c.problem("recording %s: its SHA-256 differs from the sealed digest: the recording was altered", end.rel)
		}
	}
	d, err := digestCommands(tx, id)
	if err != nil {
		return SessionCheck{}, err
	}
	switch {
	case d.lastID > end.lastID:
		c.problem("command rows added after the session ended (first new row after id %d)", end.lastID)
	case d.count != end.commands:
		c.problem("the chain sealed %d command row(s), the table holds %d (deleted or inserted?)", end.commands, d.count)
	case d.sum != end.commandsH || d.lastID != end.lastID:
		c.problem("command rows differ from the sealed digest (edited?)")
	default:
		c.CommandsOK = true
	}
	c.Match = len(c.Problems) == 0 && c.ChainOK && c.CommandsOK
	return c, nil
}

func (c *SessionCheck) problem(format string, args ...any) {
	c.Problems = append(c.Problems, fmt.Sprintf(format, args...))
}

// storedEvent is an audit_events row as stored.
type storedEvent struct {
	seq        int64
	row        eventRow
	prev, hash string
}

const storedEventColumns = `seq, ts, type, actor, subject, data, prev_hash, hash`

func scanStoredEvent(sc scanner) (storedEvent, error) {
	var e storedEvent
	err := sc.Scan(&e.seq, &e.row.ts, &e.row.typ, &e.row.actor, &e.row.subject, &e.row.data, &e.prev, &e.hash)
	return e, err
}

// findSessionEnd finds the session.end event of session id through the
// index on data.session_id (migration 0007), or, for events written before
// the data named the session, by subject.
func findSessionEnd(ctx context.Context, tx *sql.Tx, id string) (storedEvent, bool, error) {
	for _, q := range []string{
		`SELECT ` + storedEventColumns + ` FROM audit_events
			WHERE type = 'session.end' AND json_extract(data, '$.session_id') = ? ORDER BY seq LIMIT 1`,
		`SELECT ` + storedEventColumns + ` FROM audit_events
			WHERE type = 'session.end' AND subject = ? ORDER BY seq LIMIT 1`,
	} {
		e, err := scanStoredEvent(tx.QueryRowContext(ctx, q, id))
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return storedEvent{}, false, fmt.Errorf("audit: check session %s: find session.end: %w", id, err)
		}
		return e, true, nil
	}
	return storedEvent{}, false, nil
}

// checkLinks checks ev's own hash and its links to its neighbours, and
// reports what fails.
func (c *SessionCheck) checkLinks(ctx context.Context, tx *sql.Tx, ev storedEvent) bool {
	ok := true
	prev, good := decodeHash(ev.prev)
	if !good {
		c.problem("session.end event (seq %d): malformed prev_hash", ev.seq)
		return false
	}
	if sum := eventHash(prev, canonicalEvent(ev.seq, ev.row)); hex.EncodeToString(sum[:]) != ev.hash {
		c.problem("session.end event (seq %d): hash mismatch: the event was altered", ev.seq)
		ok = false
	}
	want := genesisHash
	if ev.seq > 1 {
		var h string
		err := tx.QueryRowContext(ctx, `SELECT hash FROM audit_events WHERE seq = ?`, ev.seq-1).Scan(&h)
		switch {
		case errors.Is(err, sql.ErrNoRows):
			c.problem("the event before the session.end event (seq %d) is missing (deleted?)", ev.seq-1)
			return false
		case err != nil:
			c.problem("cannot read the event before the session.end event: %v", err)
			return false
		}
		want = h
	}
	if ev.prev != want {
		c.problem("session.end event (seq %d): prev_hash does not match the hash of the event before it", ev.seq)
		ok = false
	}
	var nextSeq int64
	var nextPrev string
	err := tx.QueryRowContext(ctx, `SELECT seq, prev_hash FROM audit_events WHERE seq > ? ORDER BY seq LIMIT 1`, ev.seq).
		Scan(&nextSeq, &nextPrev)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		// The head of the chain: nothing after it to link to.
	case err != nil:
		c.problem("cannot read the event after the session.end event: %v", err)
		ok = false
	case nextSeq != ev.seq+1:
		c.problem("events missing after the session.end event: seq jumps from %d to %d (deleted?)", ev.seq, nextSeq)
		ok = false
	case nextPrev != ev.hash:
		c.problem("the event after the session.end event (seq %d) does not link to it: the session.end event was altered", nextSeq)
		ok = false
	}
	return ok
}
