package jit

import (
	"context"
	"fmt"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// actorWarden is the actor of the events the gateway writes on its own,
// such as an expiry.
const actorWarden = "warden"

// Request opens a request by user for role, for a grant of d once
// approved. Every rule is checked against the current policy: the role must
// exist and be privileged, user must be eligible, d must be positive and
// within the role's max_duration (one hour at most for break-glass), and a
// reason or ticket must be given when the role requires one. A user has at
// most one pending request per role, and none while the denial of their
// last request for it holds (deny_cooldown; until cleared for
// break-glass). The request and its audit event (plus
// breakglass.requested for break-glass roles) commit together.
func (s *Service) Request(ctx context.Context, user *policy.User, role string, d time.Duration, reason, ticket string) (Request, error) {
	pol := s.policy()
	u, err := currentUser(pol, user)
	if err != nil {
		return Request{}, err
	}
	in, err := checkRequest(pol, u, role, d, reason, ticket)
	if err != nil {
		return Request{}, err
	}
	now := s.now()
	req := Request{
		User: u.Name, Role: in.role.Name, Tenant: in.role.Tenant, Reason: in.reason, Ticket: in.ticket,
		Duration: d, State: StatePending, CreatedAt: now,
	}
	err = s.store.Update(ctx, func(tx *audit.Tx) error {
		// A deny holds (cooldown.go). Checked in the writer, like the
		// pending request below, so a deny committed a moment earlier
		// is always seen.
		if d, held, err := holdingDenial(tx, in.role, req.User, now); err != nil {
			return err
		} else if held {
			return denialError(d, now)
		}
		if err := withdrawnHold(tx, req.User, req.Role, now); err != nil {
			return err
		}
		// Checked in the writer, so two identical requests sent at once
		// cannot both pass.
		id, found, err := pendingRequestOf(tx, req.User, req.Role)
		if err != nil {
			return err
		}
		if found {
			old, err := loadRequest(tx, id)
			if err != nil {
				return err
			}
			if late, err := openRequest(tx, pol, &old, now); err != nil {
				return err
			} else if late == nil {
				return refuse(ErrState, "you already have pending request %d for %s", id, req.Role)
			}
		}
		if req.ID, err = insertRequest(tx, req); err != nil {
			return err
		}
		if err := record(tx, now, EventRequestCreated, req.User, requestSubject(req.ID), requestData(req)); err != nil {
			return err
		}
		if in.role.BreakGlass {
			return record(tx, now, EventBreakGlassRequested, req.User, requestSubject(req.ID), requestData(req))
		}
		return nil
	})
	if err != nil {
		return Request{}, err
	}
	s.schedule(deadline{at: now.Add(requestTTL(in.role)), job: jobExpireRequest, id: req.ID})
	s.changed()
	s.notify(ctx, requestCreatedNotice(req, in.role))
	return req, nil
}

// A deny holds (cooldown.go), but a requester who cancels before anyone
// decides, or lets requests lapse, could otherwise ask again at once and
// without end: each request alerts every approver and writes to the chain,
// until a tired approver approves one (approval fatigue). So at most
// maxWithdrawn requests of a user for a role may end cancelled or expired
// within requestWindow; the next waits until the oldest leaves it.
// Approved and denied requests do not count: those were answered.
const (
	maxWithdrawn  = 3
	requestWindow = time.Hour
)

// withdrawnHold refuses a new request by user for role while maxWithdrawn
// of their requests for it, opened within requestWindow before now, ended
// cancelled or expired.
func withdrawnHold(tx *audit.Tx, user, role string, now time.Time) error {
	since, err := audit.Time(now.Add(-requestWindow))
	if err != nil {
		return err
	}
	rows, err := tx.Query(`SELECT created_at FROM requests WHERE user = ? AND role = ? AND state IN (?, ?) AND created_at > ?
		ORDER BY created_at`, user, role, StateCancelled, StateExpired, since)
	if err != nil {
		return fmt.Errorf("jit: count withdrawn requests: %w", err)
	}
	defer rows.Close()
	var created []string
	for rows.Next() {
		var c string
		if err := rows.Scan(&c); err != nil {
			return fmt.Errorf("jit: count withdrawn requests: %w", err)
		}
		created = append(created, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("jit: count withdrawn requests: %w", err)
	}
	if len(created) < maxWithdrawn {
		return nil
	}
	// The window frees when the oldest counted request leaves it.
	oldest, err := audit.ParseTime(created[len(created)-maxWithdrawn])
	if err != nil {
		return fmt.Errorf("jit: count withdrawn requests: %w", err)
	}
	after := oldest.Add(requestWindow)
	if t := after.Truncate(time.Minute); t.Before(after) {
		after = t.Add(time.Minute) // rounded up: never a moment still refused
	}
	return refuse(ErrState, "you withdrew or let lapse %d requests for %s in the last hour; you may ask again after %s",
		len(created), role, clock(after, now))
}

// Cancel withdraws user's own pending request id.
func (s *Service) Cancel(ctx context.Context, user *policy.User, id int64) (Request, error) {
	if user == nil {
		return Request{}, refuse(ErrForbidden, "unknown user")
	}
	pol := s.policy()
	now := s.now()
	var req Request
	var late error
	err := s.store.Update(ctx, func(tx *audit.Tx) error {
		var err error
		if req, err = loadRequest(tx, id); err != nil {
			return err
		}
		if req.User != user.Name {
			return refuse(ErrForbidden, "request %d is not yours", id)
		}
		if late, err = openRequest(tx, pol, &req, now); err != nil || late != nil {
			return err
		}
		if err := closeRequest(tx, id, StateCancelled, now); err != nil {
			return err
		}
		req.State, req.DecidedAt = StateCancelled, now
		return record(tx, now, EventRequestCancelled, user.Name, requestSubject(id), requestData(req))
	})
	if err == nil {
		err = late
	}
	if err != nil {
		return Request{}, err
	}
	return req, nil
}

// openRequest checks, inside a write, that req may still be decided or
// cancelled at now. A decided request is an ErrState error. A pending
// request past its TTL that Run has not expired yet (it may be behind, or
// not running) is expired here, and late says so: the caller commits the
// expiry and then returns late, so the request is never decided late.
func openRequest(tx *audit.Tx, pol *policy.Config, req *Request, now time.Time) (late, err error) {
	if req.State != StatePending {
		return nil, stateError(*req)
	}
	at := req.CreatedAt.Add(requestTTL(pol.Role(req.Role)))
	if now.Before(at) {
		return nil, nil
	}
	if err := expireRequest(tx, req, at, now); err != nil {
		return nil, err
	}
	return stateError(*req), nil
}

// expireRequest closes a pending request whose TTL ended at at.
func expireRequest(tx *audit.Tx, req *Request, at, now time.Time) error {
	if err := closeRequest(tx, req.ID, StateExpired, at); err != nil {
		return err
	}
	req.State, req.DecidedAt = StateExpired, at
	return record(tx, now, EventRequestExpired, actorWarden, requestSubject(req.ID), requestData(*req))
}

// stateError explains why a closed request cannot be acted on.
func stateError(r Request) error {
	if r.State == StateExpired {
		return refuse(ErrState, "request %d has expired", r.ID)
	}
	return refuse(ErrState, "request %d is already %s", r.ID, r.State)
}
