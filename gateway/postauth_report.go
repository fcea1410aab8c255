package gateway

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/warden-gw/warden/audit"
)

// Refusals after authentication (forwarding requests, channels of other
// types, session channels refused at open, subsystems other than sftp,
// command-interface errors, setup requests past their bounds) cost the
// client one packet each, and each would be a row in a chain that is never
// pruned: an authenticated client could grow the database without bound
// at the speed of its link. So, as the pre-authentication report does for
// sources, refusals are budgeted per user and window:
//
//   - the first refusalBurst refusals of each event type of a user in a
//     window are audit events of their own, with all their detail; the
//     budgets are per type so that cheap noise of one kind (forwarding
//     requests) cannot use up the events of another (probes of hosts);
//   - the rest are counted by what was refused, and written as one
//     refusals.suppressed event when the window ends, with the distinct
//     subjects (targets) they named, up to refusalMaxSubjects.
//
// So a user costs the chain a bounded number of rows a minute, however
// many connections and channels they use. Users are bounded by the policy
// (a connection whose key was removed counts under the empty name).
//
// Concurrency: one mutex guards the windows; the clock is injected.
const (
	refusalBurst       = 20
	refusalWindowLen   = time.Minute
	refusalMaxKinds    = 16 // distinct counts kept per window; the rest under "other"
	refusalMaxSubjects = 32 // distinct subjects kept per window
	refusalMaxUsers    = 1024
	refusalOther       = "other"
)

type refusalReport struct {
	now func() time.Time

	mu     sync.Mutex
	byUser map[string]*refusalWindow
}

type refusalWindow struct {
	since        time.Time
	written      map[string]int // events written, by type
	suppressed   int
	counts       map[string]int
	subjects     []string
	subjectsMore int // suppressed refusals whose subject did not fit
}

func newRefusalReport(now func() time.Time) *refusalReport {
	return &refusalReport{now: now, byUser: map[string]*refusalWindow{}}
}

// allow reports whether a refusal of user, of event type typ and kind
// (what was refused: a request type, a short reason) about subject, gets
// its own audit event. If not, it is counted for the window's
// refusals.suppressed event.
func (r *refusalReport) allow(user, typ, kind, subject string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	w := r.byUser[user]
	if w == nil {
		if len(r.byUser) >= refusalMaxUsers {
			user = refusalOther
			w = r.byUser[user]
		}
		if w == nil {
			w = &refusalWindow{since: r.now(), written: map[string]int{}, counts: map[string]int{}}
			r.byUser[user] = w
		}
	}
	if w.written[typ] < refusalBurst {
		w.written[typ]++
		return true
	}
	w.suppressed++
	w.addSubject(printable(subject, 128))
	key := typ
	if kind != "" {
		key += " " + printable(kind, 64)
	}
	if _, ok := w.counts[key]; !ok && len(w.counts) >= refusalMaxKinds {
		key = refusalOther
	}
	w.counts[key]++
	return false
}

func (w *refusalWindow) addSubject(s string) {
	for _, x := range w.subjects {
		if x == s {
			return
		}
	}
	if len(w.subjects) < refusalMaxSubjects {
		w.subjects = append(w.subjects, s)
	} else {
		w.subjectsMore++
	}
}

// flush returns the refusals.suppressed events of the windows that have run
// (of all windows when all is set) and forgets those windows. A window that
// suppressed nothing leaves no event.
func (r *refusalReport) flush(all bool) []audit.Event {
	now := r.now()
	r.mu.Lock()
	var users []string
	done := map[string]*refusalWindow{}
	for u, w := range r.byUser {
		if all || !now.Before(w.since.Add(refusalWindowLen)) {
			delete(r.byUser, u)
			if w.suppressed > 0 {
				users = append(users, u)
				done[u] = w
			}
		}
	}
	r.mu.Unlock()
	sort.Strings(users)
	events := make([]audit.Event, 0, len(users))
	for _, u := range users {
		w := done[u]
		events = append(events, audit.Event{TS: now, Type: "refusals.suppressed", Actor: u, Subject: u, Data: map[string]any{
			"since":         w.since.UTC().Format(time.RFC3339),
			"until":         now.UTC().Format(time.RFC3339),
			"written":       w.written,
			"suppressed":    w.suppressed,
			"counts":        w.counts,
			"subjects":      w.subjects,
			"subjects_more": w.subjectsMore,
		}})
	}
	return events
}

// auditRefusal writes a refusal's audit event, or counts it (refusalReport).
// kind is what was refused, for the count. It reports whether the event was
// written, so that callers log only what they audit.
func (s *Server) auditRefusal(ctx context.Context, typ, kind, actor, subject string, data map[string]any) bool {
	s.opt.Metrics.Refused(typ, kind)
	if !s.refusals.allow(actor, typ, kind, subject) {
		return false
	}
	s.audit(ctx, typ, actor, subject, data)
	return true
}

// flushRefusals writes the finished windows of the refusal report (all of
// them when all is set).
func (s *Server) flushRefusals(all bool) {
	for _, e := range s.refusals.flush(all) {
		s.held.write(context.Background(), e)
		s.log.Info("refusals suppressed", "user", e.Actor, "suppressed", e.Data["suppressed"])
	}
}
