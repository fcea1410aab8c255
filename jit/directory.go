package jit

import (
	"context"
	"slices"

	"github.com/warden-gw/warden/audit"
)

// CancelIneligible cancels the pending requests of users (by name) that
// the current policy no longer lets them make: a leaver's requests, or a
// mover's for roles they left. actor (e.g. "scim:entra") is recorded as
// who cancelled them. Grants are ended by Deprovision.
func (s *Service) CancelIneligible(ctx context.Context, users []string, actor string) ([]Request, error) {
	pol := s.policy()
	now := s.now()
	pending, err := listRequests(dbQuerier{ctx, s.store.DB()}, `state = ?`, StatePending)
	if err != nil {
		return nil, err
	}
	var ids []int64
	for _, r := range pending {
		if slices.Contains(users, r.User) && !entitled(pol, r.User, r.Role, r.Tenant) {
			ids = append(ids, r.ID)
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	var out []Request
	err = s.store.Update(ctx, func(tx *audit.Tx) error {
		out = out[:0]
		for _, id := range ids {
			req, err := loadRequest(tx, id)
			if err != nil {
				return err
			}
			if req.State != StatePending {
				continue
			}
			if err := closeRequest(tx, id, StateCancelled, now); err != nil {
				return err
			}
			req.State, req.DecidedAt = StateCancelled, now
			data := requestData(req)
			data["comment"] = "access removed by the directory"
			if err := record(tx, now, EventRequestCancelled, actor, requestSubject(id), data); err != nil {
				return err
			}
			out = append(out, req)
		}
		return nil
	})
	return out, err
}
