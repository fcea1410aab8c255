package evidence

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/warden-gw/warden/audit"
	castfile "github.com/warden-gw/warden/recorder"
	"github.com/warden-gw/warden/recstore"
)

// period is the span a packet covers, [start, end): a calendar month in
// UTC, or for the month in progress its start up to the build time.
type period struct {
	start, end       time.Time
	startTxt, endTxt string // stored-time text, for SQL comparisons
	partial          bool
}

func newPeriod(month, now time.Time) (period, error) {
	p := period{start: month, end: month.AddDate(0, 1, 0)}
	if now.Before(p.end) {
		p.end, p.partial = now, true
	}
	var err error
	if p.startTxt, err = audit.Time(p.start); err != nil {
		return p, err
	}
	p.endTxt, err = audit.Time(p.end)
	return p, err
}

// dataset is everything a packet is made from, read in one snapshot.
type dataset struct {
	requests   []requestRow
	approvals  []approvalRow
	grants     []grantRow
	sessions   []sessionRow
	commands   []commandRow
	exceptions []exceptionRow
	recordings []recordingRow

	rotationEvents []rotationRow  // rotation.result events in the period
	lifecycle      []lifecycleRow // directory joiners, movers, leavers (lifecycle.go)

	versionMismatch []versionMismatch // grants whose row and chain disagree on the policy
	rowProblems     []audit.Problem   // the packet's requests and grants whose rows disagree with the chain
	prevHead        string            // what checkPrevHead found of the previous packet's chain head ("": fine)

	approvers map[int64][]string // break-glass grant ID -> who approved its request, sorted
	pending   []pendingRequest   // undecided at the end of the period, whenever created
	flagged   []staleEvent       // reconcile.stale_admin events in the period
	rotations []rotation         // rotation.result events before the end
	chainHead string             // hash of the last audit event before the end

	owedRotations []owedRotation // rotations owed at the end (rotations.go)
}

// pendingRequest is a request still undecided at the end of the period.
type pendingRequest struct {
	ID        int64
	User      string
	Role      string
	CreatedAt time.Time
}

type staleEvent struct {
	User        string
	ExceptionID string
}

// collect reads the tenant's rows for p from one read transaction, so that
// every file and number of a packet comes from the same snapshot.
//
// Periods are overlaps: a request, grant or session is in every packet
// whose period it overlaps (begun before the end, not over before the
// start), and an event (approval, command, rotation) in the packet of the
// period that holds its time. So nothing that happened falls between two
// packets. Columns that changed after the end of the period are shown as
// they stood then: a grant revoked on the 2nd is active in the packet of
// the month before, and revoked in the next one.
func collect(tx *sql.Tx, recs recstore.Store, tenant string, p period, j *judges) (*dataset, error) {
	d := &dataset{}
	steps := []struct {
		what string
		fn   func() error
	}{
		{"requests", func() error { return d.readRequests(tx, tenant, p) }},
		{"approvals", func() error { return d.readApprovals(tx, tenant, p) }},
		{"grants", func() error { return d.readGrants(tx, tenant, p, j) }},
		{"break-glass approvers", func() error { return d.readApprovers(tx, p) }},
		{"sessions", func() error { return d.readSessions(tx, tenant, p, j) }},
		{"commands", func() error { return d.readCommands(tx, tenant, p) }},
		{"exceptions", func() error { return d.readExceptions(tx, tenant, p) }},
		{"pending requests", func() error { return d.readPending(tx, tenant, p) }},
		{"audit events", func() error { return d.readEvents(tx, tenant, p) }},
		{"directory changes", func() error { return d.readLifecycle(tx, tenant, p) }},
		{"owed rotations", func() error { return d.readOwedRotations(tx, tenant, p) }},
		{"rows against the chain", func() error { return d.readRowProblems(tx) }},
	}
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return nil, fmt.Errorf("evidence: read %s: %w", s.what, err)
		}
	}
	d.recordings = indexRecordings(recs, d.sessions)
	return d, nil
}

