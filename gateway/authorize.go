package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/jit"
	"github.com/warden-gw/warden/policy"
)

// admission is the outcome of a successful authorization: the role that
// admits the session and, for privileged roles, the grant and its end.
type admission struct {
	host    *policy.Host
	role    *policy.Role
	grantID int64
	// deadline is when the session must end (the grant's expiry); zero for
	// standing access.
	deadline time.Time
	// policy is the Version of the policy that admitted the session; the
	// session row records it for the evidence packet.
	policy string
}

// authorize decides whether id may open a session as t.login on t.host.
// A refusal is a *userError whose text is safe to show.
func (s *Server) authorize(ctx context.Context, id identity, t target, port string) (admission, error) {
	pol := s.Policy()
	h, err := pol.ResolveHost(t.host)
	if err != nil {
		var amb *policy.AmbiguousHostError
		if errors.As(err, &amb) {
			return admission{}, refusal("host %s exists in several tenants; use one of: %s", t.host, strings.Join(amb.Choices, ", "))
		}
		return admission{}, refusal("unknown host %s", t.host)
	}
	d := pol.Authorize(id.user, t.login, h)
	if d.Standing != nil {
		return admission{host: h, role: d.Standing, policy: pol.Version()}, nil
	}
	if len(d.Requestable) == 0 {
		return admission{}, refusal("%s may not log in as %s on %s: no role grants it", id.user.Name, t.login, h.Name)
	}
	if gc := s.opt.JIT; gc != nil {
		for _, r := range d.Requestable {
			g, ok, err := gc.ActiveGrant(ctx, id.user.Name, r.Name)
			if err != nil {
				return admission{}, internalError("grant lookup", err)
			}
			if ok && g.ExpiresAt.After(s.now()) {
				return admission{host: h, role: r, grantID: g.ID, deadline: g.ExpiresAt, policy: pol.Version()}, nil
			}
		}
	}
	names := make([]string, len(d.Requestable))
	for i, r := range d.Requestable {
		names[i] = r.Name
	}
	r := d.Requestable[0]
	return admission{}, refusal("no active grant for role %s on %s; run: ssh -p %s gw request %s --for %s --reason ...",
		strings.Join(names, " or "), h.Name, port, r.Name, suggestDuration(r))
}

// suggestDuration proposes a request length no longer than the role allows.
func suggestDuration(r *policy.Role) string {
	d := time.Duration(r.MaxDuration)
	if d <= 0 || d > time.Hour {
		d = time.Hour
	}
	return shortDuration(d)
}

// shortDuration prints 1h, 90m or 45s rather than Go's 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = s[:len(s)-2]
	}
	if strings.HasSuffix(s, "h0m") {
		s = s[:len(s)-2]
	}
	return s
}

// certTTL is the certificate lifetime: cert_ttl, never beyond the grant.
func certTTL(certTTL time.Duration, now, deadline time.Time) time.Duration {
	if !deadline.IsZero() {
		if left := deadline.Sub(now); left < certTTL {
			return left
		}
	}
	return certTTL
}

// userError is a refusal whose message is meant for the client. cause, when
// set, is the internal reason, kept for the log and audit event only.
type userError struct {
	msg   string
	cause error
}

func (e *userError) Error() string {
	if e.cause != nil {
		return e.msg + ": " + e.cause.Error()
	}
	return e.msg
}

func (e *userError) Unwrap() error { return e.cause }

func refusal(format string, args ...any) error {
	return &userError{msg: fmt.Sprintf(format, args...)}
}

// internalError hides cause from the client behind a generic line.
func internalError(op string, cause error) error {
	return &userError{msg: "internal error; the session was refused and logged", cause: fmt.Errorf("%s: %w", op, cause)}
}

// userMessage is the one line the client sees for err.
func userMessage(err error) string {
	var ue *userError
	if errors.As(err, &ue) {
		return "warden: " + ue.msg
	}
	return "warden: internal error; the session was refused and logged"
}

// recheck admits a session again when its start request arrives. The
// channel was admitted when it opened, but a client may wait before it
// asks to start; in between, its key may have been removed, the policy
// reloaded, or its grant revoked or expired (a revocation also cancels the
// session through the registry, but this check does not rely on the
// notification having arrived). The session starts only if the identity
// still holds, the same role still admits it on the same host, and a grant
// session's own grant is still active in the store. On success the fresh
// identity and admission replace the ones of the channel's opening.
func (ss *session) recheck(ctx context.Context) error {
	s := ss.s
	ident, ok := s.reidentify(ss.ident)
	if !ok {
		return refusal("your key is no longer known")
	}
	var g jit.Grant
	if ss.grantID != 0 {
		var err error
		if g, ok, err = s.activeGrant(ctx, ident.user.Name, ss.grantID); err != nil {
			return internalError("grant lookup", err)
		}
		if !ok {
			return refusal("grant %d ended before the session started", ss.grantID)
		}
	}
	adm, err := s.authorize(ctx, ident, ss.t, ss.port)
	if err != nil {
		return err
	}
	if adm.role.Name != ss.adm.role.Name || adm.host.QualifiedName() != ss.adm.host.QualifiedName() ||
		ss.grantID != 0 && (g.Role != adm.role.Name || g.Tenant != adm.role.Tenant) {
		return refusal("your access to %s changed before the session started; open a new session", ss.t.String())
	}
	if ss.grantID != 0 {
		// authorize picks the longest-lasting grant of the role; the
		// session stays bound to the one it was admitted under.
		adm.grantID, adm.deadline = g.ID, g.ExpiresAt
	}
	ss.mu.Lock()
	ss.ident, ss.adm = ident, adm
	ss.mu.Unlock()
	return nil
}

// activeGrant finds user's grant id among their grants active now.
func (s *Server) activeGrant(ctx context.Context, user string, id int64) (jit.Grant, bool, error) {
	gs, err := s.opt.JIT.Grants(ctx, user, true)
	if err != nil {
		return jit.Grant{}, false, err
	}
	for _, g := range gs {
		if g.ID == id && g.ExpiresAt.After(s.now()) {
			return g, true, nil
		}
	}
	return jit.Grant{}, false, nil
}

// reidentify looks the identity up again in the current policy: the user
// must still exist and still own the key that authenticated the
// connection, so removing a key ends its access at the next session start.
func (s *Server) reidentify(id identity) (identity, bool) {
	u := s.Policy().User(id.user.Name)
	if u == nil {
		return identity{}, false
	}
	if id.bound { // a sign-in binding, not the policy, names the user (authenticate.go)
		return s.rebound(id, u)
	}
	for _, k := range u.Keys {
		if gossh.FingerprintSHA256(k) == id.fingerprint {
			id.user = u
			return id, true
		}
	}
	return identity{}, false
}
