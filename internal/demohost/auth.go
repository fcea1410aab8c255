package demohost

import (
	"bytes"
	"log/slog"
	"maps"
	"net"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	"golang.org/x/crypto/ssh"
)

// verifiedCert is the context key of the certificate a connection
// authenticated with: the one whose private key the client proved to hold.
type verifiedCert struct{}

// certAuth decides which clients may log in: holders of a certificate from
// one user CA, and nobody else.
type certAuth struct {
	ca  ssh.PublicKey
	now func() time.Time
	log *slog.Logger
}

// check returns the user certificate in key if it may log in as login: key
// is a user certificate, signed by the CA, valid at now, listing login among
// its principals, and carrying no critical option the host cannot enforce.
// It does the same checks as sshd with TrustedUserCAKeys.
func (a *certAuth) check(login string, key ssh.PublicKey) (*ssh.Certificate, error) {
	checker := ssh.CertChecker{
		// Compare the marshalled keys: equal bytes are the same key, and
		// there is no parsing or normalisation left to disagree about.
		IsUserAuthority: func(k ssh.PublicKey) bool { return bytes.Equal(k.Marshal(), a.ca.Marshal()) },
		Clock:           a.now,
	}
	// Authenticate also refuses plain keys, host certificates and unknown
	// critical options. It allows source-address, which x/crypto/ssh
	// enforces because the Permissions we return carry it. force-command
	// is refused, as the host cannot honour it.
	if _, err := checker.Authenticate(loginMeta(login), key); err != nil {
		return nil, err
	}
	return key.(*ssh.Certificate), nil
}

// publicKey is the gliderlabs PublicKeyHandler. x/crypto/ssh calls it when a
// client offers a key, before the client has proved it holds the private
// key, so nothing here is trusted yet: the key only becomes the
// connection's identity in verified.
func (a *certAuth) publicKey(ctx gliderssh.Context, key gliderssh.PublicKey) bool {
	cert, err := a.check(ctx.User(), key)
	if err != nil {
		a.refuse(ctx, key, err)
		return false
	}
	a.log.Debug("demohost: certificate offered", "login", ctx.User(), "key_id", cert.KeyId, "serial", cert.Serial)
	// x/crypto checks source-address against these Permissions as soon as
	// the key is offered, so a client outside the range learns early.
	ctx.Permissions().CriticalOptions = maps.Clone(cert.CriticalOptions)
	return true
}

// serverConfig is the gliderlabs ServerConfigCallback; it adds verified.
func (a *certAuth) serverConfig(ctx gliderssh.Context) *ssh.ServerConfig {
	return &ssh.ServerConfig{
		VerifiedPublicKeyCallback: func(conn ssh.ConnMetadata, key ssh.PublicKey, _ *ssh.Permissions, _ string) (*ssh.Permissions, error) {
			return a.verified(ctx, conn, key)
		},
	}
}

// verified runs once the client has signed with key. gliderlabs shares one
// Permissions value, and one "public key" context value, between all keys
// a connection offers, so after a client offered a key it does not hold
// and then signed with another, both would name the wrong key. The
// certificate recorded here, and the fresh Permissions returned, are the
// signed key's only.
func (a *certAuth) verified(ctx gliderssh.Context, conn ssh.ConnMetadata, key ssh.PublicKey) (*ssh.Permissions, error) {
	cert, err := a.check(conn.User(), key)
	if err != nil { // the clock may have moved past the certificate's end
		a.refuse(ctx, key, err)
		return nil, err
	}
	ctx.SetValue(verifiedCert{}, cert)
	a.log.Info("demohost: certificate accepted", "login", conn.User(), "remote", conn.RemoteAddr().String(),
		"key_id", cert.KeyId, "serial", cert.Serial)
	return &ssh.Permissions{
		CriticalOptions: maps.Clone(cert.CriticalOptions),
		Extensions:      maps.Clone(cert.Extensions),
	}, nil
}

// sessionCert returns the certificate a session's connection authenticated
// with, or nil before authentication.
func sessionCert(ctx gliderssh.Context) *ssh.Certificate {
	cert, _ := ctx.Value(verifiedCert{}).(*ssh.Certificate)
	return cert
}

// permitPTY is the gliderlabs PtyCallback. As in sshd, a certificate grants
// a terminal only with the permit-pty extension.
func permitPTY(ctx gliderssh.Context, _ gliderssh.Pty) bool {
	cert := sessionCert(ctx)
	if cert == nil {
		return false
	}
	_, ok := cert.Extensions["permit-pty"]
	return ok
}

func (a *certAuth) refuse(ctx gliderssh.Context, key ssh.PublicKey, err error) {
	attrs := []any{"login", ctx.User(), "remote", ctx.RemoteAddr().String(), "reason", err.Error()}
	cert, ok := key.(*ssh.Certificate)
	if !ok {
		// OpenSSH offers the plain key before its certificate on every
		// login, so this refusal is routine and not worth a warning.
		a.log.Debug("demohost: plain key refused", append(attrs, "fingerprint", ssh.FingerprintSHA256(key))...)
		return
	}
	a.log.Warn("demohost: certificate refused", append(attrs, "key_id", cert.KeyId, "serial", cert.Serial)...)
}

// loginMeta is the one part of ssh.ConnMetadata that CertChecker reads: the
// login name, which must be one of the certificate's principals.
type loginMeta string

func (m loginMeta) User() string          { return string(m) }
func (m loginMeta) SessionID() []byte     { return nil }
func (m loginMeta) ClientVersion() []byte { return nil }
func (m loginMeta) ServerVersion() []byte { return nil }
func (m loginMeta) RemoteAddr() net.Addr  { return nil }
func (m loginMeta) LocalAddr() net.Addr   { return nil }
