package vault

import (
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// signedLikeVault builds the certificate a correctly configured Vault role
// returns for r, then lets mod change it before it is signed.
func signedLikeVault(t *testing.T, ca ssh.Signer, key ssh.PublicKey, r SignRequest, mod func(*ssh.Certificate)) *ssh.Certificate {
	t.Helper()
	cert := &ssh.Certificate{
		Key: key, Serial: 42, CertType: ssh.UserCert, KeyId: r.keyID(),
		ValidPrincipals: []string{r.Login},
		ValidAfter:      uint64(testTime.Add(-clockSkew).Unix()),
		ValidBefore:     uint64(testTime.Add(r.TTL).Unix()),
		Permissions:     ssh.Permissions{Extensions: r.extensions()},
	}
	if mod != nil {
		mod(cert)
	}
	if err := cert.SignCert(seeded(20), ca); err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestCheckCertRefusesWhatWasNotAsked(t *testing.T) {
	ca, _ := newSessionKey(seeded(21))
	other, _ := newSessionKey(seeded(22))
	key, _ := newSessionKey(seeded(23))
	r := req()
	for _, tc := range []struct {
		name string
		mod  func(*ssh.Certificate)
		want string // "" means accepted
	}{
		{"exactly as asked", nil, ""},
		{"host certificate", func(c *ssh.Certificate) { c.CertType = ssh.HostCert }, "certificate type"},
		{"another key", func(c *ssh.Certificate) { c.Key = other.PublicKey() }, "another key"},
		{"other key id", func(c *ssh.Certificate) { c.KeyId = "vault-root-abc" }, "key id"},
		{"extra principal", func(c *ssh.Certificate) { c.ValidPrincipals = []string{"root", "admin"} }, "principals"},
		{"other principal", func(c *ssh.Certificate) { c.ValidPrincipals = []string{"admin"} }, "principals"},
		{"default permit-pty without pty", func(c *ssh.Certificate) { c.Extensions = map[string]string{"permit-pty": ""} }, "extensions"},
		{"agent forwarding", func(c *ssh.Certificate) {
			c.Extensions = map[string]string{"permit-agent-forwarding": ""}
		}, "extensions"},
		{"critical option", func(c *ssh.Certificate) { c.CriticalOptions = map[string]string{"force-command": "sh"} }, "critical options"},
		{"lifetime longer than ttl", func(c *ssh.Certificate) { c.ValidBefore += 3600 }, "lifetime"},
		{"whole window shifted late", func(c *ssh.Certificate) { c.ValidAfter += 3600; c.ValidBefore += 3600 }, "after now+ttl"},
		{"already expired", func(c *ssh.Certificate) {
			c.ValidAfter = uint64(testTime.Add(-time.Hour).Unix())
			c.ValidBefore = uint64(testTime.Add(-time.Hour + time.Minute).Unix())
		}, "expired"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert := signedLikeVault(t, ca, key.PublicKey(), r, tc.mod)
			err := checkCert(cert, r, key.PublicKey(), ca.PublicKey(), testTime)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("checkCert = %v, want accepted", err)
				}
				return
			}
			if !errors.Is(err, ErrCertMismatch) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("checkCert = %v, want ErrCertMismatch about %q", err, tc.want)
			}
		})
	}
}

func TestCheckCertRefusesOtherSignerAndForgedSignature(t *testing.T) {
	ca, _ := newSessionKey(seeded(24))
	rogue, _ := newSessionKey(seeded(25))
	key, _ := newSessionKey(seeded(26))
	r := req()
	cert := signedLikeVault(t, rogue, key.PublicKey(), r, nil)
	if err := checkCert(cert, r, key.PublicKey(), ca.PublicKey(), testTime); !errors.Is(err, ErrCertMismatch) {
		t.Fatalf("certificate from another CA: checkCert = %v", err)
	}
	cert = signedLikeVault(t, ca, key.PublicKey(), r, nil)
	cert.Serial++ // signed fields changed after signing
	if err := checkCert(cert, r, key.PublicKey(), ca.PublicKey(), testTime); !errors.Is(err, ErrCertMismatch) {
		t.Fatalf("tampered certificate: checkCert = %v", err)
	}
}

func TestParseSignedKey(t *testing.T) {
	ca, _ := newSessionKey(seeded(27))
	key, _ := newSessionKey(seeded(28))
	cert := signedLikeVault(t, ca, key.PublicKey(), req(), nil)
	line := string(ssh.MarshalAuthorizedKey(cert))
	for _, tc := range []struct {
		name, text string
		ok         bool
	}{
		{"certificate line", line, true},
		{"certificate line with comment", strings.TrimSpace(line) + " vault\n", true},
		{"plain public key", string(ssh.MarshalAuthorizedKey(key.PublicKey())), false},
		{"two lines", line + line, false},
		{"empty", "", false},
		{"garbage", "ssh-ed25519-cert-v01@openssh.com AAAA\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseSignedKey(tc.text)
			if (err == nil) != tc.ok {
				t.Fatalf("parseSignedKey = %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && got.KeyId != cert.KeyId {
				t.Fatalf("parsed key id %q, want %q", got.KeyId, cert.KeyId)
			}
		})
	}
}

// FuzzParseSignedKey feeds arbitrary Vault responses to the parser and the
// check: neither may panic, and nothing random may pass the check.
func FuzzParseSignedKey(f *testing.F) {
	ca, _ := newSessionKey(seeded(29))
	key, _ := newSessionKey(seeded(30))
	r := req()
	f.Add(string(ssh.MarshalAuthorizedKey(key.PublicKey())))
	f.Add("ssh-ed25519-cert-v01@openssh.com AAAAIHNzaC1lZDI1NTE5LWNlcnQtdjAxQG9wZW5zc2guY29t\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, text string) {
		cert, err := parseSignedKey(text)
		if err != nil {
			return
		}
		if checkCert(cert, r, key.PublicKey(), ca.PublicKey(), testTime) == nil {
			t.Fatalf("a certificate not signed by the CA passed the check: %q", text)
		}
	})
}
