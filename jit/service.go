package jit

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/notify"
	"github.com/warden-gw/warden/policy"
)

// Notifier receives alerts about requests and grants. *notify.Webhook
// implements it. Notify must not block: it is called right after a
// decision commits, in the decider's goroutine.
type Notifier interface {
	Notify(ctx context.Context, ev notify.Event)
}

// Options configures a Service. Store and Policy are required.
type Options struct {
	// Store holds the requests, approvals and grants tables and the audit
	// chain; every write goes through its single writer.
	Store *audit.Store
	// Policy returns the current policy. It is called on every decision,
	// so a reloaded policy applies at once, also to requests made before.
	Policy func() *policy.Config
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Until returns a channel that receives once the clock of Now has
	// reached t; nil means time.After(t.Sub(Now())). It takes a time rather
	// than a duration so that a fake clock fires exactly at the deadline,
	// even if it moves between Run's reading of the clock and its arming
	// of the timer. Set it together with Now.
	Until func(t time.Time) <-chan time.Time
	// Notifier receives alerts; nil sends none.
	Notifier Notifier
	// Logger receives operational logs; nil means slog.Default().
	Logger *slog.Logger
}

// Service is the just-in-time elevation workflow. It is safe for
// concurrent use. Run must be running for grants and requests to end on
// time; the checks of ActiveGrant do not depend on it.
type Service struct {
	store    *audit.Store
	policy   func() *policy.Config
	clock    func() time.Time
	until    func(time.Time) <-chan time.Time
	notifier Notifier
	log      *slog.Logger

	mu       sync.Mutex
	onEnd    []func(Grant)
	onChange []func()
	queue    timetable     // upcoming deadlines; guarded by mu
	wake     chan struct{} // tells Run the queue changed
}

// New checks opt and returns a Service. It does not touch the database;
// Run loads the deadlines of pending requests and running grants.
func New(opt Options) (*Service, error) {
	switch {
	case opt.Store == nil:
		return nil, errors.New("jit: no store")
	case opt.Policy == nil:
		return nil, errors.New("jit: no policy")
	}
	s := &Service{
		store:    opt.Store,
		policy:   opt.Policy,
		clock:    opt.Now,
		until:    opt.Until,
		notifier: opt.Notifier,
		log:      opt.Logger,
		queue:    newTimetable(),
		wake:     make(chan struct{}, 1),
	}
	if s.clock == nil {
		s.clock = time.Now
	}
	if s.until == nil {
		s.until = func(t time.Time) <-chan time.Time { return time.After(t.Sub(s.clock())) }
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	return s, nil
}

// OnGrantEnd registers fn to be called with every grant that ends
// (expired, revoked, relinquished or deprovisioned), after the end is
// committed. The gateway uses it to close the grant's live sessions at
// once, and to rotate a break-glass credential. fn runs in the goroutine
// that ended the grant (Run, or a Revoke caller), so it must not block.
func (s *Service) OnGrantEnd(fn func(Grant)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onEnd = append(s.onEnd, fn)
}

// OnChange registers fn to be called after a request or a grant is
// created, once it is committed and queued here: it is how a gateway tells
// the cluster's leader, whose Run keeps the deadlines, to Resync. fn runs
// in the caller's goroutine, so it must not block for long.
func (s *Service) OnChange(fn func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.onChange = append(s.onChange, fn)
}

// changed calls the OnChange functions.
func (s *Service) changed() {
	s.mu.Lock()
	fns := slices.Clone(s.onChange)
	s.mu.Unlock()
	for _, fn := range fns {
		fn()
	}
}

// now is the clock in UTC at the stored precision (microseconds), so that
// a value in memory equals the same value read back.
func (s *Service) now() time.Time { return s.clock().UTC().Truncate(time.Microsecond) }

// ended tells the registered callbacks and the notifier that g has ended.
func (s *Service) ended(ctx context.Context, g Grant, actor, reason string) {
	s.mu.Lock()
	fns := slices.Clone(s.onEnd)
	s.mu.Unlock()
	for _, fn := range fns {
		fn(g)
	}
	s.notify(ctx, grantEndedNotice(g, actor, reason))
}

// notify sends ev when a Notifier is configured.
func (s *Service) notify(ctx context.Context, ev notify.Event) {
	if s.notifier != nil {
		s.notifier.Notify(ctx, ev)
	}
}

// Audit event types written by the package. Actor is the user who acted,
// or "warden" for the scheduler. Subject is "request:ID" or "grant:ID".
// Data always holds the request's reason and ticket, so each event says
// why the access existed; a decider's or revoker's own words are in
// "comment".
const (
	EventRequestCreated      = "request.created"
	EventApprovalRecorded    = "approval.recorded" // one approver approved; more may be needed
	EventRequestApproved     = "request.approved"  // the final approval: a grant starts
	EventRequestDenied       = "request.denied"
	EventRequestCancelled    = "request.cancelled"
	EventRequestExpired      = "request.expired"
	EventGrantStarted        = "grant.started"
	EventGrantExpiring       = "grant.expiring" // the five-minute warning went out
	EventGrantExpired        = "grant.expired"
	EventGrantRevoked        = "grant.revoked"
	EventGrantRelinquished   = "grant.relinquished"
	EventGrantDeprovisioned  = "grant.deprovisioned"
	EventBreakGlassRequested = "breakglass.requested"
	EventBreakGlassUsed      = "breakglass.used"
)

// endEvents maps an end reason to its event type.
var endEvents = map[string]string{
	EndExpired:       EventGrantExpired,
	EndRevoked:       EventGrantRevoked,
	EndRelinquished:  EventGrantRelinquished,
	EndDeprovisioned: EventGrantDeprovisioned,
}

func requestSubject(id int64) string { return "request:" + strconv.FormatInt(id, 10) }
func grantSubject(id int64) string   { return "grant:" + strconv.FormatInt(id, 10) }

// requestData is the audit data every request event carries.
func requestData(r Request) map[string]any {
	return map[string]any{
		"request_id": r.ID, "user": r.User, "role": r.Role, "tenant": r.Tenant,
		"duration": r.Duration.String(), "reason": r.Reason, "ticket": r.Ticket,
	}
}

// grantData is the audit data every grant event carries.
func grantData(g Grant, r Request) map[string]any {
	return map[string]any{
		"grant_id": g.ID, "request_id": g.RequestID, "user": g.User, "role": g.Role, "tenant": g.Tenant,
		"starts_at": g.StartsAt, "expires_at": g.ExpiresAt, "reason": r.Reason, "ticket": r.Ticket,
	}
}

// record appends one audit event in tx.
func record(tx *audit.Tx, at time.Time, typ, actor, subject string, data map[string]any) error {
	return tx.Append(audit.Event{TS: at, Type: typ, Actor: actor, Subject: subject, Data: data})
}
