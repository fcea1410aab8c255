package jit

import (
	"encoding/json"
	"time"
)

// Request states (column requests.state). A request starts pending and
// ends in exactly one of the others; only approved leads to a grant.
const (
	StatePending   = "pending"
	StateApproved  = "approved"
	StateDenied    = "denied"
	StateCancelled = "cancelled" // withdrawn by the requester
	StateExpired   = "expired"   // nobody decided within the role's request_ttl
)

// Grant end reasons (column grants.end_reason, CONTRACT.md section 5).
const (
	EndExpired       = "expired"       // the window closed
	EndRevoked       = "revoked"       // an approver ended it early
	EndRelinquished  = "relinquished"  // the owner said "done" early
	EndDeprovisioned = "deprovisioned" // the policy no longer allows it (Deprovision)
)

// Verdicts of a Decision (column approvals.decision).
const (
	VerdictApproved = "approved"
	VerdictDenied   = "denied"
)

// Request is a user's request for a privileged role (table requests).
type Request struct {
	ID        int64         `json:"id"`
	User      string        `json:"user"`
	Role      string        `json:"role"`
	Tenant    string        `json:"tenant"`
	Reason    string        `json:"reason,omitempty"`
	Ticket    string        `json:"ticket,omitempty"`
	Duration  time.Duration `json:"-"` // length of the grant once approved
	State     string        `json:"state"`
	CreatedAt time.Time     `json:"created_at"`
	DecidedAt time.Time     `json:"decided_at,omitzero"` // zero while pending
	Approvals []Decision    `json:"approvals"`           // in the order they were made
}

// MarshalJSON writes Duration as Go text ("1h0m0s"), the form of the
// requests table and the --for flag, rather than as nanoseconds.
func (r Request) MarshalJSON() ([]byte, error) {
	type plain Request // drops the method, so Marshal does not recurse
	approvals := r.Approvals
	if approvals == nil {
		approvals = []Decision{}
	}
	p := plain(r)
	p.Approvals = approvals
	return json.Marshal(struct {
		plain
		Duration string `json:"duration"`
	}{p, r.Duration.String()})
}

// Decision is one approver's verdict on a request (table approvals).
type Decision struct {
	Approver string    `json:"approver"`
	Verdict  string    `json:"decision"` // VerdictApproved or VerdictDenied
	Comment  string    `json:"comment,omitempty"`
	At       time.Time `json:"ts"`
}

// Grant is a time-boxed grant of a privileged role (table grants).
type Grant struct {
	ID        int64     `json:"id"`
	RequestID int64     `json:"request_id"`
	User      string    `json:"user"`
	Role      string    `json:"role"`
	Tenant    string    `json:"tenant"`
	StartsAt  time.Time `json:"starts_at"`
	ExpiresAt time.Time `json:"expires_at"`
	EndedAt   time.Time `json:"ended_at,omitzero"`    // zero while running
	EndReason string    `json:"end_reason,omitempty"` // one of the End* constants
}

// Active reports whether the grant gives access at now: it has not been
// ended and its window has not closed. At exactly ExpiresAt it is over.
func (g Grant) Active(now time.Time) bool {
	return g.EndedAt.IsZero() && !now.Before(g.StartsAt) && now.Before(g.ExpiresAt)
}

// Remaining is how long the grant still gives access at now; zero once it
// has ended or expired.
func (g Grant) Remaining(now time.Time) time.Duration {
	if !g.Active(now) {
		return 0
	}
	return g.ExpiresAt.Sub(now)
}
