package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	gossh "golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"

	"github.com/warden-gw/warden/policy"
)

// errHostKey marks a host whose key did not verify. It is kept apart from
// other dial errors because it may mean an attack, and gets its own event.
var errHostKey = errors.New("host key verification failed")

// hostKeyCallback verifies a managed host's key in the one way its policy
// entry names. There is no trust-on-first-use and no way to skip the check:
// a gateway that connects to an impostor would hand it a valid certificate
// and record a session that never reached the real host.
func hostKeyCallback(h *policy.Host) (gossh.HostKeyCallback, []string, error) {
	switch {
	case h.HostKey != nil:
		want := h.HostKey.Marshal()
		cb := func(_ string, _ net.Addr, key gossh.PublicKey) error {
			if !bytes.Equal(key.Marshal(), want) {
				return fmt.Errorf("%w: %s presented %s %s, policy pins %s", errHostKey, h.Name,
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
				return fmt.Errorf("%w: %s: %v", errHostKey, h.Name, err)
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
			return nil, nil, fmt.Errorf("gateway: known_hosts for %s: %w", h.Name, err)
		}
		cb := func(addr string, remote net.Addr, key gossh.PublicKey) error {
			if err := kh(addr, remote, key); err != nil {
				return fmt.Errorf("%w: %s: %v", errHostKey, h.Name, err)
			}
			return nil
		}
		return cb, nil, nil
	}
	// policy.Parse refuses such hosts; this guards against a caller that
	// built a Host by hand.
	return nil, nil, fmt.Errorf("gateway: host %s has no way to verify its key", h.Name)
}

func algorithmsFor(keyType string) []string {
	switch keyType {
	case gossh.KeyAlgoRSA:
		return []string{gossh.KeyAlgoRSASHA512, gossh.KeyAlgoRSASHA256, gossh.KeyAlgoRSA}
	default:
		return []string{keyType}
	}
}

// dialHost connects to h as login, authenticating with the session's
// certificate signer. The whole handshake is bounded by timeout and ctx.
func dialHost(ctx context.Context, h *policy.Host, login string, auth gossh.Signer, timeout time.Duration) (*gossh.Client, error) {
	cb, algos, err := hostKeyCallback(h)
	if err != nil {
		return nil, err
	}
	cfg := &gossh.ClientConfig{
		User:              login,
		Auth:              []gossh.AuthMethod{gossh.PublicKeys(auth)},
		HostKeyCallback:   cb,
		HostKeyAlgorithms: algos,
		Timeout:           timeout,
		ClientVersion:     "SSH-2.0-Warden",
		Config: gossh.Config{
			// As on the client side: AES-GCM first (we are the client
			// here, so our order decides), chacha20 last for hosts that
			// offer nothing else.
			Ciphers: []string{"aes128-gcm@openssh.com", "aes256-gcm@openssh.com", "aes128-ctr", "aes256-ctr", "chacha20-poly1305@openssh.com"},
		},
	}
	dctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(dctx, "tcp", h.Address)
	if err != nil {
		return nil, err
	}
	// The handshake itself has no context; a deadline on the socket bounds it.
	stop := context.AfterFunc(dctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	c, chans, reqs, err := gossh.NewClientConn(nc, h.Address, cfg)
	if !stop() {
		// The deadline fired: the connection is unusable even if the
		// handshake happened to finish.
		if err == nil {
			c.Close()
		}
		nc.Close()
		if err == nil || !errors.Is(err, errHostKey) {
			return nil, fmt.Errorf("handshake with %s timed out: %w", h.Address, context.DeadlineExceeded)
		}
	}
	if err != nil {
		nc.Close()
		return nil, err
	}
	_ = nc.SetDeadline(time.Time{})
	return gossh.NewClient(c, chans, reqs), nil
}
