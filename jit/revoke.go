package jit

import (
	"context"
	"strings"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// Revoke ends grant grantID now. When actor owns the grant it is
// relinquished ("done early"); when actor is an approver of the grant's
// role in the current policy it is revoked; anyone else gets ErrForbidden.
// reason is optional and goes into the audit event. Once the end is
// committed, the OnGrantEnd callbacks run, so live sessions close.
func (s *Service) Revoke(ctx context.Context, actor *policy.User, grantID int64, reason string) (Grant, error) {
	if actor == nil {
		return Grant{}, refuse(ErrForbidden, "unknown user")
	}
	reason = strings.TrimSpace(reason)
	if err := checkText("reason", reason, maxReason); err != nil {
		return Grant{}, err
	}
	pol := s.policy()
	now := s.now()
	var g Grant
	var late error
	err := s.store.Update(ctx, func(tx *audit.Tx) error {
		var err error
		if g, err = loadGrant(tx, grantID); err != nil {
			return err
		}
		// Who may act is checked before anything about the grant's state
		// is revealed.
		end, err := revocation(pol, actor.Name, g)
		if err != nil {
			return err
		}
		if !g.EndedAt.IsZero() {
			return refuse(ErrState, "grant %d already ended (%s)", g.ID, g.EndReason)
		}
		if !now.Before(g.ExpiresAt) {
			// Run has not caught up: end it as Run would, and say so.
			late = refuse(ErrState, "grant %d already ended (%s)", g.ID, EndExpired)
			return finishGrant(tx, &g, g.ExpiresAt, now, EndExpired, actorWarden, "")
		}
		return finishGrant(tx, &g, now, now, end, actor.Name, reason)
	})
	if err != nil {
		return Grant{}, err
	}
	if late != nil {
		s.ended(ctx, g, actorWarden, "")
		return Grant{}, late
	}
	s.ended(ctx, g, actor.Name, reason)
	return g, nil
}

// revocation decides what ending g by actor means: the owner relinquishes,
// an approver of the role revokes.
func revocation(pol *policy.Config, actor string, g Grant) (string, error) {
	if actor == g.User {
		return EndRelinquished, nil
	}
	if r := pol.Role(g.Role); r != nil && pol.User(actor).InAnyFor(r, r.Approvers) {
		return EndRevoked, nil
	}
	return "", refuse(ErrForbidden, "you may not revoke grant %d: only its owner or an approver of %s may", g.ID, g.Role)
}

// Deprovision ends, with end_reason "deprovisioned", every running grant
// that the current policy no longer allows: its user was removed or is no
// longer eligible, or its role was removed, made standing or moved to
// another tenant. ActiveGrant already refuses such grants; Deprovision
// makes the record say so and closes their live sessions through the
// OnGrantEnd callbacks. Run calls it at start, since the policy may have
// changed while the gateway was down; call it again after reloading the
// policy. It returns the grants it ended.
func (s *Service) Deprovision(ctx context.Context) ([]Grant, error) {
	pol := s.policy()
	now := s.now()
	running, err := listGrants(dbQuerier{ctx, s.store.DB()}, `ended_at IS NULL`)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, g := range running {
		// Grants past their window are left to the expiry job, so that
		// their record says "expired", which is what ended them.
		if now.Before(g.ExpiresAt) && !entitled(pol, g.User, g.Role, g.Tenant) {
			ids = append(ids, g.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var ended []Grant
	err = s.store.Update(ctx, func(tx *audit.Tx) error {
		ended = ended[:0]
		for _, id := range ids {
			g, err := loadGrant(tx, id)
			if err != nil {
				return err
			}
			if !g.EndedAt.IsZero() {
				continue // revoked or relinquished meanwhile
			}
			if err := finishGrant(tx, &g, now, now, EndDeprovisioned, actorWarden, "the policy no longer allows it"); err != nil {
				return err
			}
			ended = append(ended, g)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, g := range ended {
		s.ended(ctx, g, actorWarden, "")
	}
	return ended, nil
}

// finishGrant ends g at endedAt for reason, with its audit event written at
// now. comment is the actor's own words, if any.
func finishGrant(tx *audit.Tx, g *Grant, endedAt, now time.Time, reason, actor, comment string) error {
	if err := endGrant(tx, g.ID, endedAt, reason); err != nil {
		return err
	}
	g.EndedAt, g.EndReason = endedAt, reason
	req, err := grantRequest(tx, *g)
	if err != nil {
		return err
	}
	data := grantData(*g, req)
	data["ended_at"], data["end_reason"], data["comment"] = endedAt, reason, comment
	return record(tx, now, endEvents[reason], actor, grantSubject(g.ID), data)
}

// grantRequest reads the request g came from, for the reason and ticket
// its events carry; a grant with no request gets an empty one.
func grantRequest(q querier, g Grant) (Request, error) {
	if g.RequestID == 0 {
		return Request{}, nil
	}
	return loadRequest(q, g.RequestID)
}
