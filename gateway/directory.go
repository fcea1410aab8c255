package gateway

import (
	"context"
	"errors"
	"slices"

	"github.com/warden-gw/warden/audit"
	dirs "github.com/warden-gw/warden/identity"
	"github.com/warden-gw/warden/jit"
	"github.com/warden-gw/warden/policy"
)

// errDeprovisioned ends sessions the directory no longer allows: the
// session row's end_reason is "deprovisioned" and the user reads
// "warden: access removed by the directory; session closed".
var errDeprovisioned = errors.New("access removed by the directory")

// endDeprovisioned is the sessions.end_reason of errDeprovisioned.
const endDeprovisioned = "deprovisioned"

// deprovisioner is what the directory needs of the elevation workflow
// (*jit.Service): end grants and cancel requests no longer allowed.
type deprovisioner interface {
	Deprovision(ctx context.Context) ([]jit.Grant, error)
	CancelIneligible(ctx context.Context, users []string, actor string) ([]jit.Request, error)
}

// userEnder ends everything of one user that a service keeps apart from
// the policy, in its own table: the sign-in bindings of package sso, the
// browser sessions of package console (Options.SignOn, ConsoleLinks). It
// returns how many it ended, each with its audit event naming actor.
type userEnder interface {
	EndUser(ctx context.Context, user, reason, actor string) (int, error)
}

// UseDirectory makes the directory's users part of the policy (Policy
// returns the merge, see identity.Directory.Merge) and applies each change
// it commits at once, before the SCIM response goes out:
//   - leaver: no key of theirs authenticates any more (they are not in the
//     merged policy); their live sessions close, their grants end as
//     deprovisioned, their pending requests are cancelled, and their
//     sign-in bindings, console sessions and console links end;
//   - mover: the sessions, grants and requests their new groups no longer
//     allow end the same way; eligibility follows from the merged policy;
//   - joiner: nothing to do; the merged policy admits them.
//
// With a cluster bus, the node that commits a change tells the others
// (topic directory), which reload the directory (identity.Directory.Reload)
// and end only their own sessions the change no longer allows: the
// change's audit events and its grants and requests are the committing
// node's, written once.
func (s *Server) UseDirectory(d *dirs.Directory) {
	s.mu.Lock()
	s.dir = d
	s.mu.Unlock()
	d.Subscribe(s.directoryChanged)
}

