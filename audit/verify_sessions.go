package audit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/warden-gw/warden/recstore"
)

// sessionRow is what Verify compares of a sessions row.
type sessionRow struct {
	ended     bool
	rel, sum  string
	startedAt string
	sealed    bool // a sealed session.end event was found for it
	seen      bool // any session.end event was found for it
}

// endEvent is the part of a session.end event's data that Verify checks.
type endEvent struct {
	seq       int64
	id        string
	sealed    bool // carries the digests
	rel, sum  string
	commands  int64
	lastID    int64
	commandsH string
}

// verifySessions checks every session.end event against the evidence it
// binds, then the sessions and command rows that no event accounts for.
func verifySessions(ctx context.Context, tx *sql.Tx, recs recstore.Store, rep *VerifyReport) error {
	sessions, err := loadSessions(ctx, tx)
	if err != nil {
		return err
	}
	ends, err := loadEnds(ctx, tx, rep)
	if err != nil {
		return err
	}
	for _, e := range ends {
		if err := checkEnd(ctx, tx, recs, sessions, e, rep); err != nil {
			return err
		}
	}
	ids := make([]string, 0, len(sessions))
	for id := range sessions {
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool {
		a, b := sessions[ids[i]], sessions[ids[j]]
		return a.startedAt < b.startedAt || a.startedAt == b.startedAt && ids[i] < ids[j]
	})
	for _, id := range ids {
		s := sessions[id]
		switch {
		case !s.seen && !s.ended:
			rep.Live = append(rep.Live, id)
		case !s.seen:
			rep.Problems = append(rep.Problems, Problem{Session: id,
				Msg: "the session row says it ended, but the chain has no session.end event for it (row altered?)"})
		case !s.sealed && s.sum != "":
			// Written before events carried digests: the column is all
			// there is to compare with.
			rep.Recordings++
			checkFile(ctx, recs, id, s.rel, s.sum, "sessions.recording_sha256", rep)
		}
	}
	return strayCommands(ctx, tx, rep)
}

// checkEnd checks one session.end event.
func checkEnd(ctx context.Context, tx *sql.Tx, recs recstore.Store, sessions map[string]*sessionRow, e endEvent, rep *VerifyReport) error {
	problem := func(format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{Seq: e.seq, Session: e.id, Msg: fmt.Sprintf(format, args...)})
	}
	s := sessions[e.id]
	if s == nil {
		problem("the chain ended this session at seq %d, but its session row is missing (deleted?)", e.seq)
		return nil
	}
	if s.seen {
		problem("a second session.end event (seq %d)", e.seq)
		return nil
	}
	s.seen, s.sealed = true, e.sealed
	if !e.sealed {
		rep.Unsealed++
		return nil
	}
	rep.Sessions++
	if !s.ended {
		problem("the chain says it ended (seq %d), the session row says it is open (row altered?)", e.seq)
	}
	if s.rel != e.rel {
		problem("sessions.recording_path %q differs from the chained %q (row altered?)", s.rel, e.rel)
	}
	if s.sum != e.sum {
		problem("sessions.recording_sha256 differs from the chained digest (row altered?)")
	}
	if e.sum != "" {
		rep.Recordings++
		checkFile(ctx, recs, e.id, e.rel, e.sum, "the chained digest", rep)
	}
	d, err := digestCommands(tx, e.id)
	if err != nil {
		return err
	}
	rep.Commands += int(e.commands)
	switch {
	case d.lastID > e.lastID:
		var first int64
		if err := tx.QueryRow(`SELECT MIN(id) FROM commands WHERE session_id = ? AND id > ?`, e.id, e.lastID).Scan(&first); err != nil {
			return fmt.Errorf("audit: verify commands of %s: %w", e.id, err)
		}
		rep.Problems = append(rep.Problems, Problem{Seq: e.seq, Session: e.id, Row: first,
			Msg: "command row not covered by the chain: added after the session ended"})
	case d.count < e.commands:
		problem("%d command row(s) missing: the chain recorded %d, the table holds %d (deleted?)", e.commands-d.count, e.commands, d.count)
	case d.count > e.commands:
		problem("%d command row(s) more than the chain recorded (%d) (inserted?)", d.count-e.commands, e.commands)
	case d.sum != e.commandsH || d.lastID != e.lastID:
		problem("command rows differ from the chained digest (edited?)")
	}
	return nil
}

