package jit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/notify"
	"github.com/warden-gw/warden/policy"
)

// A deny holds. Without this, a denied user could ask again at once and
// wait for a friendlier approver, and for break-glass one approver's veto
// could be outvoted by the next two (issue 13, finding 6). So after a deny
// the same user may not request the same role again:
//
//   - for the role's deny_cooldown (default 1h, 0 turns it off), counted
//     from the deny;
//   - for break-glass roles, until an approver clears the denial, however
//     long that takes.
//
// Only the latest denied request of (user, role) counts: an earlier one
// was either over or cleared before the user could ask again. The check
// runs in the store's writer, with the injected clock, so a request sent
// at the moment of a deny sees it. A clear is the audit event
// denial.cleared about the denied request ("request:ID"); no table holds
// it, so the hash chain is the one record of who lifted the hold and why.

// EventDenialCleared is the audit event of ClearDenial. Its subject is the
// denied request; data holds the request's fields plus denied_by,
// denied_at and the clearer's comment.
const EventDenialCleared = "denial.cleared"

// noticeDenialCleared is the alert type of a cleared denial.
const noticeDenialCleared = "denial.cleared"

// minuteLayout shows the times of a hold; a same-day time needs no date.
const minuteLayout = "15:04Z"

// Denial is the deny that holds a user's requests for a role.
type Denial struct {
	RequestID int64     `json:"request_id"`
	User      string    `json:"user"`
	Role      string    `json:"role"`
	Tenant    string    `json:"tenant"`
	DeniedBy  string    `json:"denied_by"`
	Comment   string    `json:"comment,omitempty"` // the denier's reason
	DeniedAt  time.Time `json:"denied_at"`
	// Until is when the hold ends by itself; zero for break-glass, whose
	// denials hold until cleared.
	Until time.Time `json:"until,omitzero"`
}

// latestDenial returns the latest denied request of user for role, and
// the approver who denied it.
func latestDenial(q querier, user, role string) (Denial, bool, error) {
	var d Denial
	var at string
	var comment sql.NullString
	err := q.QueryRow(`SELECT r.id, r.tenant, r.decided_at, a.approver, a.comment
		FROM requests r JOIN approvals a ON a.request_id = r.id AND a.decision = ?
		WHERE r.user = ? AND r.role = ? AND r.state = ?
		ORDER BY r.decided_at DESC, r.id DESC LIMIT 1`,
		VerdictDenied, user, role, StateDenied).Scan(&d.RequestID, &d.Tenant, &at, &d.DeniedBy, &comment)
	if errors.Is(err, sql.ErrNoRows) {
		return Denial{}, false, nil
	}
	if err != nil {
		return Denial{}, false, fmt.Errorf("jit: find denial of %s for %s: %w", user, role, err)
	}
	if d.DeniedAt, err = audit.ParseTime(at); err != nil {
		return Denial{}, false, fmt.Errorf("jit: request %d: %w", d.RequestID, err)
	}
	d.User, d.Role, d.Comment = user, role, comment.String
	return d, true, nil
}

// holdingDenial returns the denial that keeps user from requesting role at
// now, if any: the latest deny, not cleared, and for a role that is not
// break-glass, less than its deny_cooldown ago.
func holdingDenial(q querier, role *policy.Role, user string, now time.Time) (Denial, bool, error) {
	d, found, err := latestDenial(q, user, role.Name)
	if err != nil || !found {
		return Denial{}, false, err
	}
	if !role.BreakGlass {
		cool := role.DenyCooldown.Std()
		if cool <= 0 || !now.Before(d.DeniedAt.Add(cool)) {
			return Denial{}, false, nil
		}
		d.Until = d.DeniedAt.Add(cool)
	}
	cleared, err := hasEvent(q, EventDenialCleared, requestSubject(d.RequestID))
	if err != nil || cleared {
		return Denial{}, false, err
	}
	return d, true, nil
}

