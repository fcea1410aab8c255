package jit

import (
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/warden-gw/warden/policy"
)

// Limits on what users type. Reasons and tickets are shown in lists, chat
// alerts and evidence packets, one line each; a 100 kB reason would bury
// them and bloat every audit row that quotes it.
const (
	maxReason = 1024 // bytes, also for comments and deny reasons
	maxTicket = 128  // bytes
)

// Limits the code holds even if a policy somehow says otherwise; the
// policy package enforces them too, but a break-glass rule is worth
// checking twice.
const (
	breakGlassMaxDuration = time.Hour
	breakGlassApprovals   = 2
	defaultRequestTTL     = 24 * time.Hour
	// warnBefore is when the "grant expiring" alert goes out.
	warnBefore = 5 * time.Minute
)

// checkText validates free text a user typed. It must be valid UTF-8 of
// printable characters: no newlines (each value is one line in lists and
// logs), no terminal escapes, and no invisible format characters such as
// bidi overrides that would make an auditor read something else.
func checkText(what, s string, limit int) error {
	if len(s) > limit {
		return refuse(ErrInvalid, "%s is %d bytes; at most %d are allowed", what, len(s), limit)
	}
	if !utf8.ValidString(s) {
		return refuse(ErrInvalid, "%s is not valid UTF-8", what)
	}
	for i, r := range s {
		if !unicode.IsPrint(r) {
			return refuse(ErrInvalid, "%s has a control or invisible character at byte %d", what, i)
		}
	}
	return nil
}

// requestInput is a checked request, ready to store.
type requestInput struct {
	role           *policy.Role
	reason, ticket string
}

// checkRequest applies every rule about who may ask for what, against the
// current policy. u is the requester as the current policy knows them.
func checkRequest(pol *policy.Config, u *policy.User, roleName string, d time.Duration, reason, ticket string) (requestInput, error) {
	r := pol.Role(roleName)
	// One answer for a role that does not exist, another client's role and
	// a role the caller may not request, so that probing role names tells
	// nothing about other tenants (as ClearDenial does). Only a member of a
	// standing role is told that it needs no request.
	switch {
	case r != nil && !r.Privileged && u.InAnyFor(r, r.Members):
		return requestInput{}, refuse(ErrInvalid, "role %s is standing access and needs no request", r.Name)
	case r == nil || !r.Privileged || !u.InAnyFor(r, r.Eligible): // InAnyFor: a tenant-limited directory user stays in their tenant
		return requestInput{}, refuse(ErrNotFound, "no role %.*q that you may request", maxEcho, roleName)
	case d <= 0:
		return requestInput{}, refuse(ErrInvalid, "duration must be positive (asked %s)", shortDuration(d))
	case d > maxDuration(r):
		return requestInput{}, refuse(ErrInvalid, "role %s allows at most %s (asked %s)", r.Name, shortDuration(maxDuration(r)), shortDuration(d))
	}
	in := requestInput{role: r, reason: strings.TrimSpace(reason), ticket: strings.TrimSpace(ticket)}
	if err := checkText("reason", in.reason, maxReason); err != nil {
		return requestInput{}, err
	}
	if err := checkText("ticket", in.ticket, maxTicket); err != nil {
		return requestInput{}, err
	}
	if (r.RequireReason || r.BreakGlass) && in.reason == "" {
		return requestInput{}, refuse(ErrInvalid, "%s requires a reason: add --reason TEXT", r.Name)
	}
	if r.RequireTicket && in.ticket == "" {
		return requestInput{}, refuse(ErrInvalid, "%s requires a ticket: add --ticket ID", r.Name)
	}
	return in, nil
}

// maxDuration is the longest grant r allows.
func maxDuration(r *policy.Role) time.Duration {
	m := r.MaxDuration.Std()
	if m <= 0 {
		m = time.Hour // the policy's default
	}
	if r.BreakGlass {
		m = min(m, breakGlassMaxDuration)
	}
	return m
}

// approvalsNeeded is how many distinct approvers must agree.
func approvalsNeeded(r *policy.Role) int {
	n := max(r.Approvals, 1)
	if r.BreakGlass {
		n = max(n, breakGlassApprovals)
	}
	return n
}

// requestTTL is how long a request for r waits for its decision. A request
// whose role has left the policy keeps the default, so it still ends.
func requestTTL(r *policy.Role) time.Duration {
	if r == nil || r.RequestTTL <= 0 {
		return defaultRequestTTL
	}
	return r.RequestTTL.Std()
}

// currentUser returns the current policy's record of u. Decisions use the
// groups the policy gives now, not those of a copy the caller may have
// taken before a reload.
func currentUser(pol *policy.Config, u *policy.User) (*policy.User, error) {
	if u == nil {
		return nil, refuse(ErrForbidden, "unknown user")
	}
	cur := pol.User(u.Name)
	if cur == nil {
		return nil, refuse(ErrForbidden, "user %s is not in the policy", u.Name)
	}
	return cur, nil
}

// entitled reports whether the current policy still lets user hold role in
// tenant: the user exists and is eligible, and the role is still a
// privileged role of that tenant. A grant that fails this gives no access,
// whatever its window says.
func entitled(pol *policy.Config, user, role, tenant string) bool {
	r := pol.Role(role)
	return r != nil && r.Privileged && r.Tenant == tenant && pol.User(user).InAnyFor(r, r.Eligible)
}

// shortDuration prints 2h, 90m or 45s rather than Go's 2h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}