// directoryChanged ends what changes took away. Sessions are closed here,
// with errDeprovisioned, before the workflow ends their grants (whose
// callback would otherwise say "revoked"): a session's first cause wins.
func (s *Server) directoryChanged(changes []dirs.Change) {
	ctx := context.Background()
	names := map[string]string{} // user -> directory
	removes := map[string]bool{} // users whose access may have shrunk
	for _, c := range changes {
		names[c.UserName] = c.Directory
		if c.Kind == dirs.Leaver || c.Kind == dirs.Mover || c.Kind == dirs.Edit {
			removes[c.UserName] = true
		}
	}
	reloaded := len(changes) > 0
	for _, c := range changes {
		reloaded = reloaded && c.Reloaded
	}
	pol := s.Policy()
	closed := map[string]string{} // session id -> user
	for id, ss := range s.live.snapshot() {
		ss.mu.Lock()
		ident, adm, t := ss.ident, ss.adm, ss.t
		ss.mu.Unlock()
		if _, ok := names[ident.user.Name]; !ok {
			continue
		}
		if !s.stillEntitled(pol, ident, adm, t) {
			ss.cancel(errDeprovisioned)
			closed[id] = ident.user.Name
		}
	}
	if reloaded {
		// Another node committed it and did the rest (cluster.go).
		if len(closed) > 0 {
			s.log.Info("directory changed on another node; sessions closed", "sessions", len(closed))
		}
		return
	}
	// Tell the other nodes before the slower work below, so that a key
	// removed stops working everywhere as soon as possible. A change
	// that came from no directory (a sign-in binding, held by this node
	// only) is not theirs to reload.
	for _, c := range changes {
		if c.Directory != "" {
			s.publishDirectory()
			break
		}
	}
	// A leaver's sign-in bindings and browser sessions are rows of their
	// own, which name the user: merely leaving the user out of the
	// merged policy hides them only while the user is away. A user
	// re-activated (Entra's restore, an Okta reassignment), or a new
	// person later given the same name, would get them back, live, for
	// the rest of their lifetime. So they end here, on the record.
	ended := map[string]map[string]int{} // user -> what -> how many
	for _, c := range changes {
		if c.Kind != dirs.Leaver || ended[c.UserName] != nil {
			continue
		}
		ended[c.UserName] = s.endHeldApart(ctx, c.UserName, endDeprovisioned, actorOf(c.Directory))
	}
	var grants []jit.Grant
	var reqs []jit.Request
	if dp, ok := s.opt.JIT.(deprovisioner); ok {
		users := make([]string, 0, len(names))
		actor := "warden"
		for n, dir := range names {
			users = append(users, n)
			actor = actorOf(dir)
		}
		slices.Sort(users)
		// Requests are cancelled before grants are ended, not after: an
		// approval decided on the policy from before the change (read
		// before the directory's snapshot moved) may still commit
		// meanwhile. Committed before the cancellation, its grant is in
		// the table when Deprovision reads it, and ends; after it, the
		// request is cancelled and the approval refused. In the other
		// order a grant committed between the two steps was left live,
		// to come back with the user on re-activation.
		var err error
		if reqs, err = dp.CancelIneligible(ctx, users, actor); err != nil {
			s.log.Error("directory change: cancel requests", "err", err)
		}
		if grants, err = dp.Deprovision(ctx); err != nil {
			s.log.Error("directory change: end grants", "err", err)
		}
	}
	// One event per user whose access the change may have shrunk, even
	// when there was nothing live to end: it records when the gateway
	// applied the change (keys stopped working at that moment), and the
	// evidence packet measures from the directory's event to this one.
	for n, dir := range names {
		if !removes[n] {
			continue
		}
		data := map[string]any{"user": n, "directory": dir, "sessions": []string{}, "grants": []int64{}, "requests": []int64{}}
		for what, k := range ended[n] {
			data[what] = k
		}
		for id, u := range closed {
			if u == n {
				data["sessions"] = append(data["sessions"].([]string), id)
			}
		}
		for _, g := range grants {
			if g.User == n {
				data["grants"] = append(data["grants"].([]int64), g.ID)
			}
		}
		for _, r := range reqs {
			if r.User == n {
				data["requests"] = append(data["requests"].([]int64), r.ID)
			}
		}
		s.held.write(ctx, audit.Event{Type: "identity.access_removed", Actor: actorOf(dir), Subject: "user:" + n, Data: data})
	}
}

// endHeldApart ends user's sign-in bindings and browser sessions, for
// reason (deprovisioned, policy_changed) by actor, and says how many of
// each it ended. A failure is
// logged: the user is out of the merged policy, which refuses both at
// their next use, so the rest of the leaver's cut-off goes on.
func (s *Server) endHeldApart(ctx context.Context, user, reason, actor string) map[string]int {
	out := map[string]int{}
	for what, e := range map[string]any{"sign_ins": s.opt.SignOn, "console_sessions": s.opt.ConsoleLinks} {
		ue, ok := e.(userEnder)
		if !ok {
			continue
		}
		n, err := ue.EndUser(ctx, user, reason, actor)
		if err != nil {
			s.log.Error("end "+what+" of a user who left", "user", user, "reason", reason, "err", err)
		}
		out[what] = n
	}
	return out
}

// stillEntitled reports whether the merged policy still admits a live
// session: the user exists and still holds the key (a policy or directory
// key, or a live sign-in binding: reidentify), and the same role still
// covers the same login on the same host (standing, or requestable for a
// grant session, whose grant the workflow checks).
func (s *Server) stillEntitled(pol *policy.Config, ident identity, adm admission, t target) bool {
	id, ok := s.reidentify(ident)
	if !ok || adm.host == nil || adm.role == nil {
		return false
	}
	d := pol.Authorize(id.user, t.login, adm.host)
	if adm.grantID == 0 {
		return d.Standing != nil && d.Standing.Name == adm.role.Name
	}
	return slices.ContainsFunc(d.Requestable, func(r *policy.Role) bool { return r.Name == adm.role.Name })
}

// actorOf is who removed access: the directory, or Warden itself for a
// change that came from no directory (a key binding that ended).
func actorOf(dir string) string {
	if dir == "" {
		return "warden"
	}
	return "scim:" + dir
}
