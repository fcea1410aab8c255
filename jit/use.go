package jit

import (
	"context"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// RecordUse tells the Service that session sessionID, as login on host,
// started under grant grantID. The first use of a break-glass grant appends
// a breakglass.used event and sends an alert; first reports whether this
// call was it. Other uses record nothing here: the sessions table already
// holds them. The gateway calls it after admitting the session.
//
// A grant that has ended, or whose window is not open at the Service's
// clock, or that the current policy no longer allows, is refused with
// ErrState: a session must never run under a grant that ended between the
// channel's admission and its start (revocation dodged by an early
// channel). The check runs inside the writer's transaction, after any
// revocation committed before it.
func (s *Service) RecordUse(ctx context.Context, grantID int64, sessionID, login, host string) (first bool, err error) {
	pol := s.policy()
	now := s.now()
	var g Grant
	err = s.store.Update(ctx, func(tx *audit.Tx) error {
		var err error
		first = false
		if g, err = loadGrant(tx, grantID); err != nil {
			return err
		}
		if err := usable(pol, g, now); err != nil {
			return err
		}
		if r := pol.Role(g.Role); r == nil || !r.BreakGlass {
			return nil
		}
		// Looked up in the writer, so two sessions opened at once still
		// raise exactly one alert, also across restarts.
		used, err := hasEvent(tx, EventBreakGlassUsed, grantSubject(g.ID))
		if err != nil || used {
			return err
		}
		req, err := grantRequest(tx, g)
		if err != nil {
			return err
		}
		data := grantData(g, req)
		data["session_id"], data["login"], data["host"] = sessionID, login, host
		if err := record(tx, now, EventBreakGlassUsed, g.User, grantSubject(g.ID), data); err != nil {
			return err
		}
		first = true
		return nil
	})
	if err != nil {
		return false, err
	}
	if first {
		s.notify(ctx, breakGlassUsedNotice(g, sessionID, login, host))
	}
	return first, nil
}

// usable refuses a grant that gives no access at now: ended, outside its
// window, or no longer allowed by pol.
func usable(pol *policy.Config, g Grant, now time.Time) error {
	switch {
	case !g.EndedAt.IsZero():
		return refuse(ErrState, "grant %d has ended (%s)", g.ID, g.EndReason)
	case now.Before(g.StartsAt):
		return refuse(ErrState, "grant %d has not started", g.ID)
	case !now.Before(g.ExpiresAt):
		return refuse(ErrState, "grant %d has ended (%s)", g.ID, EndExpired)
	case !entitled(pol, g.User, g.Role, g.Tenant):
		return refuse(ErrState, "grant %d is no longer allowed by the policy", g.ID)
	}
	return nil
}
