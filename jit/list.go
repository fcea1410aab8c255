package jit

import (
	"context"
	"database/sql"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// ActiveGrant returns user's grant of role that gives access now, the one
// that lasts longest when there are several. The gateway calls it at
// session start. A grant counts only while the current policy still lets
// user hold role in the grant's tenant, so removing someone from a group
// takes effect at their next session even before Deprovision runs.
func (s *Service) ActiveGrant(ctx context.Context, user, role string) (Grant, bool, error) {
	now := s.now()
	ts, err := audit.Time(now)
	if err != nil {
		return Grant{}, false, err
	}
	gs, err := listGrants(dbQuerier{ctx, s.store.DB()},
		`user = ? AND role = ? AND ended_at IS NULL AND starts_at <= ? AND expires_at > ?`, user, role, ts, ts)
	if err != nil {
		return Grant{}, false, err
	}
	pol := s.policy()
	var best Grant
	found := false
	for _, g := range gs {
		if entitled(pol, g.User, g.Role, g.Tenant) && (!found || g.ExpiresAt.After(best.ExpiresAt)) {
			best, found = g, true
		}
	}
	return best, found, nil
}

// Requests lists, newest first, viewer's own requests and those viewer may
// decide as an approver of their role under the current policy; only
// pending ones when pendingOnly is set.
func (s *Service) Requests(ctx context.Context, viewer *policy.User, pendingOnly bool) ([]Request, error) {
	if viewer == nil {
		return nil, refuse(ErrForbidden, "unknown user")
	}
	where, args := `1 = 1`, []any(nil)
	if pendingOnly {
		where, args = `state = ?`, []any{StatePending}
	}
	all, err := listRequests(dbQuerier{ctx, s.store.DB()}, where, args...)
	if err != nil {
		return nil, err
	}
	pol := s.policy()
	cur := pol.User(viewer.Name) // nil when gone: own requests only
	out := []Request{}
	for _, r := range all {
		role := pol.Role(r.Role)
		if r.User == viewer.Name || role != nil && cur.InAnyFor(role, role.Approvers) {
			out = append(out, r)
		}
	}
	return out, nil
}

// Grants lists user's grants, newest first; only those giving access now
// when activeOnly is set.
func (s *Service) Grants(ctx context.Context, user string, activeOnly bool) ([]Grant, error) {
	q := dbQuerier{ctx, s.store.DB()}
	if !activeOnly {
		return nonNil(listGrants(q, `user = ?`, user))
	}
	ts, err := audit.Time(s.now())
	if err != nil {
		return nil, err
	}
	return nonNil(listGrants(q, `user = ? AND ended_at IS NULL AND starts_at <= ? AND expires_at > ?`, user, ts, ts))
}

// ActiveGrants lists every user's grants that give access now, newest
// first: the oversight listing (`ssh gw grants --all`), which the caller
// scopes to the tenants the viewer oversees.
func (s *Service) ActiveGrants(ctx context.Context) ([]Grant, error) {
	ts, err := audit.Time(s.now())
	if err != nil {
		return nil, err
	}
	return nonNil(listGrants(dbQuerier{ctx, s.store.DB()}, `ended_at IS NULL AND starts_at <= ? AND expires_at > ?`, ts, ts))
}

// AllRequests lists every request, newest first, for auditors.
func (s *Service) AllRequests(ctx context.Context) ([]Request, error) {
	return ListRequests(ctx, s.store.DB())
}

// AllGrants lists every grant, newest first, for auditors.
func (s *Service) AllGrants(ctx context.Context) ([]Grant, error) {
	return ListGrants(ctx, s.store.DB())
}

// ListRequests lists every request in db, newest first, with its
// decisions. It only reads, so the CLI can use a read-only database
// (audit.OpenReadOnly) without a Service.
func ListRequests(ctx context.Context, db *sql.DB) ([]Request, error) {
	return nonNil(listRequests(dbQuerier{ctx, db}, `1 = 1`))
}

// ListGrants lists every grant in db, newest first. Like ListRequests, it
// only reads.
func ListGrants(ctx context.Context, db *sql.DB) ([]Grant, error) {
	return nonNil(listGrants(dbQuerier{ctx, db}, `1 = 1`))
}

// nonNil turns an empty result into an empty slice, which --json prints
// as [] rather than null.
func nonNil[T any](list []T, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []T{}
	}
	return list, nil
}
