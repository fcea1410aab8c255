package jit

import (
	"testing"
	"time"
)

// TestAttackRequestRowTampering: the evidence packet reads who asked, why,
// and who approved from the requests and approvals tables; a break-glass
// grant's "two distinct approvers" is a count of approvals rows. Someone
// who can write the database adds a second approver, turns a denial into
// an approval, or rewrites a request's reason. Each leaves the rows
// disagreeing with the request's events in the hash chain, and audit
// verify must say so, as it does for grants.
func TestAttackRequestRowTampering(t *testing.T) {
	tamper := []struct {
		name, sql, want string
	}{
		{"second approver inserted", `INSERT INTO approvals (request_id, approver, decision, ts)
			VALUES (2, 'erin', 'approved', '2026-11-29T09:30:00.000000Z')`, `request 2: approvals row of "erin"`},
		{"approver renamed", `UPDATE approvals SET approver = 'erin' WHERE request_id = 2`, `request 2: approvals row of "erin"`},
		{"approval deleted", `DELETE FROM approvals WHERE request_id = 2`, `request 2: the chain holds approval.recorded by "carol"`},
		{"denial turned into approval", `UPDATE approvals SET decision = 'approved' WHERE request_id = 3`, `request 3: approvals row of "carol" (approved)`},
		{"decision made unreadable", `UPDATE approvals SET decision = 'maybe' WHERE request_id = 2`, `request 2: approvals row of "carol" holds the decision "maybe"`},
		{"denial spelled as an approval", `UPDATE approvals SET decision = 'approve' WHERE request_id = 3`, `request 3: approvals row of "carol" (approve)`},
		{"reason rewritten", `UPDATE requests SET reason = 'routine' WHERE id = 1`, "request 1: requests.reason"},
		{"asked for longer", `UPDATE requests SET duration = '8h0m0s' WHERE id = 1`, "request 1: requests.duration"},
		{"denied made approved", `UPDATE requests SET state = 'approved' WHERE id = 3`, "request 3: requests.state"},
		{"denied reopened", `UPDATE requests SET state = 'pending', decided_at = NULL WHERE id = 3`, "request 3: requests.state"},
		{"pending closed", `UPDATE requests SET state = 'denied' WHERE id = 2`, "request 2: the row says denied"},
		{"inserted", `INSERT INTO requests (user, role, tenant, duration, state, created_at)
			VALUES ('bob', 'prod-root', 'acme', '1h0m0s', 'approved', '2026-11-29T09:00:00.000000Z')`, "request 4: no request.created event"},
		{"grant moved to another request", `UPDATE grants SET request_id = 2 WHERE id = 1`, "grant 1: grants.request_id 2"},
	}
	for _, tc := range tamper {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.grant(time.Hour) // request 1, grant 1
			bg := e.request("oscar", "break-glass", time.Hour, "INC-9", "")
			e.approve("carol", bg.ID) // request 2: one of two approvals
			r := e.request("alice", "prod-root", time.Hour, "INC-10", "")
			e.deny("carol", r.ID, "not now") // request 3
			e.verifyChain()                  // untouched: clean
			e.tamperFound(tc.name, tc.sql, tc.want)
		})
	}
}
