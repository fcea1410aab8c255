package gateway

import (
	"bytes"
	"context"
	"errors"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/policy"
)

// errPolicyChanged ends a live session that a reloaded policy no longer
// entitles; its text is the line the client sees.
var errPolicyChanged error = &userError{msg: "access removed by a policy change; session closed"}

// endPolicyChanged is the end_reason of such a session.
const endPolicyChanged = "policy_changed"

// EventAccessRemoved is the audit event of a live session ended because a
// reloaded policy no longer entitles it.
const EventAccessRemoved = "session.access_removed"

// ApplyPolicy puts p in force, like SetPolicy, and then ends at once every
// live session that p no longer entitles (see entitledUnder), with the line
// "warden: access removed by a policy change; session closed", end_reason
// "policy_changed" and a session.access_removed event; the others go on
// untouched. The caller must have recorded p as a policy version before
// (evidence.RecordPolicy), so that every session row names a stored
// policy. Grants the new policy no longer allows are the JIT service's to
// end (jit.Service.Deprovision), which closes their sessions too. It
// returns the IDs of the sessions it ended. A user the new policy no
// longer has loses their sign-in bindings and console browser sessions
// too, with reason policy_changed: out of the policy they are refused at
// their next use anyway, but those rows name the user, and would come back
// to life if a later reload put the name back (the same user returning, or
// a new person given the name).
func (s *Server) ApplyPolicy(ctx context.Context, p *policy.Config) []string {
	before := s.Policy()
	s.SetPolicy(p)
	// Judge by the policy as the gateway applies it: p merged with the
	// directory users (SCIM, sign-in). Judging by p alone would end every
	// directory user's session on each reload.
	merged := s.Policy()
	if before != nil {
		for _, u := range before.Users {
			if merged.User(u.Name) == nil {
				held := s.endHeldApart(ctx, u.Name, endPolicyChanged, "warden")
				s.log.Info("user left the policy", "user", u.Name, "sign_ins_ended", held["sign_ins"], "console_sessions_ended", held["console_sessions"])
			}
		}
	}
	var ended []string
	for id, ss := range s.live.snapshot() {
		ss.mu.Lock()
		ident, adm := ss.ident, ss.adm
		ss.mu.Unlock()
		why := entitledUnder(merged, ident, ss.t, adm, ss.grantID)
		if why == "" && !s.stillBound(merged, ident) {
			why = "sign-in no longer names this user"
		}
		if why == "" || !s.live.cancelSession(id, errPolicyChanged) {
			continue
		}
		ended = append(ended, id)
		s.audit(ctx, EventAccessRemoved, "warden", id, map[string]any{
			"session_id": id, "user": ident.user.Name, "target": ss.t.String(), "role": adm.role.Name,
			"reason": why, "policy_sha256": p.Version(),
		})
		s.log.Info("session ended by a policy change", "session", id, "user", ident.user.Name, "reason", why)
	}
	return ended
}

// entitledUnder says why p would not admit the session that was admitted
// as adm, or "" when it still would: the user must still exist and own the
// key that authenticated (a key bound by sign-in is the caller's to check:
// the binding, not p, names its user), the host must still exist in its
// tenant with the same address and way to verify its key, and
//   - a session under a grant: the grant's role must still be a privileged
//     role of that tenant covering login@host, for which the user is
//     eligible and which the user may hold (InAnyFor, as every role
//     decision: a directory limited to another tenant holds none of this
//     one's roles); the grant's own end is jit's: Deprovision;
//   - a standing session: some standing role must still give the user
//     login@host (it may be another role than the one that admitted it:
//     the access, not the role's name, is what the user holds).
func entitledUnder(p *policy.Config, id identity, t target, adm admission, grantID int64) string {
	if id.user == nil || adm.host == nil || adm.role == nil {
		return "" // not admitted yet: the start request is checked again (recheck)
	}
	u := p.User(id.user.Name)
	if u == nil {
		return "user removed from the policy"
	}
	// A key bound by sign-in is in no policy user's keys (unless a
	// directory merged it in): the binding is judged by the caller.
	if !id.bound && !ownsKey(u, id.fingerprint) {
		return "key removed from the policy"
	}
	h, err := p.ResolveHost(adm.host.QualifiedName())
	if err != nil {
		return "host removed from the policy"
	}
	if !sameMachine(h, adm.host) {
		// The session is connected to the machine the old entry named:
		// one the policy no longer lists, or no longer trusts the key of.
		return "host " + h.QualifiedName() + " now names another address or host key"
	}
	if grantID != 0 {
		r := p.Role(adm.role.Name)
		if r == nil || !r.Privileged || r.Tenant != adm.role.Tenant || !r.Covers(h, t.login) || !u.InAnyFor(r, r.Eligible) {
			return "role " + adm.role.Name + " no longer gives this access"
		}
		return ""
	}
	if p.Authorize(u, t.login, h).Standing == nil {
		return "no role gives standing access to " + t.String() + " any more"
	}
	return ""
}

// stillBound reports whether a key bound by sign-in is still bound to its
// user, who p still knows (reidentify's rule); other keys pass. Without it
// a reload would have to judge such keys by p's keys, where they are not.
func (s *Server) stillBound(p *policy.Config, id identity) bool {
	if !id.bound || id.user == nil {
		return true
	}
	u := p.User(id.user.Name)
	if u == nil {
		return false
	}
	_, ok := s.rebound(id, u)
	return ok
}

// sameMachine reports whether a and b name the same machine, verified the
// same way: a changed address is another machine, a changed pin or CA
// means the old key is no longer trusted.
func sameMachine(a, b *policy.Host) bool {
	return a.Address == b.Address && a.KnownHosts == b.KnownHosts &&
		sameKey(a.HostKey, b.HostKey) && sameKey(a.HostCA, b.HostCA)
}

func sameKey(a, b gossh.PublicKey) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return bytes.Equal(a.Marshal(), b.Marshal())
}

func ownsKey(u *policy.User, fingerprint string) bool {
	for _, k := range u.Keys {
		if gossh.FingerprintSHA256(k) == fingerprint {
			return true
		}
	}
	return false
}

// sessionHooks run a test's code where a session channel's opening can
// race a reload (ApplyPolicy): so a test can reload at that very moment
// instead of hoping a sleep lands there. Each nil hook does nothing.
type sessionHooks struct {
	// admitted runs once the channel is authorized, before it joins the
	// registry that ApplyPolicy judges.
	admitted func()
	// started runs once its start request passed recheck and its row is
	// written, before its credential is signed and its host dialled.
	started func(sessionID string)
}

func (h *sessionHooks) onAdmitted() {
	if h != nil && h.admitted != nil {
		h.admitted()
	}
}

func (h *sessionHooks) onStarted(id string) {
	if h != nil && h.started != nil {
		h.started(id)
	}
}

// isPolicyChange reports whether cause is a policy change.
func isPolicyChange(cause error) bool { return errors.Is(cause, errPolicyChanged) }
