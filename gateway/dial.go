package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/hostkey"
	"github.com/warden-gw/warden/policy"
)

// dialHost connects to h as login, authenticating with the session's
// certificate signer. The whole handshake is bounded by timeout and ctx.
func dialHost(ctx context.Context, h *policy.Host, login string, auth gossh.Signer, timeout time.Duration) (*gossh.Client, error) {
	cb, algos, err := hostkey.Callback(h)
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
	c, chans, reqs, err := gossh.NewClientConn(newBufferedConn(nc), h.Address, cfg)
	if !stop() {
		// The deadline fired: the connection is unusable even if the
		// handshake happened to finish.
		if err == nil {
			c.Close()
		}
		nc.Close()
		if err == nil || !errors.Is(err, hostkey.ErrMismatch) {
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
