// Package hostkey verifies managed hosts' SSH host keys the one way each
// host's policy entry names: a pinned key (compared as marshalled bytes), a
// known_hosts file (golang.org/x/crypto/ssh/knownhosts) or a host CA
// (ssh.CertChecker). There is no trust on first use and no way to skip it.
package hostkey

import (
	"bytes"
	"errors"
	"fmt"
	"net"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/warden-gw/warden/policy"
)

// ErrMismatch marks a host whose key did not verify. Callers keep it apart
// from other dial errors because it may mean an attack.
var ErrMismatch = errors.New("host key verification failed")

// Callback returns the check of a managed host's key, and the host key
// algorithms to ask for. It verifies a managed host's key in the one way its policy
// entry names. There is no trust-on-first-use and no way to skip the check:
// a gateway that connects to an impostor would hand it a valid certificate
// and record a session that never reached the real host.
func Callback(h *policy.Host) (gossh.HostKeyCallback, []string, error) {
	switch {
	case h.HostKey != nil:
		want := h.HostKey.Marshal()
		cb := func(_ string, _ net.Addr, key gossh.PublicKey) error {
			if !bytes.Equal(key.Marshal(), want) {
				return fmt.Errorf("%w: %s presented %s %s, policy pins %s", ErrMismatch, h.Name,
					key.Type(), gossh.FingerprintSHA256(key), gossh.FingerprintSHA256(h.HostKey))
			}
			return nil
		}
		// Ask only for the pinned key's algorithm so that a host with several
		// keys presents the pinned one.
		return cb, algorithmsFor(h.HostKey.Type()), nil
	case h.HostCA != nil:
		ca := h.HostCA.Marshal()
		checker := &gossh.CertChecker{
			IsHostAuthority: func(auth gossh.PublicKey, _ string) bool {
				return bytes.Equal(auth.Marshal(), ca)
			},
		}
		cb := func(addr string, remote net.Addr, key gossh.PublicKey) error {
			if err := checker.CheckHostKey(addr, remote, key); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrMismatch, h.Name, err)
			}
			return nil
		}
		return cb, []string{
			gossh.CertAlgoED25519v01, gossh.CertAlgoECDSA256v01, gossh.CertAlgoECDSA384v01,
			gossh.CertAlgoECDSA521v01, gossh.CertAlgoRSASHA512v01, gossh.CertAlgoRSASHA256v01,
		}, nil
	case h.KnownHosts != "":
		kh, err := knownhosts.New(h.KnownHosts)
		if err != nil {
			return nil, nil, fmt.Errorf("hostkey: known_hosts for %s: %w", h.Name, err)
		}
		cb := func(addr string, remote net.Addr, key gossh.PublicKey) error {
			if err := kh(addr, remote, key); err != nil {
				return fmt.Errorf("%w: %s: %v", ErrMismatch, h.Name, err)
			}
			return nil
		}
		return cb, nil, nil
	}
	// policy.Parse refuses such hosts; this guards against a caller that
	// built a Host by hand.
	return nil, nil, fmt.Errorf("hostkey: host %s has no way to verify its key", h.Name)
}

func algorithmsFor(keyType string) []string {
	switch keyType {
	case gossh.KeyAlgoRSA:
		return []string{gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256, gossh.KeyAlgoRSA}
	default:
		return []string{keyType}
	}
}
