package jit

import (
	"context"
	"strings"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// Approve records approver's approval of request id. When it is the last
// approval the role needs, the request is approved and a grant starts now,
// ending after the requested duration; the grant is returned, and nil
// otherwise.
//
// The approver must be in one of the role's approver groups (in the
// current policy) and may not be the requester, and each approver decides
// a request once. Only approvals by distinct people who are approvers now
// count, so someone removed from the approver groups no longer vouches;
// break-glass roles need at least two. Before the grant starts the request
// is checked against the current policy again: the requester must still be
// eligible and the duration within the role's limit.
//
// Decisions run in the store's single writer and re-read the request
// there, so approvals arriving at the same moment are applied one after
// the other and produce exactly one grant.
func (s *Service) Approve(ctx context.Context, approver *policy.User, id int64, comment string) (Request, *Grant, error) {
	return s.decide(ctx, approver, id, VerdictApproved, comment)
}

// Deny records approver's denial of request id, which ends the request:
// one denial outweighs any number of approvals. reason is required.
func (s *Service) Deny(ctx context.Context, approver *policy.User, id int64, reason string) (Request, error) {
	req, _, err := s.decide(ctx, approver, id, VerdictDenied, reason)
	return req, err
}

func (s *Service) decide(ctx context.Context, approver *policy.User, id int64, verdict, comment string) (Request, *Grant, error) {
	comment = strings.TrimSpace(comment)
	noun, verb := "comment", "approve"
	if verdict == VerdictDenied {
		noun, verb = "reason", "deny"
	}
	if err := checkText(noun, comment, maxReason); err != nil {
		return Request{}, nil, err
	}
	if verdict == VerdictDenied && comment == "" {
		return Request{}, nil, refuse(ErrInvalid, "deny needs a reason: add --reason TEXT")
	}
	pol := s.policy()
	a, err := currentUser(pol, approver)
	if err != nil {
		return Request{}, nil, err
	}
	now := s.now()
	var (
		req   Request
		role  *policy.Role
		grant *Grant
		late  error
	)
	err = s.store.Update(ctx, func(tx *audit.Tx) error {
		var err error
		if req, err = loadRequest(tx, id); err != nil {
			return err
		}
		if req.User == a.Name {
			return refuse(ErrForbidden, "you cannot %s your own request", verb)
		}
		if role = pol.Role(req.Role); role == nil || !role.Privileged {
			return refuse(ErrState, "role %s is no longer a privileged role in the policy", req.Role)
		}
		if !a.InAnyFor(role, role.Approvers) { // InAnyFor: tenant-limited users decide only their tenant
			return refuse(ErrForbidden, "you are not an approver of %s", role.Name)
		}
		if late, err = openRequest(tx, pol, &req, now); err != nil || late != nil {
			return err
		}
		for _, d := range req.Approvals {
			if d.Approver == a.Name {
				return refuse(ErrState, "you already decided request %d", id)
			}
		}
		d := Decision{Approver: a.Name, Verdict: verdict, Comment: comment, At: now}
		if verdict == VerdictApproved {
			if err := stillGrantable(pol, role, req); err != nil {
				return err
			}
		}
		if err := insertDecision(tx, id, d); err != nil {
			return err
		}
		req.Approvals = append(req.Approvals, d)
		if verdict == VerdictDenied {
			return deny(tx, &req, d)
		}
		grant, err = approve(tx, pol, role, &req, d)
		return err
	})
	if err == nil {
		err = late
	}
	if err != nil {
		return Request{}, nil, err
	}
	if grant != nil {
		s.scheduleGrant(*grant)
		s.changed()
	}
	s.notify(ctx, requestDecidedNotice(req, grant, validApprovals(pol, role, req), approvalsNeeded(role)))
	return req, grant, nil
}

// stillGrantable re-checks, at the final decision, what Request checked
// when the request was made: the policy may have changed since.
func stillGrantable(pol *policy.Config, role *policy.Role, req Request) error {
	switch {
	case role.Tenant != req.Tenant:
		return refuse(ErrState, "role %s has moved to tenant %s since request %d was made", role.Name, role.Tenant, req.ID)
	case !pol.User(req.User).InAnyFor(role, role.Eligible):
		return refuse(ErrState, "%s is no longer eligible for %s", req.User, role.Name)
	case req.Duration > maxDuration(role):
		return refuse(ErrState, "role %s now allows at most %s (request %d asked %s)",
			role.Name, shortDuration(maxDuration(role)), req.ID, shortDuration(req.Duration))
	}
	return nil
}

// validApprovals counts the distinct people whose approval of req counts
// under the current policy: not the requester, and an approver of role now.
func validApprovals(pol *policy.Config, role *policy.Role, req Request) int {
	seen := map[string]bool{}
	for _, d := range req.Approvals {
		if d.Verdict == VerdictApproved && d.Approver != req.User && !seen[d.Approver] &&
			pol.User(d.Approver).InAnyFor(role, role.Approvers) {
			seen[d.Approver] = true
		}
	}
	return len(seen)
}

// deny ends req after decision d.
func deny(tx *audit.Tx, req *Request, d Decision) error {
	if err := closeRequest(tx, req.ID, StateDenied, d.At); err != nil {
		return err
	}
	req.State, req.DecidedAt = StateDenied, d.At
	data := requestData(*req)
	data["approver"], data["comment"] = d.Approver, d.Comment
	return record(tx, d.At, EventRequestDenied, d.Approver, requestSubject(req.ID), data)
}

// approve records approval d and, when it completes the request, approves
// it and starts the grant, whose window opens now, at the final approval.
func approve(tx *audit.Tx, pol *policy.Config, role *policy.Role, req *Request, d Decision) (*Grant, error) {
	got, need := validApprovals(pol, role, *req), approvalsNeeded(role)
	data := requestData(*req)
	data["approver"], data["comment"], data["approvals"], data["approvals_needed"] = d.Approver, d.Comment, got, need
	if err := record(tx, d.At, EventApprovalRecorded, d.Approver, requestSubject(req.ID), data); err != nil {
		return nil, err
	}
	if got < need {
		return nil, nil
	}
	if err := closeRequest(tx, req.ID, StateApproved, d.At); err != nil {
		return nil, err
	}
	req.State, req.DecidedAt = StateApproved, d.At
	g := Grant{
		RequestID: req.ID, User: req.User, Role: req.Role, Tenant: req.Tenant,
		StartsAt: d.At, ExpiresAt: d.At.Add(req.Duration),
	}
	var err error
	if g.ID, err = insertGrant(tx, g, pol.Version()); err != nil {
		return nil, err
	}
	approvers := approverNames(*req)
	data = requestData(*req)
	data["grant_id"], data["approvers"] = g.ID, approvers
	// The policy version is in the hash chain too, not only in the grants
	// row, so an edit of the row is caught by audit verify.
	data["policy_version"] = pol.Version()
	if err := record(tx, d.At, EventRequestApproved, d.Approver, requestSubject(req.ID), data); err != nil {
		return nil, err
	}
	data = grantData(g, *req)
	data["approvers"] = approvers
	if err := record(tx, d.At, EventGrantStarted, d.Approver, grantSubject(g.ID), data); err != nil {
		return nil, err
	}
	// A static credential's rotation is owed from this commit on.
	if err := oweRotation(tx, pol, role, g, d.At); err != nil {
		return nil, err
	}
	return &g, nil
}

// approverNames lists who approved req, in order.
func approverNames(req Request) []string {
	var out []string
	for _, d := range req.Approvals {
		if d.Verdict == VerdictApproved {
			out = append(out, d.Approver)
		}
	}
	return out
}

// scheduleGrant queues g's expiry and, for grants longer than the warning
// lead, its five-minute warning.
func (s *Service) scheduleGrant(g Grant) {
	ds := []deadline{{at: g.ExpiresAt, job: jobExpireGrant, id: g.ID}}
	if w := g.ExpiresAt.Add(-warnBefore); w.After(g.StartsAt) {
		ds = append(ds, deadline{at: w, job: jobWarnGrant, id: g.ID})
	}
	s.schedule(ds...)
}
