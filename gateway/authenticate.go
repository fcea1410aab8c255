package gateway

import (
	"context"
	"errors"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/policy"
)

// Extension keys that carry the authenticated identity from the handshake to
// the channel handlers, inside the connection's gossh.Permissions.
const (
	extUser        = "warden-user"
	extFingerprint = "warden-key-fingerprint"
)

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
	if s.Policy().UserByKey(key) == nil {
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
			u := s.Policy().UserByKey(key)
			if u == nil {
				return nil, errors.New("gateway: unknown key")
			}
			if gc == nil || !s.users.hold(gc, u.Name) {
				s.auditRefusal(context.Background(), "connection.refused", "too many connections", u.Name, truncate(conn.User(), 256), map[string]any{
					"reason": "too many connections", "max": s.users.max, "client_addr": conn.RemoteAddr().String(),
				})
				return nil, errors.New("gateway: too many connections for " + u.Name)
			}
			return &gossh.Permissions{Extensions: map[string]string{
				extUser:        u.Name,
				extFingerprint: gossh.FingerprintSHA256(key),
			}}, nil
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
		Config: gossh.Config{
			// AES-GCM only. The client's order picks the cipher, and
			// OpenSSH lists chacha20-poly1305 (no assembly in x/crypto on
			// amd64) and then AES-CTR with HMAC-SHA2 (a second pass over
			// every byte, on both ends) before AES-GCM; either would cost
			// the bridge a third of its throughput. Every OpenSSH since 6.2
			// and PuTTY since 0.76 offer AES-GCM by default.
			Ciphers: []string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com"},
		},
		MaxAuthTries: 6,
	}
}

// identity is who is behind an authenticated connection.
type identity struct {
	user        *policy.User
	fingerprint string
	clientAddr  string
}

// identify returns the identity bound during authentication, looked up again
// in the current policy (reidentify) so that a user removed since is
// refused, and so is a key removed since: a connection opened with a key
// that leaked and was then replaced (a ControlMaster holds it for hours)
// must not open new channels under the user's name, though the user still
// exists with the new key.
func (s *Server) identify(conn *gossh.ServerConn) (identity, bool) {
	if conn.Permissions == nil {
		return identity{}, false
	}
	name := conn.Permissions.Extensions[extUser]
	u := s.Policy().User(name)
	if name == "" || u == nil {
		return identity{}, false
	}
	return s.reidentify(identity{user: u, fingerprint: conn.Permissions.Extensions[extFingerprint], clientAddr: conn.RemoteAddr().String()})
}

// connUser is the user name bound to conn at authentication, unchecked
// against the current policy: for audit events about the connection.
func connUser(conn *gossh.ServerConn) string {
	if conn.Permissions == nil {
		return ""
	}
	return conn.Permissions.Extensions[extUser]
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
