package jit

import (
	"context"

	"github.com/warden-gw/warden/audit"
)

// RecordUse tells the Service that session sessionID, as login on host,
// started under grant grantID. The first use of a break-glass grant appends
// a breakglass.used event and sends an alert; first reports whether this
// call was it. Other uses record nothing here: the sessions table already
// holds them. The gateway calls it after admitting the session.
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
