package audit

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Grant events as package jit (and evidence's reconcile) write them: the
// grants table is what the gateway admits sessions by and what the
// evidence packet lists, and these events are its record in the chain.
var grantEndTypes = map[string]bool{
	"grant.expired": true, "grant.revoked": true, "grant.relinquished": true, "grant.deprovisioned": true,
}

const grantStarted = "grant.started"

// grantFacts is what a grants row or its events say about one grant.
type grantFacts struct {
	user, role, tenant  string
	startsAt, expiresAt string
	endedAt, endReason  string
	requestID           int64 // 0: none
	startSeq, endSeq    int64 // events found (0: none)
}

// verifyGrants compares every grants row with the chain. A row is what
// the gateway trusts at session start, so without this an UPDATE that
// extends a grant, reopens a revoked one or hands it to someone else, or
// an INSERT of a grant nobody approved, passed verify although the chain
// says otherwise. Each grant must have its grant.started event, agree with
// it on owner, role, tenant and window, and agree with its end event.
func verifyGrants(ctx context.Context, tx *sql.Tx, rep *VerifyReport) error {
	rows, err := loadGrantRows(ctx, tx)
	if err != nil {
		return err
	}
	chain, err := loadGrantEvents(ctx, tx, rep)
	if err != nil {
		return err
	}
	for _, id := range unionIDs(rows, chain) {
		row, ev := rows[id], chain[id]
		problem := func(seq int64, format string, args ...any) {
			rep.Problems = append(rep.Problems, Problem{Seq: seq, Grant: id, Msg: fmt.Sprintf(format, args...)})
		}
		switch {
		case row == nil:
			problem(ev.startSeq, "the chain holds events of this grant, but its row is missing (deleted?)")
			continue
		case ev == nil || ev.startSeq == 0:
			problem(0, "no grant.started event in the chain (row inserted?)")
			continue
		}
		rep.Grants++
		for _, f := range []struct{ col, row, chain string }{
			{"user", row.user, ev.user}, {"role", row.role, ev.role}, {"tenant", row.tenant, ev.tenant},
		} {
			if f.row != f.chain {
				problem(ev.startSeq, "grants.%s %q differs from the chain's %q (row altered?)", f.col, f.row, f.chain)
			}
		}
		if row.requestID != ev.requestID {
			// The request is what the packet shows as the grant's reason
			// and approvers: pointing the grant at another one would
			// give it someone else's approvals.
			problem(ev.startSeq, "grants.request_id %d differs from the chain's %d (row altered?)", row.requestID, ev.requestID)
		}
		for _, f := range []struct{ col, row, chain string }{
			{"starts_at", row.startsAt, ev.startsAt}, {"expires_at", row.expiresAt, ev.expiresAt},
		} {
			if !sameInstant(f.row, f.chain) {
				problem(ev.startSeq, "grants.%s %s differs from the chain's %s (row altered?)", f.col, f.row, f.chain)
			}
		}
		switch {
		case ev.endSeq == 0 && row.endedAt != "":
			problem(0, "the row says it ended (%s), the chain has no end event for it (row altered?)", row.endReason)
		case ev.endSeq == 0:
		case row.endedAt == "":
			problem(ev.endSeq, "the chain ended it (%s), the row says it is open (row altered?)", ev.endReason)
		case row.endReason != ev.endReason:
			problem(ev.endSeq, "grants.end_reason %q differs from the chain's %q (row altered?)", row.endReason, ev.endReason)
		case !sameInstant(row.endedAt, ev.endedAt):
			problem(ev.endSeq, "grants.ended_at %s differs from the chain's %s (row altered?)", row.endedAt, ev.endedAt)
		}
	}
	return nil
}

// sameInstant compares two RFC 3339 times, which the rows and the events
// spell with different precision.
func sameInstant(a, b string) bool {
	ta, errA := time.Parse(time.RFC3339Nano, a)
	tb, errB := time.Parse(time.RFC3339Nano, b)
	if errA != nil || errB != nil {
		return a == b
	}
	return ta.Equal(tb)
}

func loadGrantRows(ctx context.Context, tx *sql.Tx) (map[int64]*grantFacts, error) {
	rows, err := tx.QueryContext(ctx, `SELECT id, COALESCE(request_id, 0), user, role, tenant, starts_at, expires_at,
		COALESCE(ended_at, ''), COALESCE(end_reason, '') FROM grants`)
	if err != nil {
		return nil, fmt.Errorf("audit: verify grants: %w", err)
	}
	defer rows.Close()
	m := map[int64]*grantFacts{}
	for rows.Next() {
		var id int64
		var g grantFacts
		if err := rows.Scan(&id, &g.requestID, &g.user, &g.role, &g.tenant, &g.startsAt, &g.expiresAt, &g.endedAt, &g.endReason); err != nil {
			return nil, fmt.Errorf("audit: verify grants: %w", err)
		}
		m[id] = &g
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("audit: verify grants: %w", err)
	}
	return m, nil
}

// loadGrantEvents reads the grant.started and grant end events, in chain
// order. A second start or end of one grant is a problem.
func loadGrantEvents(ctx context.Context, tx *sql.Tx, rep *VerifyReport) (map[int64]*grantFacts, error) {
	byID, err := rowEvents(ctx, tx, rep, "grant_id", grantStarted, "grant.expired", "grant.revoked", "grant.relinquished", "grant.deprovisioned")
	if err != nil {
		return nil, err
	}
	m := map[int64]*grantFacts{}
	for id, evs := range byID {
		g := &grantFacts{}
		m[id] = g
		for _, e := range evs {
			switch {
			case e.typ == grantStarted && g.startSeq != 0, grantEndTypes[e.typ] && g.endSeq != 0:
				rep.Problems = append(rep.Problems, Problem{Seq: e.seq, Grant: id, Msg: "a second " + e.typ + " event"})
			case e.typ == grantStarted:
				g.startSeq = e.seq
				g.user, g.role, g.tenant = e.str("user"), e.str("role"), e.str("tenant")
				g.startsAt, g.expiresAt = e.str("starts_at"), e.str("expires_at")
				g.requestID, _ = intOf(e.data["request_id"])
			default:
				g.endSeq = e.seq
				g.endedAt, g.endReason = e.str("ended_at"), e.str("end_reason")
			}
		}
	}
	return m, nil
}
