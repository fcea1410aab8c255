package jit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/warden-gw/warden/audit"
)

// All SQL of the package lives here. Writes run inside an audit.Tx (the
// store's single writer); reads run on either a Tx or the read-only pool
// through the querier interface. Every value is a bound parameter: no
// text from users or the policy is ever spliced into a statement.

// querier is what both *audit.Tx and a read-only pool (via dbQuerier) offer.
type querier interface {
	QueryRow(query string, args ...any) *sql.Row
	Query(query string, args ...any) (*sql.Rows, error)
}

// dbQuerier runs queries on a pool under ctx.
type dbQuerier struct {
	ctx context.Context
	db  *sql.DB
}

func (q dbQuerier) QueryRow(query string, args ...any) *sql.Row {
	return q.db.QueryRowContext(q.ctx, query, args...)
}

func (q dbQuerier) Query(query string, args ...any) (*sql.Rows, error) {
	return q.db.QueryContext(q.ctx, query, args...)
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface{ Scan(dest ...any) error }

const requestColumns = `id, user, role, tenant, reason, ticket, duration, state, created_at, decided_at`

func scanRequest(s scanner) (Request, error) {
	var r Request
	var reason, ticket, decided sql.NullString
	var dur, created string
	if err := s.Scan(&r.ID, &r.User, &r.Role, &r.Tenant, &reason, &ticket, &dur, &r.State, &created, &decided); err != nil {
		return Request{}, err
	}
	r.Reason, r.Ticket = reason.String, ticket.String
	var err error
	if r.Duration, err = time.ParseDuration(dur); err != nil {
		return Request{}, fmt.Errorf("jit: request %d: bad duration %q", r.ID, dur)
	}
	if r.CreatedAt, err = audit.ParseTime(created); err != nil {
		return Request{}, fmt.Errorf("jit: request %d: %w", r.ID, err)
	}
	if r.DecidedAt, err = parseNullTime(decided); err != nil {
		return Request{}, fmt.Errorf("jit: request %d: %w", r.ID, err)
	}
	return r, nil
}

const grantColumns = `id, request_id, user, role, tenant, starts_at, expires_at, ended_at, end_reason`

func scanGrant(s scanner) (Grant, error) {
	var g Grant
	var reqID sql.NullInt64
	var starts, expires string
	var ended, reason sql.NullString
	if err := s.Scan(&g.ID, &reqID, &g.User, &g.Role, &g.Tenant, &starts, &expires, &ended, &reason); err != nil {
		return Grant{}, err
	}
	g.RequestID, g.EndReason = reqID.Int64, reason.String
	var err error
	if g.StartsAt, err = audit.ParseTime(starts); err != nil {
		return Grant{}, fmt.Errorf("jit: grant %d: %w", g.ID, err)
	}
	if g.ExpiresAt, err = audit.ParseTime(expires); err != nil {
		return Grant{}, fmt.Errorf("jit: grant %d: %w", g.ID, err)
	}
	if g.EndedAt, err = parseNullTime(ended); err != nil {
		return Grant{}, fmt.Errorf("jit: grant %d: %w", g.ID, err)
	}
	return g, nil
}

func parseNullTime(s sql.NullString) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	return audit.ParseTime(s.String)
}

