package vault

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"time"

	"golang.org/x/crypto/ssh"
)

// parseSignedKey parses the signed_key field of a Vault sign response: one
// authorized_keys line holding a certificate.
func parseSignedKey(text string) (*ssh.Certificate, error) {
	pub, _, _, rest, err := ssh.ParseAuthorizedKey([]byte(text))
	if err != nil {
		return nil, fmt.Errorf("vault: parse signed_key: %w", err)
	}
	if len(bytes.TrimSpace(rest)) != 0 {
		return nil, fmt.Errorf("vault: parse signed_key: trailing data after the certificate")
	}
	cert, ok := pub.(*ssh.Certificate)
	if !ok {
		return nil, fmt.Errorf("vault: parse signed_key: %s is not a certificate", pub.Type())
	}
	return cert, nil
}

// checkCert verifies that Vault signed what was asked, before the
// certificate is ever presented to a host. A role edited by hand could
// otherwise widen every session: another principal, a longer lifetime, or
// forwarding extensions that bypass the recorder. ca is the mount's CA key;
// done is when Vault's answer arrived.
func checkCert(cert *ssh.Certificate, r SignRequest, key, ca ssh.PublicKey, done time.Time) error {
	ttl := uint64(r.TTL / time.Second)
	switch {
	case cert.CertType != ssh.UserCert:
		return fmt.Errorf("%w: certificate type %d, want user", ErrCertMismatch, cert.CertType)
	case !bytes.Equal(cert.Key.Marshal(), key.Marshal()):
		return fmt.Errorf("%w: certificate is for another key", ErrCertMismatch)
	case !bytes.Equal(cert.SignatureKey.Marshal(), ca.Marshal()):
		return fmt.Errorf("%w: certificate is signed by %s, not by the mount's CA %s",
			ErrCertMismatch, ssh.FingerprintSHA256(cert.SignatureKey), ssh.FingerprintSHA256(ca))
	case cert.KeyId != r.keyID():
		return fmt.Errorf("%w: key id %q, want %q", ErrCertMismatch, cert.KeyId, r.keyID())
	case !slices.Equal(cert.ValidPrincipals, []string{r.Login}):
		return fmt.Errorf("%w: principals %q, want [%q]", ErrCertMismatch, cert.ValidPrincipals, r.Login)
	case len(cert.CriticalOptions) != 0:
		return fmt.Errorf("%w: unexpected critical options %v", ErrCertMismatch, slices.Sorted(maps.Keys(cert.CriticalOptions)))
	case !maps.Equal(cert.Extensions, r.extensions()):
		return fmt.Errorf("%w: extensions %v, want %v (does the role set default_extensions?)",
			ErrCertMismatch, slices.Sorted(maps.Keys(cert.Extensions)), slices.Sorted(maps.Keys(r.extensions())))
	case cert.ValidBefore <= cert.ValidAfter:
		return fmt.Errorf("%w: empty validity window", ErrCertMismatch)
	// The lifetime is independent of the clocks of Vault and Warden: at most
	// the TTL plus the role's 30-second backdating.
	case cert.ValidBefore-cert.ValidAfter > ttl+uint64(clockSkew/time.Second):
		return fmt.Errorf("%w: lifetime %ds exceeds ttl %ds plus %v backdating (check the role's not_before_duration)",
			ErrCertMismatch, cert.ValidBefore-cert.ValidAfter, ttl, clockSkew)
	// Vault's clock may differ from ours; beyond clockSkew the certificate
	// is treated as not what was asked.
	case cert.ValidBefore > uint64(done.Add(r.TTL+clockSkew).Unix()):
		return fmt.Errorf("%w: certificate expires at %v, after now+ttl", ErrCertMismatch, time.Unix(int64(cert.ValidBefore), 0).UTC())
	}
	// Finally the signature itself, and that the certificate is valid now.
	checker := ssh.CertChecker{Clock: func() time.Time { return done }}
	if err := checker.CheckCert(r.Login, cert); err != nil {
		return fmt.Errorf("%w: %w", ErrCertMismatch, err)
	}
	return nil
}
