package vault

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// BuiltinOptions configures the built-in CA. The zero value uses the real
// clock and crypto/rand.
type BuiltinOptions struct {
	// Now is the clock certificates are dated by; nil means time.Now.
	Now func() time.Time
	// Rand is the source of keys, serials and signature nonces; nil means
	// crypto/rand. Tests pass a deterministic reader.
	Rand io.Reader
}

// Builtin is the built-in certificate authority: an ed25519 key in the data
// directory that signs every session's certificate. It is safe for
// concurrent use.
type Builtin struct {
	ca  ssh.Signer
	now func() time.Time

	// mu serializes reads from rand: a caller's deterministic reader need
	// not be safe for concurrent use.
	mu   sync.Mutex
	rand io.Reader
}

// OpenBuiltin loads the CA key at dataDir/ca_ed25519, creating it (and
// dataDir, mode 0700) on first use. A key file that group or others may
// access is refused with ErrInsecureCAFile.
func OpenBuiltin(dataDir string, opt BuiltinOptions) (*Builtin, error) {
	b := &Builtin{now: opt.Now, rand: opt.Rand}
	if b.now == nil {
		b.now = time.Now
	}
	if b.rand == nil {
		b.rand = rand.Reader
	}
	ca, err := loadOrCreateCA(dataDir, b.rand)
	if err != nil {
		return nil, err
	}
	b.ca = ca
	return b, nil
}

// CAPublicKey returns the CA's public key, the value for sshd's
// TrustedUserCAKeys.
func (b *Builtin) CAPublicKey(ctx context.Context) (ssh.PublicKey, error) {
	return b.ca.PublicKey(), nil
}

// Sign generates a session key and signs a user certificate for it.
func (b *Builtin) Sign(ctx context.Context, r SignRequest) (*Credential, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	key, err := newSessionKey(b.rand)
	if err != nil {
		return nil, err
	}
	serial, err := randomSerial(b.rand)
	if err != nil {
		return nil, err
	}
	now := b.now()
	cert := &ssh.Certificate{
		Key:             key.PublicKey(),
		Serial:          serial,
		CertType:        ssh.UserCert,
		KeyId:           r.keyID(),
		ValidPrincipals: []string{r.Login},
		ValidAfter:      uint64(now.Add(-clockSkew).Unix()),
		ValidBefore:     uint64(now.Add(r.TTL).Unix()),
		Permissions:     ssh.Permissions{Extensions: r.extensions()},
	}
	if err := cert.SignCert(b.rand, b.ca); err != nil {
		return nil, fmt.Errorf("vault: sign certificate for %s: %w", r.Login, err)
	}
	return newCredential(cert, key)
}