// nullable stores an empty optional text as NULL, as every table does.
func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// loadRequest reads request id with its decisions.
func loadRequest(q querier, id int64) (Request, error) {
	r, err := scanRequest(q.QueryRow(`SELECT `+requestColumns+` FROM requests WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Request{}, refuse(ErrNotFound, "request %d does not exist", id)
	}
	if err != nil {
		return Request{}, fmt.Errorf("jit: read request %d: %w", id, err)
	}
	m, err := loadDecisions(q, `request_id = ?`, id)
	if err != nil {
		return Request{}, err
	}
	r.Approvals = m[id]
	return r, nil
}

// loadDecisions reads the decisions on the requests matching where (a
// constant condition on approvals), grouped by request, oldest first.
func loadDecisions(q querier, where string, args ...any) (map[int64][]Decision, error) {
	rows, err := q.Query(`SELECT request_id, approver, decision, comment, ts FROM approvals
		WHERE `+where+` ORDER BY request_id, ts, rowid`, args...)
	if err != nil {
		return nil, fmt.Errorf("jit: read approvals: %w", err)
	}
	defer rows.Close()
	out := map[int64][]Decision{}
	for rows.Next() {
		var id int64
		var d Decision
		var comment sql.NullString
		var ts string
		if err := rows.Scan(&id, &d.Approver, &d.Verdict, &comment, &ts); err != nil {
			return nil, fmt.Errorf("jit: read approvals: %w", err)
		}
		d.Comment = comment.String
		if d.At, err = audit.ParseTime(ts); err != nil {
			return nil, fmt.Errorf("jit: approval on request %d: %w", id, err)
		}
		out[id] = append(out[id], d)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("jit: read approvals: %w", err)
	}
	return out, nil
}

// listRequests reads the requests matching where (a constant condition),
// newest first, with their decisions.
func listRequests(q querier, where string, args ...any) ([]Request, error) {
	rows, err := q.Query(`SELECT `+requestColumns+` FROM requests WHERE `+where+` ORDER BY id DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("jit: list requests: %w", err)
	}
	defer rows.Close()
	var out []Request
	for rows.Next() {
		r, err := scanRequest(rows)
		if err != nil {
			return nil, fmt.Errorf("jit: list requests: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("jit: list requests: %w", err)
	}
	if len(out) == 0 {
		return out, nil
	}
	m, err := loadDecisions(q, `request_id IN (SELECT id FROM requests WHERE `+where+`)`, args...)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Approvals = m[out[i].ID]
	}
	return out, nil
}

// pendingRequestOf returns the ID of user's pending request for role, if any.
func pendingRequestOf(q querier, user, role string) (int64, bool, error) {
	var id int64
	err := q.QueryRow(`SELECT id FROM requests WHERE user = ? AND role = ? AND state = ? ORDER BY id LIMIT 1`,
		user, role, StatePending).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("jit: find pending request: %w", err)
	}
	return id, true, nil
}

// insertRequest stores r and returns its new ID.
func insertRequest(tx *audit.Tx, r Request) (int64, error) {
	created, err := audit.Time(r.CreatedAt)
	if err != nil {
		return 0, err
	}
	// RETURNING, not LastInsertId: the PostgreSQL store's driver has none.
	var id int64
	if err := tx.QueryRow(`INSERT INTO requests (user, role, tenant, reason, ticket, duration, state, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		r.User, r.Role, r.Tenant, nullable(r.Reason), nullable(r.Ticket), r.Duration.String(), r.State, created).Scan(&id); err != nil {
		return 0, fmt.Errorf("jit: store request: %w", err)
	}
	return id, nil
}

// closeRequest moves a pending request to state. The state condition makes
// the write a no-op for a request someone else closed, which the caller
// treats as a bug: it checked the state in the same transaction.
func closeRequest(tx *audit.Tx, id int64, state string, at time.Time) error {
	ts, err := audit.Time(at)
	if err != nil {
		return err
	}
	res, err := tx.Exec(`UPDATE requests SET state = ?, decided_at = ? WHERE id = ? AND state = ?`, state, ts, id, StatePending)
	if err != nil {
		return fmt.Errorf("jit: close request %d: %w", id, err)
	}
	return oneRow(res, "close request "+strconv.FormatInt(id, 10))
}

// insertDecision stores one approver's verdict. UNIQUE(request_id,
// approver) backs the one-decision-per-approver rule.
func insertDecision(tx *audit.Tx, id int64, d Decision) error {
	ts, err := audit.Time(d.At)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(`INSERT INTO approvals (request_id, approver, decision, comment, ts) VALUES (?, ?, ?, ?, ?)`,
		id, d.Approver, d.Verdict, nullable(d.Comment), ts); err != nil {
		return fmt.Errorf("jit: store decision on request %d: %w", id, err)
	}
	return nil
}

// insertGrant stores g, started under the policy of version policyVersion
// (policy.Config.Version; "" stores NULL), and returns its new ID. The
// evidence packet judges the grant by that policy, whatever it says later.
func insertGrant(tx *audit.Tx, g Grant, policyVersion string) (int64, error) {
	starts, err := audit.Time(g.StartsAt)
	if err != nil {
		return 0, err
	}
	expires, err := audit.Time(g.ExpiresAt)
	if err != nil {
		return 0, err
	}
	var id int64
	if err := tx.QueryRow(`INSERT INTO grants (request_id, user, role, tenant, starts_at, expires_at, policy_version)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, g.RequestID, g.User, g.Role, g.Tenant, starts, expires, nullable(policyVersion)).Scan(&id); err != nil {
		return 0, fmt.Errorf("jit: store grant: %w", err)
	}
	return id, nil
}

// loadGrant reads grant id.
func loadGrant(q querier, id int64) (Grant, error) {
	g, err := scanGrant(q.QueryRow(`SELECT `+grantColumns+` FROM grants WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Grant{}, refuse(ErrNotFound, "grant %d does not exist", id)
	}
	if err != nil {
		return Grant{}, fmt.Errorf("jit: read grant %d: %w", id, err)
	}
	return g, nil
}

// listGrants reads the grants matching where (a constant condition),
// newest first.
func listGrants(q querier, where string, args ...any) ([]Grant, error) {
	rows, err := q.Query(`SELECT `+grantColumns+` FROM grants WHERE `+where+` ORDER BY id DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("jit: list grants: %w", err)
	}
	defer rows.Close()
	var out []Grant
	for rows.Next() {
		g, err := scanGrant(rows)
		if err != nil {
			return nil, fmt.Errorf("jit: list grants: %w", err)
		}
		out = append(out, g)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("jit: list grants: %w", err)
	}
	return out, nil
}

// endGrant closes a running grant. Like closeRequest, it refuses to touch a
// grant that has already ended.
func endGrant(tx *audit.Tx, id int64, at time.Time, reason string) error {
	ts, err := audit.Time(at)
	if err != nil {
		return err
	}
	res, err := tx.Exec(`UPDATE grants SET ended_at = ?, end_reason = ? WHERE id = ? AND ended_at IS NULL`, ts, reason, id)
	if err != nil {
		return fmt.Errorf("jit: end grant %d: %w", id, err)
	}
	return oneRow(res, "end grant "+strconv.FormatInt(id, 10))
}

// hasEvent reports whether the audit chain holds an event of typ about
// subject; it makes one-time alerts (first use, expiry warning) survive a
// restart.
func hasEvent(q querier, typ, subject string) (bool, error) {
	var one int
	err := q.QueryRow(`SELECT 1 FROM audit_events WHERE type = ? AND subject = ? LIMIT 1`, typ, subject).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("jit: read audit events: %w", err)
	}
	return true, nil
}

func oneRow(res sql.Result, op string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("jit: %s: %w", op, err)
	}
	if n != 1 {
		return fmt.Errorf("jit: %s: %d rows changed, want 1", op, n)
	}
	return nil
}
