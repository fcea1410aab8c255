package gateway

import (
	"context"
	"errors"
	"strings"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/sso"
)

// Extension keys that carry the authenticated identity from the handshake to
// the channel handlers, inside the connection's gossh.Permissions.
const (
	extUser        = "warden-user"
	extFingerprint = "warden-key-fingerprint"
	// extBound marks a key that names its user through a single sign-on
	// binding rather than the policy, and holds the key's wire form (for
	// `login` again); identify checks the binding again.
	extBound = "warden-sso-bound"
	// extSignIn marks a key nobody knows, admitted only to run `login`
	// (commands_sso.go); it holds the key's wire form.
	extSignIn = "warden-sign-in-key"
)

// signOn is single sign-on for SSH keys (package sso); nil admits policy
// keys only. With it, a key bound by `ssh gw login` names its user, and an
// unknown key may connect to the command interface to sign in.
type signOn interface {
	// BoundUser returns the user the key fingerprint is bound to now.
	BoundUser(ctx context.Context, fingerprint string) (string, bool)
	// AdmitConn takes a slot for an unknown key's connection from
	// clientAddr; ok is false when too many are open.
	AdmitConn(clientAddr string) (release func(), ok bool)
	// PendingTTL bounds how long such a connection may stay.
	PendingTTL() time.Duration
	Begin(ctx context.Context, key gossh.PublicKey, clientAddr, localHost string) (*sso.Pending, error)
	Logout(ctx context.Context, fingerprint, user string) error
	Bindings(ctx context.Context, user string) ([]sso.Binding, error)
}

// boundUser returns the user a bound key names, if that user is still in
// the policy. (When directory users merge in, the lookup here is the same
// as identify's.)
func (s *Server) boundUser(ctx context.Context, key gossh.PublicKey) string {
	if s.opt.SignOn == nil {
		return ""
	}
	name, ok := s.opt.SignOn.BoundUser(ctx, gossh.FingerprintSHA256(key))
	if !ok || s.Policy().User(name) == nil {
		return ""
	}
	return name
}

// signInAllowed reports whether an unknown key may connect as the SSH user
// name user, to run `login` and nothing else. Only the command interface
// (a name without '@') qualifies: a key offered for LOGIN@HOST is refused
// as before, so that OpenSSH goes on to the next key in the agent instead
// of signing with a stranger's.
func (s *Server) signInAllowed(user string) bool {
	return s.opt.SignOn != nil && !strings.Contains(user, "@")
}

// knownKey is the gliderlabs PublicKeyHandler. It only answers whether a key
// belongs to some user; it must not remember which key it saw, because the
// client may offer (query) one key and then sign with another (the lesson of
// CVE-2024-45337). The identity is bound in verifiedKey instead. A key that
// names nobody is counted (not stored) for the pre-authentication report.
func (s *Server) knownKey(ctx gliderssh.Context, key gliderssh.PublicKey) bool {
	gc := gateConnOf(ctx)
	if gc == nil {
		return false // not admitted through the gate: fail closed
	}
	if s.Policy().UserByKey(key) == nil && s.boundUser(ctx, key) == "" && !s.signInAllowed(ctx.User()) {
		s.report.rejectedKey(gc.src, key.Marshal())
		return false
	}
	return true
}

