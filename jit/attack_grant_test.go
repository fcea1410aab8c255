package jit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
)

// verifyProblems runs audit.Verify on the environment's store and returns
// its findings as lines.
func (e *env) verifyProblems() []string {
	e.t.Helper()
	rep, err := audit.Verify(context.Background(), e.dir)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, p := range rep.Problems {
		out = append(out, p.String())
	}
	return out
}

// tamperFound runs query through the writer, as the sqlite3 shell would
// (no event), and requires audit verify to report a problem containing
// want.
func (e *env) tamperFound(name, query, want string) {
	e.t.Helper()
	if err := e.store.Update(context.Background(), func(tx *audit.Tx) error {
		_, err := tx.Exec(query)
		return err
	}); err != nil {
		e.t.Fatal(err)
	}
	got := e.verifyProblems()
	for _, p := range got {
		if strings.Contains(p, want) {
			return
		}
	}
	e.t.Fatalf("audit verify after %s: %q, want a problem containing %q", name, got, want)
}

// TestAttackGrantRowTampering: the gateway admits sessions from the grants
// table, and the evidence packet lists it. Someone who can write the
// database extends a grant, reopens a revoked one, or inserts one nobody
// approved. Each of these leaves the row disagreeing with the hash chain
// (grant.started and the grant's end event), and audit verify must say
// so, as it does for sessions and command rows.
func TestAttackGrantRowTampering(t *testing.T) {
	tamper := []struct {
		name, sql, want string
	}{
		{"extended", `UPDATE grants SET expires_at = '2026-11-30T09:00:00.000000Z' WHERE id = 1`, "grant 1: grants.expires_at"},
		{"started earlier", `UPDATE grants SET starts_at = '2026-11-28T09:00:00.000000Z' WHERE id = 1`, "grant 1: grants.starts_at"},
		{"given to another", `UPDATE grants SET user = 'bob' WHERE id = 1`, "grant 1: grants.user"},
		{"revoked, reopened", `UPDATE grants SET ended_at = NULL, end_reason = NULL WHERE id = 2`, "grant 2: the chain ended it"},
		{"end reason changed", `UPDATE grants SET end_reason = 'relinquished' WHERE id = 2`, "grant 2: grants.end_reason"},
		{"inserted", `INSERT INTO grants (user, role, tenant, starts_at, expires_at)
			VALUES ('bob', 'prod-root', 'acme', '2026-11-29T09:00:00.000000Z', '2026-12-29T09:00:00.000000Z')`, "grant 3: no grant.started event"},
	}
	for _, tc := range tamper {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.grant(time.Hour)
			g2 := e.grant(time.Hour) // alice may hold two; the second is revoked
			if _, err := e.svc.Revoke(context.Background(), e.user("carol"), g2.ID, "no"); err != nil {
				t.Fatal(err)
			}
			e.verifyChain() // untouched: clean
			e.tamperFound(tc.name, tc.sql, tc.want)
		})
	}
}
