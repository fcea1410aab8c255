package audit

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
)

// Request events as package jit writes them, in the transaction that
// writes the row (doc.go, "What the chain binds"). The evidence packet
// reads who asked, for what and why from requests, and who approved from
// approvals (a break-glass grant's "two distinct approvers" among them),
// so an edit of either table must fail verify as an edit of grants does.
const (
	requestCreated  = "request.created"
	approvalOK      = "approval.recorded" // one approver approved
	requestApproved = "request.approved"
	requestDenied   = "request.denied" // one approver denied, which closes it
)

// requestEnds maps a closed request's state to the event that closed it.
var requestEnds = map[string]string{
	"approved": requestApproved, "denied": requestDenied,
	"cancelled": "request.cancelled", "expired": "request.expired",
}

// chainEvent is one event about a row, its data decoded.
type chainEvent struct {
	seq     int64
	ts, typ string
	data    map[string]any
	matched bool // set once a row is matched with the event
}

func (e chainEvent) str(k string) string { s, _ := e.data[k].(string); return s }

// rowEvents reads the events of the given types, in chain order, grouped by
// the row ID their data holds under key. An event that names no row is a
// problem: it cannot be checked against anything.
func rowEvents(ctx context.Context, tx *sql.Tx, rep *VerifyReport, key string, types ...string) (map[int64][]chainEvent, error) {
	args := make([]any, len(types))
	marks := make([]byte, 0, 2*len(types))
	for i, t := range types {
		args[i] = t
		if i > 0 {
			marks = append(marks, ',')
		}
		marks = append(marks, '?')
	}
	rows, err := tx.QueryContext(ctx, `SELECT seq, ts, type, data FROM audit_events WHERE type IN (`+string(marks)+`) ORDER BY seq`, args...)
	if err != nil {
		return nil, fmt.Errorf("audit: verify %s rows: %w", key, err)
	}
	defer rows.Close()
	m := map[int64][]chainEvent{}
	for rows.Next() {
		var e chainEvent
		var data string
		if err := rows.Scan(&e.seq, &e.ts, &e.typ, &data); err != nil {
			return nil, fmt.Errorf("audit: verify %s rows: %w", key, err)
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(data)))
		dec.UseNumber()
		id, ok := int64(0), false
		if dec.Decode(&e.data) == nil {
			id, ok = intOf(e.data[key])
		}
		if !ok || id == 0 {
			rep.Problems = append(rep.Problems, Problem{Seq: e.seq, Msg: e.typ + " data names no " + key})
			continue
		}
		m[id] = append(m[id], e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: verify %s rows: %w", key, err)
	}
	return m, nil
}

// requestRow is a requests row with its decisions (approvals rows).
type requestRow struct {
	user, role, tenant, reason, ticket, duration string
	state, createdAt, decidedAt                  string
	decisions                                    []decisionRow
	orphan                                       bool // only approvals rows name it
}

type decisionRow struct{ approver, decision, comment, ts string }

// verifyRequests compares every requests row and every approvals row with
// the chain: the row must have its request.created event and agree with
// it, a closed request must have the one event that closed it, and each
// decision must have its approval.recorded (approve) or request.denied
// (deny) event by that approver at that time. Without this an approver
// inserted into approvals (a second one for break-glass), a denial turned
// into an approval, or a request's reason rewritten passed verify and went
// into the evidence packet as fact.
func verifyRequests(ctx context.Context, tx *sql.Tx, rep *VerifyReport) error {
	rows, err := loadRequestRows(ctx, tx)
	if err != nil {
		return err
	}
	chain, err := rowEvents(ctx, tx, rep, "request_id", requestCreated, approvalOK, requestApproved, requestDenied,
		"request.cancelled", "request.expired")
	if err != nil {
		return err
	}
	for _, id := range unionIDs(rows, chain) {
		row, evs := rows[id], chain[id]
		problem := func(seq int64, format string, args ...any) {
			rep.Problems = append(rep.Problems, Problem{Seq: seq, Request: id, Msg: fmt.Sprintf(format, args...)})
		}
		switch {
		case row == nil:
			problem(evs[0].seq, "the chain holds events of this request, but its row is missing (deleted?)")
			continue
		case row.orphan:
			problem(0, "approvals rows name this request, but its row is missing (deleted, or decisions inserted?)")
			continue
		}
		var created, closed *chainEvent
		for i := range evs {
			e := &evs[i]
			switch {
			case e.typ == requestCreated && created != nil, e.typ != requestCreated && e.typ != approvalOK && closed != nil:
				problem(e.seq, "a second %s event", e.typ)
			case e.typ == requestCreated:
				created = e
			case e.typ != approvalOK:
				closed = e
			}
		}
		if created == nil {
			problem(0, "no %s event in the chain (row inserted?)", requestCreated)
			continue
		}
		rep.Requests++
		for _, f := range []struct{ col, row, chain string }{
			{"user", row.user, created.str("user")}, {"role", row.role, created.str("role")},
			{"tenant", row.tenant, created.str("tenant")}, {"reason", row.reason, created.str("reason")},
			{"ticket", row.ticket, created.str("ticket")}, {"duration", row.duration, created.str("duration")},
		} {
			if f.row != f.chain {
				problem(created.seq, "requests.%s %q differs from the chain's %q (row altered?)", f.col, f.row, f.chain)
			}
		}
		if !sameInstant(row.createdAt, created.ts) {
			problem(created.seq, "requests.created_at %s differs from the chain's %s (row altered?)", row.createdAt, created.ts)
		}
		checkRequestState(row, closed, problem)
		checkDecisions(row, evs, problem)
	}
	return nil
}