// denialError is the requester's refusal while d holds, e.g. "request for
// prod-root denied by bob at 14:02Z; you may ask again after 15:02Z or ask
// an approver to clear it".
func denialError(d Denial, now time.Time) error {
	head := fmt.Sprintf("request for %s denied by %s at %s", d.Role, d.DeniedBy, clock(d.DeniedAt, now))
	if d.Until.IsZero() {
		return refuse(ErrState, "%s; a break-glass denial holds until an approver clears it", head)
	}
	// Rounded up, so that "after 15:03Z" is never a moment still refused.
	after := d.Until.Truncate(time.Minute)
	if after.Before(d.Until) {
		after = after.Add(time.Minute)
	}
	return refuse(ErrState, "%s; you may ask again after %s or ask an approver to clear it", head, clock(after, now))
}

// clock shows t to the minute, with its date unless it is today's.
func clock(t, now time.Time) string {
	t, now = t.UTC(), now.UTC()
	if t.Format(time.DateOnly) == now.Format(time.DateOnly) {
		return t.Format(minuteLayout)
	}
	return t.Format(time.DateOnly + " " + minuteLayout)
}

// ClearDenial lifts the hold of the denial that keeps user from requesting
// role, so they may ask again at once. Only a current approver of the role
// may clear, never for themselves, and reason (why the denial no longer
// stands) is required. The clear is the audit event denial.cleared, written
// in the store's writer together with the check that a denial still holds.
func (s *Service) ClearDenial(ctx context.Context, approver *policy.User, user, role, reason string) (Denial, error) {
	reason = strings.TrimSpace(reason)
	if err := checkText("reason", reason, maxReason); err != nil {
		return Denial{}, err
	}
	if reason == "" {
		return Denial{}, refuse(ErrInvalid, "clearing a denial needs a reason: add --reason TEXT")
	}
	pol := s.policy()
	a, err := currentUser(pol, approver)
	if err != nil {
		return Denial{}, err
	}
	// One answer for an unknown role, a standing role and someone else's
	// role, so the command does not tell who may do what elsewhere.
	r := pol.Role(role)
	if r == nil || !r.Privileged || !a.InAnyFor(r, r.Approvers) {
		return Denial{}, refuse(ErrForbidden, "you are not an approver of %.*q", maxEcho, role)
	}
	if user == a.Name {
		return Denial{}, refuse(ErrForbidden, "you cannot clear a denial of your own request")
	}
	now := s.now()
	var d Denial
	err = s.store.Update(ctx, func(tx *audit.Tx) error {
		var found bool
		var err error
		if d, found, err = holdingDenial(tx, r, user, now); err != nil {
			return err
		}
		if !found {
			return refuse(ErrState, "no denial holds requests by %.*q for %s", maxEcho, user, r.Name)
		}
		return record(tx, now, EventDenialCleared, a.Name, requestSubject(d.RequestID), map[string]any{
			"request_id": d.RequestID, "user": d.User, "role": d.Role, "tenant": d.Tenant,
			"denied_by": d.DeniedBy, "denied_at": d.DeniedAt, "denial_comment": d.Comment,
			"break_glass": r.BreakGlass, "comment": reason,
		})
	})
	if err != nil {
		return Denial{}, err
	}
	s.notify(ctx, denialClearedNotice(d, a.Name, reason, r.BreakGlass))
	return d, nil
}

func denialClearedNotice(d Denial, by, reason string, breakGlass bool) notify.Event {
	mark := ""
	if breakGlass {
		mark = breakGlassMark
	}
	return notify.Event{
		Type: noticeDenialCleared,
		Text: fmt.Sprintf("%s%s cleared %s's denial of request %d (%s on %s, denied by %s)%s",
			mark, by, d.User, d.RequestID, d.Role, d.Tenant, d.DeniedBy, why(reason, "")),
		Fields: map[string]any{
			"request_id": d.RequestID, "user": d.User, "role": d.Role, "tenant": d.Tenant,
			"denied_by": d.DeniedBy, "denied_at": d.DeniedAt, "cleared_by": by, "comment": reason,
			"break_glass": breakGlass,
		},
	}
}