// each runs query and calls scan for every row.
func each(tx *sql.Tx, query string, args []any, scan func(*sql.Rows) error) error {
	rows, err := tx.Query(query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (d *dataset) readRequests(tx *sql.Tx, tenant string, p period) error {
	// A request decided after the end was still pending at the end.
	return each(tx, `SELECT id, user, role, tenant, reason, ticket, duration,
			CASE WHEN decided_at >= ?1 THEN 'pending' ELSE state END, created_at,
			CASE WHEN decided_at < ?1 THEN decided_at END
		FROM requests WHERE tenant = ?2 AND created_at < ?1 AND (decided_at IS NULL OR decided_at >= ?3)
		ORDER BY created_at, id`, []any{p.endTxt, tenant, p.startTxt}, func(rows *sql.Rows) error {
		var r requestRow
		var reason, ticket, decided sql.NullString
		if err := rows.Scan(&r.ID, &r.User, &r.Role, &r.Tenant, &reason, &ticket, &r.Duration, &r.State,
			&r.CreatedAt, &decided); err != nil {
			return err
		}
		r.Reason, r.Ticket, r.DecidedAt = nullStr(reason), nullStr(ticket), nullStr(decided)
		d.requests = append(d.requests, r)
		return nil
	})
}

func (d *dataset) readApprovals(tx *sql.Tx, tenant string, p period) error {
	return each(tx, `SELECT a.request_id, a.approver, a.decision, a.comment, a.ts, r.role
		FROM approvals a JOIN requests r ON r.id = a.request_id
		WHERE r.tenant = ? AND a.ts >= ? AND a.ts < ? ORDER BY a.ts, a.request_id, a.approver`,
		[]any{tenant, p.startTxt, p.endTxt}, func(rows *sql.Rows) error {
			var a approvalRow
			var comment sql.NullString
			if err := rows.Scan(&a.RequestID, &a.Approver, &a.Decision, &comment, &a.TS, &a.Role); err != nil {
				return err
			}
			a.Comment = nullStr(comment)
			d.approvals = append(d.approvals, a)
			return nil
		})
}

// readGrants reads the grants in force at some time in the period: started
// before its end, and ended (or expired) at or after its start. Each is
// judged by the policy it was granted under (see judges).
func (d *dataset) readGrants(tx *sql.Tx, tenant string, p period, j *judges) error {
	err := each(tx, `SELECT id, request_id, user, role, tenant, starts_at, expires_at,
			CASE WHEN ended_at < ?1 THEN ended_at END, CASE WHEN ended_at < ?1 THEN end_reason END, policy_version
		FROM grants WHERE tenant = ?2 AND starts_at < ?1 AND min(COALESCE(ended_at, expires_at), expires_at) >= ?3
		ORDER BY starts_at, id`,
		[]any{p.endTxt, tenant, p.startTxt}, func(rows *sql.Rows) error {
			var g grantRow
			var req sql.NullInt64
			var ended, reason, version sql.NullString
			if err := rows.Scan(&g.ID, &req, &g.User, &g.Role, &g.Tenant, &g.StartsAt, &g.ExpiresAt, &ended, &reason,
				&version); err != nil {
				return err
			}
			g.RequestID, g.EndedAt, g.EndReason, g.PolicyVersion = nullInt(req), nullStr(ended), nullStr(reason), version.String
			switch {
			case reason.Valid:
				g.State = reason.String
			case g.ExpiresAt <= p.endTxt:
				g.State = "expired" // past its expiry, whether or not the row says so yet
			default:
				g.State = "active"
			}
			end := g.ExpiresAt
			if ended.Valid {
				end = ended.String
			}
			secs, err := secondsBetween(g.StartsAt, end)
			if err != nil {
				return fmt.Errorf("grant %d: %w", g.ID, err)
			}
			g.DurationSeconds = secs
			d.grants = append(d.grants, g)
			return nil
		})
	if err != nil {
		return err
	}
	// The version is also in the hash chain (the request.approved event
	// that started the grant). The chain wins: someone who can edit
	// grants.policy_version to an older, laxer policy must not change the
	// verdict, and the packet reports the disagreement.
	chained, err := chainedVersions(tx, p)
	if err != nil {
		return err
	}
	// Judged after the scan: the policies are read in the same snapshot.
	for i := range d.grants {
		g := &d.grants[i]
		version := g.PolicyVersion
		if c, ok := chained[g.ID]; ok && c != g.PolicyVersion {
			d.versionMismatch = append(d.versionMismatch, versionMismatch{GrantID: g.ID, Row: g.PolicyVersion, Chain: c})
			version = c
		}
		cfg, current, err := j.forRow(tx, version)
		if err != nil {
			return err
		}
		if u := j.use(cfg, current); u != nil {
			u.Grants++
			g.JudgedBy, g.JudgedByCurrent = u.SHA256, current
		}
		if cfg != nil {
			r := cfg.Role(g.Role)
			g.BreakGlass = r != nil && r.BreakGlass && r.Tenant == g.Tenant
		}
	}
	return nil
}

// versionMismatch is a grant whose row names another policy version than
// the audit event that started it.
type versionMismatch struct {
	GrantID    int64
	Row, Chain string
}

// chainedVersions maps grant IDs to the policy version recorded in the
// request.approved event that started them, before the end of p.
func chainedVersions(tx *sql.Tx, p period) (map[int64]string, error) {
	out := map[int64]string{}
	err := each(tx, `SELECT json_extract(data, '$.grant_id'), json_extract(data, '$.policy_version') FROM audit_events
		WHERE type = 'request.approved' AND ts < ? AND json_extract(data, '$.policy_version') IS NOT NULL`,
		[]any{p.endTxt}, func(rows *sql.Rows) error {
			var id sql.NullInt64
			var v string
			if err := rows.Scan(&id, &v); err != nil {
				return err
			}
			if id.Valid {
				out[id.Int64] = v
			}
			return nil
		})
	return out, err
}

// readApprovers finds who approved each break-glass grant's request. The
// decisions may predate the period (a request approved on the 31st is
// used on the 1st), so they are looked up by request, not by month.
func (d *dataset) readApprovers(tx *sql.Tx, p period) error {
	d.approvers = map[int64][]string{}
	for _, g := range d.grants {
		if !g.BreakGlass || g.RequestID == nil {
			continue
		}
		var names []string
		err := each(tx, `SELECT approver, decision FROM approvals WHERE request_id = ? AND ts < ? ORDER BY approver`,
			[]any{*g.RequestID, p.endTxt}, func(rows *sql.Rows) error {
				var name, decision string
				if err := rows.Scan(&name, &decision); err != nil {
					return err
				}
				if decisionKind(decision) == "approve" {
					names = append(names, name)
				}
				return nil
			})
		if err != nil {
			return err
		}
		d.approvers[g.ID] = names
	}
	return nil
}

// readSessions reads the sessions live at some time in the period. A
// session still running at the end shows no end, exit status, byte counts
// or recording digest: those came later, and its recording is re-hashed
// in the packet of the month in which it ends.
func (d *dataset) readSessions(tx *sql.Tx, tenant string, p period, j *judges) error {
	err := each(tx, `SELECT id, user, login, host, tenant, role, grant_id, client_addr, started_at,
			CASE WHEN ended_at < ?1 THEN ended_at END, CASE WHEN ended_at < ?1 THEN end_reason END,
			CASE WHEN ended_at < ?1 THEN exit_status END, recording_path,
			CASE WHEN ended_at < ?1 THEN recording_sha256 END,
			CASE WHEN ended_at < ?1 THEN bytes_in ELSE 0 END, CASE WHEN ended_at < ?1 THEN bytes_out ELSE 0 END,
			policy_version
		FROM sessions WHERE tenant = ?2 AND started_at < ?1 AND (ended_at IS NULL OR ended_at >= ?3)
		ORDER BY started_at, id`,
		[]any{p.endTxt, tenant, p.startTxt}, func(rows *sql.Rows) error {
			var s sessionRow
			var role, client, ended, reason, rec, sum, version sql.NullString
			var grant, exit sql.NullInt64
			if err := rows.Scan(&s.ID, &s.User, &s.Login, &s.Host, &s.Tenant, &role, &grant, &client, &s.StartedAt,
				&ended, &reason, &exit, &rec, &sum, &s.BytesIn, &s.BytesOut, &version); err != nil {
				return err
			}
			s.PolicyVersion = version.String
			s.Role, s.GrantID, s.ClientAddr, s.EndedAt = nullStr(role), nullInt(grant), nullStr(client), nullStr(ended)
			s.EndReason, s.ExitStatus, s.RecordingPath, s.RecordingSHA256 = nullStr(reason), nullInt(exit), nullStr(rec), nullStr(sum)
			s.Privileged = grant.Valid
			if ended.Valid {
				secs, err := secondsBetween(s.StartedAt, ended.String)
				if err != nil {
					return fmt.Errorf("session %s: %w", s.ID, err)
				}
				s.DurationSeconds = &secs
			}
			d.sessions = append(d.sessions, s)
			return nil
		})
	if err != nil {
		return err
	}
	// No verdict depends on a session's policy; the versions sessions ran
	// under are listed so the auditor sees which policies were in force.
	for _, s := range d.sessions {
		cfg, err := j.version(tx, s.PolicyVersion)
		if err != nil {
			return err
		}
		if u := j.use(cfg, false); u != nil {
			u.Sessions++
		}
	}
	return nil
}

func (d *dataset) readCommands(tx *sql.Tx, tenant string, p period) error {
	return each(tx, `SELECT id, session_id, ts, user, login, host, tenant, source, command, action, rule
		FROM commands WHERE tenant = ? AND ts >= ? AND ts < ? ORDER BY ts, id`,
		[]any{tenant, p.startTxt, p.endTxt}, func(rows *sql.Rows) error {
			var c commandRow
			var rule sql.NullString
			if err := rows.Scan(&c.ID, &c.SessionID, &c.TS, &c.User, &c.Login, &c.Host, &c.Tenant, &c.Source,
				&c.Command, &c.Action, &rule); err != nil {
				return err
			}
			c.Rule = nullStr(rule)
			d.commands = append(d.commands, c)
			return nil
		})
}

func (d *dataset) readExceptions(tx *sql.Tx, tenant string, p period) error {
	// Every entry in force at some time in the period, as it stood at the end.
	return each(tx, `SELECT id, tenant, owner, reason, controls, expires_at, created_by, created_at,
			CASE WHEN closed_at < ?1 THEN closed_at END, CASE WHEN closed_at < ?1 THEN closed_by END,
			CASE WHEN closed_at < ?1 THEN close_note END
		FROM exceptions WHERE tenant = ?2 AND created_at < ?1 AND (closed_at IS NULL OR closed_at >= ?3)
		ORDER BY id`, []any{p.endTxt, tenant, p.startTxt}, func(rows *sql.Rows) error {
		var e exceptionRow
		var closedAt, closedBy, note sql.NullString
		if err := rows.Scan(&e.ID, &e.Tenant, &e.Owner, &e.Reason, &e.Controls, &e.ExpiresAt, &e.CreatedBy,
			&e.CreatedAt, &closedAt, &closedBy, &note); err != nil {
			return err
		}
		e.ClosedAt, e.ClosedBy, e.CloseNote = nullStr(closedAt), nullStr(closedBy), nullStr(note)
		switch {
		case closedAt.Valid:
			e.Status = "closed"
		case e.ExpiresAt < p.endTxt:
			e.Status, e.Expired = "expired", true
		default:
			e.Status = "open"
		}
		d.exceptions = append(d.exceptions, e)
		return nil
	})
}

func (d *dataset) readPending(tx *sql.Tx, tenant string, p period) error {
	return each(tx, `SELECT id, user, role, created_at FROM requests r
		WHERE tenant = ?2 AND created_at < ?1
		  AND ((decided_at IS NULL AND state = 'pending') OR decided_at >= ?1)
		  AND NOT EXISTS (SELECT 1 FROM grants g WHERE g.request_id = r.id AND g.starts_at < ?1)
		ORDER BY created_at, id`, []any{p.endTxt, tenant}, func(rows *sql.Rows) error {
		var r pendingRequest
		var created string
		if err := rows.Scan(&r.ID, &r.User, &r.Role, &created); err != nil {
			return err
		}
		var err error
		if r.CreatedAt, err = audit.ParseTime(created); err != nil {
			return fmt.Errorf("request %d: %w", r.ID, err)
		}
		d.pending = append(d.pending, r)
		return nil
	})
}

// secondsBetween is the whole seconds from one stored time to another.
func secondsBetween(from, to string) (int64, error) {
	a, err := audit.ParseTime(from)
	if err != nil {
		return 0, err
	}
	b, err := audit.ParseTime(to)
	if err != nil {
		return 0, err
	}
	return int64(b.Sub(a) / time.Second), nil
}

// indexRecordings lists the recordings of sessions and re-hashes each
// finished one against its recorded digest.
func indexRecordings(recs recstore.Store, sessions []sessionRow) []recordingRow {
	var out []recordingRow
	for _, s := range sessions {
		if s.RecordingPath == nil {
			continue
		}
		r := recordingRow{SessionID: s.ID, User: s.User, Host: s.Host, StartedAt: s.StartedAt, Path: *s.RecordingPath}
		if s.RecordingSHA256 == nil {
			r.Status = "unfinished"
		} else {
			r.SHA256 = *s.RecordingSHA256
			r.Status, r.Size = checkRecordingIn(recs, r.Path, r.SHA256)
		}
		out = append(out, r)
	}
	return out
}

// checkRecording re-hashes one recording. The path comes from the database,
// which anyone who can write the file can edit, so it must stay inside the
// data directory before it is opened.
func checkRecording(dataDir, rel, want string) (status string, size int64) {
	return checkRecordingIn(recstore.Local{Dir: dataDir}, rel, want)
}

// checkRecordingIn is checkRecording reading from recs (recordings.store).
func checkRecordingIn(recs recstore.Store, rel, want string) (status string, size int64) {
	// recstore's stores apply the one check every reader of a stored path
	// uses (castfile.OpenRecording: lexical, then inside the data directory
	// (os.Root), and never through a symlink; recstore.Key for object
	// keys), so a row pointing at /etc/shadow or a planted link is
	// reported, not hashed.
	f, err := recs.Open(context.Background(), rel)
	switch {
	case errors.Is(err, castfile.ErrUnsafePath):
		return "unsafe-path", 0
	case errors.Is(err, os.ErrNotExist):
		return "missing", 0
	case err != nil:
		return "unreadable", 0
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "unreadable", 0
	}
	if hex.EncodeToString(h.Sum(nil)) != want {
		return "mismatch", n
	}
	return "ok", n
}

// readRowProblems keeps what audit.CheckRows finds about the requests and
// grants this packet lists: an approver added to a break-glass request, a
// denial turned into an approval, a grant extended or inserted. The packet
// reports such rows as they are stored, and must not present them as fact
// without saying that the chain disagrees. (A row deleted altogether is
// not in the packet; audit verify reports it.)
func (d *dataset) readRowProblems(tx *sql.Tx) error {
	probs, err := audit.CheckRows(context.Background(), tx)
	if err != nil {
		return err
	}
	reqs, grants := map[int64]bool{}, map[int64]bool{}
	for _, r := range d.requests {
		reqs[r.ID] = true
	}
	for _, g := range d.grants {
		grants[g.ID] = true
	}
	for _, pr := range probs {
		if (pr.Request != 0 && reqs[pr.Request]) || (pr.Grant != 0 && grants[pr.Grant]) {
			d.rowProblems = append(d.rowProblems, pr)
		}
	}
	return nil
}
