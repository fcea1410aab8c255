package jit

import (
	"context"
	"time"

	"github.com/warden-gw/warden/audit"
)

// The jobs Run performs at deadlines. Each re-reads its row inside the
// write and does nothing when the row has moved on (a request decided, a
// grant revoked), so a stale or repeated deadline is harmless.

// expireRequestJob expires request id if it is still pending at its TTL.
func (s *Service) expireRequestJob(ctx context.Context, id int64) error {
	pol := s.policy()
	now := s.now()
	var again time.Time
	err := s.store.Update(ctx, func(tx *audit.Tx) error {
		req, err := loadRequest(tx, id)
		if err != nil || req.State != StatePending {
			return err
		}
		at := req.CreatedAt.Add(requestTTL(pol.Role(req.Role)))
		if now.Before(at) {
			again = at // the policy lengthened request_ttl meanwhile
			return nil
		}
		return expireRequest(tx, &req, at, now)
	})
	if err == nil && !again.IsZero() {
		s.schedule(deadline{at: again, job: jobExpireRequest, id: id})
	}
	return err
}

// warnGrantJob records and sends the five-minute warning of grant id, once.
func (s *Service) warnGrantJob(ctx context.Context, id int64) error {
	now := s.now()
	var g Grant
	var warned bool
	err := s.store.Update(ctx, func(tx *audit.Tx) error {
		var err error
		warned = false
		if g, err = loadGrant(tx, id); err != nil {
			return err
		}
		if !g.Active(now) {
			return nil
		}
		// The event is the memory of the warning, so a restart within the
		// last five minutes does not warn twice.
		sent, err := hasEvent(tx, EventGrantExpiring, grantSubject(id))
		if err != nil || sent {
			return err
		}
		req, err := grantRequest(tx, g)
		if err != nil {
			return err
		}
		if err := record(tx, now, EventGrantExpiring, actorWarden, grantSubject(id), grantData(g, req)); err != nil {
			return err
		}
		warned = true
		return nil
	})
	if err == nil && warned {
		s.notify(ctx, grantExpiringNotice(g, now))
	}
	return err
}

// expireGrantJob ends grant id when its window has closed. ended_at is the
// window's end, when access actually stopped, even if the gateway records
// it later (after a restart); the event's time says when it was recorded.
func (s *Service) expireGrantJob(ctx context.Context, id int64) error {
	now := s.now()
	var g Grant
	var ended bool
	var again time.Time
	err := s.store.Update(ctx, func(tx *audit.Tx) error {
		var err error
		ended = false
		if g, err = loadGrant(tx, id); err != nil || !g.EndedAt.IsZero() {
			return err
		}
		if now.Before(g.ExpiresAt) {
			again = g.ExpiresAt // the clock stepped back
			return nil
		}
		ended = true
		return finishGrant(tx, &g, g.ExpiresAt, now, EndExpired, actorWarden, "")
	})
	if err != nil {
		return err
	}
	if !again.IsZero() {
		s.schedule(deadline{at: again, job: jobExpireGrant, id: id})
	}
	if ended {
		s.ended(ctx, g, actorWarden, "")
	}
	return nil
}