// checkFile re-hashes a recording against want and records a problem.
func checkFile(ctx context.Context, recs recstore.Store, id, rel, want, against string, rep *VerifyReport) {
	p := Problem{Session: id, File: rel}
	if rel == "" {
		p.Msg = "digest recorded but no recording path"
	} else if got, msg := hashRecording(ctx, recs, rel); msg != "" {
		p.Msg = msg
	} else if got != want {
		p.Msg = "sha256 differs from " + against + ": the recording was altered"
	}
	if p.Msg != "" {
		rep.Problems = append(rep.Problems, p)
	}
}

func loadSessions(ctx context.Context, tx *sql.Tx) (map[string]*sessionRow, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, started_at, ended_at IS NOT NULL, recording_path, recording_sha256 FROM sessions`)
	if err != nil {
		return nil, fmt.Errorf("audit: verify sessions: %w", err)
	}
	defer rows.Close()
	m := map[string]*sessionRow{}
	for rows.Next() {
		var id string
		var s sessionRow
		var rel, sum sql.NullString
		if err := rows.Scan(&id, &s.startedAt, &s.ended, &rel, &sum); err != nil {
			return nil, fmt.Errorf("audit: verify sessions: %w", err)
		}
		s.rel, s.sum = rel.String, sum.String
		m[id] = &s
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: verify sessions: %w", err)
	}
	return m, nil
}

// loadEnds reads the session.end events in chain order. An event whose data
// cannot be read is a problem, not a failure to verify.
func loadEnds(ctx context.Context, tx *sql.Tx, rep *VerifyReport) ([]endEvent, error) {
	rows, err := tx.QueryContext(ctx, `SELECT seq, subject, data FROM audit_events WHERE type = ? ORDER BY seq`, EventSessionEnd)
	if err != nil {
		return nil, fmt.Errorf("audit: verify sessions: %w", err)
	}
	defer rows.Close()
	var list []endEvent
	for rows.Next() {
		var seq int64
		var subject, data string
		if err := rows.Scan(&seq, &subject, &data); err != nil {
			return nil, fmt.Errorf("audit: verify sessions: %w", err)
		}
		e, err := parseEnd(seq, subject, data)
		if err != nil {
			rep.Problems = append(rep.Problems, Problem{Seq: seq, Msg: "session.end data unreadable: " + err.Error()})
			continue
		}
		list = append(list, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: verify sessions: %w", err)
	}
	return list, nil
}

// parseEnd reads a session.end event. The session is data.session_id, or
// the subject in events that predate it there.
func parseEnd(seq int64, subject, data string) (endEvent, error) {
	dec := json.NewDecoder(bytes.NewReader([]byte(data)))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return endEvent{}, err
	}
	e := endEvent{seq: seq, id: subject}
	if id, ok := m[keySessionID].(string); ok && id != "" {
		e.id = id
	}
	if _, ok := m[keyCommandsSHA]; !ok {
		return e, nil
	}
	e.sealed = true
	var ok [5]bool
	e.rel, ok[0] = m[keyRecordingPath].(string)
	e.sum, ok[1] = m[keyRecordingSHA].(string)
	e.commandsH, ok[2] = m[keyCommandsSHA].(string)
	e.commands, ok[3] = intOf(m[keyCommands])
	e.lastID, ok[4] = intOf(m[keyCommandsLast])
	for _, good := range ok {
		if !good {
			return endEvent{}, fmt.Errorf("digest fields malformed")
		}
	}
	return e, nil
}

func intOf(v any) (int64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	i, err := n.Int64()
	return i, err == nil && i >= 0
}

// strayCommands reports command rows that name no session: the foreign key
// stops the gateway from writing them, but not the sqlite3 shell, which
// leaves foreign keys off.
func strayCommands(ctx context.Context, tx *sql.Tx, rep *VerifyReport) error {
	rows, err := tx.QueryContext(ctx, `SELECT c.id, c.session_id FROM commands c
		LEFT JOIN sessions s ON s.id = c.session_id WHERE s.id IS NULL ORDER BY c.id`)
	if err != nil {
		return fmt.Errorf("audit: verify commands: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var sid string
		if err := rows.Scan(&id, &sid); err != nil {
			return fmt.Errorf("audit: verify commands: %w", err)
		}
		rep.Problems = append(rep.Problems, Problem{Row: id, Msg: fmt.Sprintf("names session %q, which has no session row (inserted?)", sid)})
	}
	return rows.Err()
}
