package gateway

import (
	"context"
	"errors"
	"sync"

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
// CVE-2024-45337). The identity is bound in verifiedKey instead.
func (s *Server) knownKey(_ gliderssh.Context, key gliderssh.PublicKey) bool {
	return s.Policy().UserByKey(key) != nil
}

// serverConfig builds the per-connection x/crypto config. The identity is
// attached in VerifiedPublicKeyCallback, which x/crypto calls only after the
// client proved possession of the key, and whose Permissions become the
// connection's: so conn.Permissions names the key that really authenticated.
func (s *Server) serverConfig(gctx gliderssh.Context) *gossh.ServerConfig {
	var failed authFailures
	return &gossh.ServerConfig{
		VerifiedPublicKeyCallback: func(conn gossh.ConnMetadata, key gossh.PublicKey, _ *gossh.Permissions, _ string) (*gossh.Permissions, error) {
			u := s.Policy().UserByKey(key)
			if u == nil {
				return nil, errors.New("gateway: unknown key")
			}
			return &gossh.Permissions{Extensions: map[string]string{
				extUser:        u.Name,
				extFingerprint: gossh.FingerprintSHA256(key),
			}}, nil
		},
		AuthLogCallback: func(conn gossh.ConnMetadata, method string, err error) {
			if err != nil && method == "publickey" {
				failed.add()
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
		// A connection that ends without authenticating leaves one
		// auth.failed event, not one per key the client offered.
		PreAuthConnCallback: func(c gossh.ServerPreAuthConn) {
			context.AfterFunc(gctx, func() {
				if _, ok := gctx.Value(gliderssh.ContextKeyConn).(*gossh.ServerConn); ok {
					return // authenticated: nothing to report
				}
				if failed.count() > 0 {
					s.audit(context.Background(), "auth.failed", "", truncate(c.User(), 256), map[string]any{
						"client_addr": c.RemoteAddr().String(),
						"reason":      "unknown public key",
						"attempts":    failed.count(),
					})
				}
			})
		},
	}
}

// authFailures counts rejected public keys on one connection.
type authFailures struct {
	mu sync.Mutex
	n  int
}

func (a *authFailures) add() { a.mu.Lock(); a.n++; a.mu.Unlock() }
func (a *authFailures) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n
}

// identity is who is behind an authenticated connection.
type identity struct {
	user        *policy.User
	fingerprint string
	clientAddr  string
}

// identify returns the identity bound during authentication, looked up again
// in the current policy so that a user removed since is refused.
func (s *Server) identify(conn *gossh.ServerConn) (identity, bool) {
	if conn.Permissions == nil {
		return identity{}, false
	}
	name := conn.Permissions.Extensions[extUser]
	u := s.Policy().User(name)
	if name == "" || u == nil {
		return identity{}, false
	}
	return identity{user: u, fingerprint: conn.Permissions.Extensions[extFingerprint], clientAddr: conn.RemoteAddr().String()}, true
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