// checkRequestState compares a request's state with the event that closed
// it (nil: none). decided_at is compared too, except for an expiry, whose
// row holds when the TTL ended and whose event when it was noticed.
func checkRequestState(row *requestRow, closed *chainEvent, problem func(int64, string, ...any)) {
	switch {
	case closed == nil && row.state != "pending":
		problem(0, "the row says %s, the chain never closed the request (row altered?)", row.state)
	case closed == nil:
	case requestEnds[row.state] != closed.typ:
		problem(closed.seq, "requests.state %q differs from the chain's %s (row altered?)", row.state, closed.typ)
	case closed.typ != "request.expired" && !sameInstant(row.decidedAt, closed.ts):
		problem(closed.seq, "requests.decided_at %s differs from the chain's %s (row altered?)", row.decidedAt, closed.ts)
	}
}

// checkDecisions matches a request's approvals rows with its decision
// events, one to one: a row without its event was inserted or altered, an
// event without its row means the row was deleted.
func checkDecisions(row *requestRow, evs []chainEvent, problem func(int64, string, ...any)) {
	for _, d := range row.decisions {
		// "approve" and "deny" are read as the evidence packet reads
		// them (evidence/summary.go, decisionKind).
		want := map[string]string{"approved": approvalOK, "approve": approvalOK, "denied": requestDenied, "deny": requestDenied}[d.decision]
		if want == "" {
			problem(0, "approvals row of %q holds the decision %q, neither approved nor denied (row altered?)", d.approver, d.decision)
			continue
		}
		found := false
		for i := range evs {
			e := &evs[i]
			if e.typ == want && !e.matched && e.str("approver") == d.approver {
				e.matched, found = true, true
				if !sameInstant(d.ts, e.ts) || d.comment != e.str("comment") {
					problem(e.seq, "the decision of %q differs from the chain's (ts %s, comment %q) (row altered?)", d.approver, e.ts, e.str("comment"))
				}
				break
			}
		}
		if !found {
			problem(0, "approvals row of %q (%s) has no %s event in the chain (row inserted or altered?)", d.approver, d.decision, want)
		}
	}
	for _, e := range evs {
		if (e.typ == approvalOK || e.typ == requestDenied) && !e.matched {
			problem(e.seq, "the chain holds %s by %q, but its approvals row is missing (deleted?)", e.typ, e.str("approver"))
		}
	}
}

func loadRequestRows(ctx context.Context, tx *sql.Tx) (map[int64]*requestRow, error) {
	m := map[int64]*requestRow{}
	rows, err := tx.QueryContext(ctx, `SELECT id, user, role, tenant, COALESCE(reason, ''), COALESCE(ticket, ''), duration,
		state, created_at, COALESCE(decided_at, '') FROM requests`)
	if err != nil {
		return nil, fmt.Errorf("audit: verify requests: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var r requestRow
		if err := rows.Scan(&id, &r.user, &r.role, &r.tenant, &r.reason, &r.ticket, &r.duration, &r.state, &r.createdAt, &r.decidedAt); err != nil {
			return nil, fmt.Errorf("audit: verify requests: %w", err)
		}
		m[id] = &r
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: verify requests: %w", err)
	}
	rows.Close()
	drows, err := tx.QueryContext(ctx, `SELECT request_id, approver, decision, COALESCE(comment, ''), ts FROM approvals ORDER BY ts, approver`)
	if err != nil {
		return nil, fmt.Errorf("audit: verify approvals: %w", err)
	}
	defer drows.Close()
	for drows.Next() {
		var id int64
		var d decisionRow
		if err := drows.Scan(&id, &d.approver, &d.decision, &d.comment, &d.ts); err != nil {
			return nil, fmt.Errorf("audit: verify approvals: %w", err)
		}
		r := m[id]
		if r == nil {
			// A decision on no request (the sqlite3 shell leaves
			// foreign keys off): kept, to be reported.
			r = &requestRow{orphan: true}
			m[id] = r
		}
		r.decisions = append(r.decisions, d)
	}
	if err := drows.Err(); err != nil {
		return nil, fmt.Errorf("audit: verify approvals: %w", err)
	}
	return m, nil
}

// unionIDs lists the IDs of rows and of chain, in order.
func unionIDs[R, E any](rows map[int64]R, chain map[int64]E) []int64 {
	ids := make([]int64, 0, len(rows)+len(chain))
	for id := range rows {
		ids = append(ids, id)
	}
	for id := range chain {
		if _, ok := rows[id]; !ok {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids
}
