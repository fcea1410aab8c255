package vault

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"regexp"
	"time"

	"golang.org/x/crypto/ssh"
)

// SignRequest describes the session a certificate is for.
type SignRequest struct {
	// SessionID, User and Login name the session, the Warden user and the
	// account on the managed host; Login becomes the only principal.
	SessionID, User, Login string
	// TTL is the certificate's lifetime. The caller already applied
	// min(cert_ttl, grant time left).
	TTL time.Duration
	// PTY grants permit-pty; it is set only when the client asked for a pty.
	PTY bool
}

// Credential is a per-session key and its certificate; it is never reused
// nor persisted.
type Credential struct {
	// Signer authenticates with the certificate: ssh.NewCertSigner(Cert, key).
	Signer ssh.Signer
	// Cert is the signed user certificate.
	Cert *ssh.Certificate
	// Serial is Cert.Serial, stored on the session row.
	Serial uint64
	// KeyID is Cert.KeyId, "warden:SESSION_ID:USER".
	KeyID string
}

// ErrUnavailable means the credential vault could not issue a certificate:
// it is down, sealed, refused Warden's token, answered too slowly, or
// returned a certificate other than the one asked for. The cause is wrapped
// with it. Callers refuse the session; there is no fallback.
var ErrUnavailable = errors.New("vault: credential vault unavailable")

// ErrInvalidRequest means a SignRequest field is empty, malformed or out of
// range; nothing was sent to a signer.
var ErrInvalidRequest = errors.New("vault: invalid sign request")

// ErrCertMismatch means Vault returned a certificate that differs from the
// request (principal, key ID, key, type, extensions or lifetime). It is
// always wrapped together with ErrUnavailable.
var ErrCertMismatch = errors.New("vault: certificate does not match the request")

// clockSkew is how far before "now" a certificate becomes valid, so that a
// host whose clock is a little behind still accepts it.
const clockSkew = 30 * time.Second

// permitPTY is the only extension Warden ever grants.
const permitPTY = "permit-pty"

var (
	// sessionIDPattern is wider than the gateway's base32 IDs but excludes
	// ':' so that the key ID splits back into its three parts.
	sessionIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
	// namePattern matches the policy's user and login names. It excludes
	// ':' , ',' and whitespace: a login is sent to Vault in a
	// comma-separated valid_principals list and must stay one principal.
	namePattern = regexp.MustCompile(`^[a-z_][a-zA-Z0-9._-]{0,63}$`)
	// userPattern also admits directory user names (dana@contoso.com,
	// identity.CheckUserName): the user goes only into the key ID, which
	// still splits at ':' since neither ':' nor ',' may appear.
	userPattern = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9._@+'-]{0,255}$`)
)

// validate checks every field before a key is generated or Vault is asked.
func (r SignRequest) validate() error {
	switch {
	case !sessionIDPattern.MatchString(r.SessionID):
		return fmt.Errorf("%w: session id %q", ErrInvalidRequest, r.SessionID)
	case !userPattern.MatchString(r.User):
		return fmt.Errorf("%w: user %q", ErrInvalidRequest, r.User)
	case !namePattern.MatchString(r.Login):
		return fmt.Errorf("%w: login %q", ErrInvalidRequest, r.Login)
	case r.TTL < time.Second:
		// OpenSSH validity has one-second resolution; a shorter lifetime
		// would round to an already expired certificate.
		return fmt.Errorf("%w: ttl %v is below one second", ErrInvalidRequest, r.TTL)
	}
	return nil
}

// keyID is the certificate key ID that sshd logs on every login.
func (r SignRequest) keyID() string {
	return "warden:" + r.SessionID + ":" + r.User
}

// extensions returns the only extensions a Warden certificate may carry.
func (r SignRequest) extensions() map[string]string {
	if r.PTY {
		return map[string]string{permitPTY: ""}
	}
	return map[string]string{}
}

// newSessionKey generates the session's key from rand. The private key stays
// in memory and dies with the Credential.
func newSessionKey(rand io.Reader) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return nil, fmt.Errorf("vault: generate session key: %w", err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("vault: session key signer: %w", err)
	}
	return s, nil
}

// randomSerial reads a 64-bit certificate serial from rand.
func randomSerial(rand io.Reader) (uint64, error) {
	var b [8]byte
	if _, err := io.ReadFull(rand, b[:]); err != nil {
		return 0, fmt.Errorf("vault: certificate serial: %w", err)
	}
	return binary.BigEndian.Uint64(b[:]), nil
}

// newCredential binds a certificate to the session key it was issued for.
func newCredential(cert *ssh.Certificate, key ssh.Signer) (*Credential, error) {
	s, err := ssh.NewCertSigner(cert, key)
	if err != nil {
		return nil, fmt.Errorf("vault: certificate signer: %w", err)
	}
	return &Credential{Signer: s, Cert: cert, Serial: cert.Serial, KeyID: cert.KeyId}, nil
}
