package sshtest

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"os"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// CA is an ed25519 certificate authority for tests. It signs user
// certificates that sshd's TrustedUserCAKeys accepts and host certificates
// that a known_hosts @cert-authority line accepts.
type CA struct {
	// Signer holds the CA's private key.
	Signer ssh.Signer
	// PublicKey is the CA's public key: the TrustedUserCAKeys value.
	PublicKey ssh.PublicKey
	// Now is the clock that certificate validity starts from; nil means
	// time.Now. Tests of expiry set it to sign certificates in the past.
	Now func() time.Time
}

// certValidity is how long a test certificate lives. It starts five minutes
// before Now so that small clock differences never make it "not yet valid".
const (
	certBackdate = 5 * time.Minute
	certLifetime = time.Hour
)

// NewCA generates a CA key from crypto/rand.
func NewCA(t testing.TB) *CA {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sshtest: generate CA key: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("sshtest: CA signer: %v", err)
	}
	return &CA{Signer: signer, PublicKey: signer.PublicKey()}
}

// UserCert signs a user certificate for pub with the given key ID and
// principals (login names). It carries the extensions ssh-keygen grants by
// default; without permit-pty, sshd would refuse every terminal.
func (ca *CA) UserCert(t testing.TB, pub ssh.PublicKey, keyID string, principals ...string) *ssh.Certificate {
	t.Helper()
	cert := ca.template(t, pub, ssh.UserCert, keyID, principals)
	cert.Permissions.Extensions = map[string]string{
		"permit-X11-forwarding":   "",
		"permit-agent-forwarding": "",
		"permit-port-forwarding":  "",
		"permit-pty":              "",
		"permit-user-rc":          "",
	}
	ca.sign(t, cert)
	return cert
}

// HostCert signs a host certificate for pub, valid for the given host names
// (for a loopback test host: "127.0.0.1" and "localhost").
func (ca *CA) HostCert(t testing.TB, pub ssh.PublicKey, principals ...string) *ssh.Certificate {
	t.Helper()
	cert := ca.template(t, pub, ssh.HostCert, "sshtest host", principals)
	ca.sign(t, cert)
	return cert
}

func (ca *CA) template(t testing.TB, pub ssh.PublicKey, certType uint32, keyID string, principals []string) *ssh.Certificate {
	t.Helper()
	now := time.Now
	if ca.Now != nil {
		now = ca.Now
	}
	var serial [8]byte
	if _, err := rand.Read(serial[:]); err != nil {
		t.Fatalf("sshtest: certificate serial: %v", err)
	}
	start := now()
	return &ssh.Certificate{
		Key:             pub,
		Serial:          binary.BigEndian.Uint64(serial[:]),
		CertType:        certType,
		KeyId:           keyID,
		ValidPrincipals: principals,
		ValidAfter:      uint64(start.Add(-certBackdate).Unix()),
		ValidBefore:     uint64(start.Add(certLifetime).Unix()),
	}
}

func (ca *CA) sign(t testing.TB, cert *ssh.Certificate) {
	t.Helper()
	if err := cert.SignCert(rand.Reader, ca.Signer); err != nil {
		t.Fatalf("sshtest: sign certificate %q: %v", cert.KeyId, err)
	}
}

// writeFile writes data with mode 0600 or fails the test; test key material
// is private even in a temporary directory.
func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatalf("sshtest: write %s: %v", path, err)
	}
}