// serverConfig builds the per-connection x/crypto config. The identity is
// attached in VerifiedPublicKeyCallback, which x/crypto calls only after the
// client proved possession of the key, and whose Permissions become the
// connection's: so conn.Permissions names the key that really authenticated.
func (s *Server) serverConfig(gctx gliderssh.Context) *gossh.ServerConfig {
	gc := gateConnOf(gctx)
	return &gossh.ServerConfig{
		VerifiedPublicKeyCallback: func(conn gossh.ConnMetadata, key gossh.PublicKey, _ *gossh.Permissions, _ string) (*gossh.Permissions, error) {
			fp := gossh.FingerprintSHA256(key)
			var ext map[string]string
			if u := s.Policy().UserByKey(key); u != nil {
				ext = map[string]string{extUser: u.Name, extFingerprint: fp}
			} else if name := s.boundUser(gctx, key); name != "" {
				ext = map[string]string{extUser: name, extFingerprint: fp, extBound: string(key.Marshal())}
			} else if gc != nil && s.signInAllowed(conn.User()) {
				return s.admitSignIn(gctx, gc, key)
			} else {
				return nil, errors.New("gateway: unknown key")
			}
			// A user holds at most maxConnsPerUser connections (conn.go).
			if name := ext[extUser]; gc == nil || !s.users.hold(gc, name) {
				s.auditRefusal(context.Background(), "connection.refused", "too many connections", name, truncate(conn.User(), 256), map[string]any{
					"reason": "too many connections", "max": s.users.max, "client_addr": conn.RemoteAddr().String(),
				})
				return nil, errors.New("gateway: too many connections for " + name)
			}
			return &gossh.Permissions{Extensions: ext}, nil
		},
		// x/crypto calls AuthLogCallback after every authentication
		// request, and with a nil error exactly when the client has
		// authenticated: that ends its grace time and frees its slot.
		// Refusals are aggregated per source (preauth_report.go), not one
		// audit row each: a key-spraying client must not grow the chain
		// with every key it sends. The "none" request every client sends
		// first tries no credential and is not counted.
		AuthLogCallback: func(conn gossh.ConnMetadata, method string, err error) {
			switch {
			case gc == nil:
			case err == nil:
				s.gate.authenticated(gc)
			case method != "none":
				s.report.failed(gc.src, conn.User())
			}
		},
		// Passwords and keyboard-interactive are never offered: identity is
		// the key (CONTRACT §1). Leaving their callbacks nil removes them.
		//
		// What the handshake offers: ssh_algorithms, or the defaults
		// (server.go), from the policy in force when the client connects.
		Config:       clientAlgorithms(s.Policy().SSHAlgorithms),
		MaxAuthTries: 6,
	}
}

// identity is who is behind an authenticated connection.
type identity struct {
	user        *policy.User
	fingerprint string
	clientAddr  string
	// bound is set when a sign-in binding, not the policy, names the
	// user; key is then the bound key. localAddr is where the client
	// reached the gateway (for the links `login` and `console` print).
	bound     bool
	key       gossh.PublicKey
	localAddr string
}

// identify returns the identity bound during authentication, looked up again
// in the current policy (reidentify) so that a user removed since is
// refused, and so is a key removed since: a connection opened with a key
// that leaked and was then replaced (a ControlMaster holds it for hours)
// must not open new channels under the user's name, though the user still
// exists with the new key. A key bound by sign-in must still be bound to
// the same user: a logout, expiry or deprovisioning since the handshake
// refuses its next channel. A key admitted only to sign in has no identity.
func (s *Server) identify(conn *gossh.ServerConn) (identity, bool) {
	if conn.Permissions == nil {
		return identity{}, false
	}
	name := conn.Permissions.Extensions[extUser]
	u := s.Policy().User(name)
	if name == "" || u == nil {
		return identity{}, false
	}
	id := identity{user: u, fingerprint: conn.Permissions.Extensions[extFingerprint], clientAddr: conn.RemoteAddr().String(),
		localAddr: conn.LocalAddr().String()}
	if raw := conn.Permissions.Extensions[extBound]; raw != "" {
		key, err := gossh.ParsePublicKey([]byte(raw))
		if err != nil {
			return identity{}, false
		}
		id.bound, id.key = true, key
	}
	return s.reidentify(id)
}

// connUser is the user name bound to conn at authentication, unchecked
// against the current policy: for audit events about the connection.
func connUser(conn *gossh.ServerConn) string {
	if conn.Permissions == nil {
		return ""
	}
	return conn.Permissions.Extensions[extUser]
}

// rebound is reidentify for a key named by a sign-in binding: the binding
// must still be live and name the same user.
func (s *Server) rebound(id identity, u *policy.User) (identity, bool) {
	if s.opt.SignOn == nil {
		return identity{}, false
	}
	name, ok := s.opt.SignOn.BoundUser(context.Background(), id.fingerprint)
	if !ok || name != u.Name {
		return identity{}, false
	}
	id.user = u
	return id, true
}

// admitSignIn admits a proven but unknown key to sign in. Such connections
// are bounded like pending sign-ins (per source and in all), and closed
// once a sign-in link would have expired, so that strangers cannot hold
// authenticated connections open.
func (s *Server) admitSignIn(gctx gliderssh.Context, gc *gateConn, key gossh.PublicKey) (*gossh.Permissions, error) {
	release, ok := s.opt.SignOn.AdmitConn(gc.RemoteAddr().String())
	if !ok {
		return nil, errors.New("gateway: too many sign-in connections")
	}
	deadline := time.AfterFunc(s.opt.SignOn.PendingTTL()+time.Minute, func() { _ = gc.Close() })
	context.AfterFunc(gctx, func() { deadline.Stop(); release() })
	return &gossh.Permissions{Extensions: map[string]string{
		extFingerprint: gossh.FingerprintSHA256(key),
		extSignIn:      string(key.Marshal()),
	}}, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
