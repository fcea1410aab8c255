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
func dialHost(ctx context.Context, h *policy.Host, login string, auth gossh.Signer, timeout time.Duration) (gossh.Conn, error) {
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
	go serveHost(chans, reqs)
	return c, nil
}

// serveHost answers what a managed host sends unasked, until its
// connection closes: channel opens are refused (the gateway opens every
// channel itself) and global requests, such as OpenSSH's keepalives, are
// answered no, as x/crypto's Client does. It is one goroutine where
// x/crypto's Client takes three, for each of a thousand sessions.
func serveHost(chans <-chan gossh.NewChannel, reqs <-chan *gossh.Request) {
	for chans != nil || reqs != nil {
		select {
		case nc, ok := <-chans:
			if !ok {
				chans = nil // a nil channel is never ready again
				continue
			}
			_ = nc.Reject(gossh.UnknownChannelType, "unknown channel type: "+nc.ChannelType())
		case r, ok := <-reqs:
			if !ok {
				reqs = nil
				continue
			}
			if r.WantReply {
				_ = r.Reply(false, nil)
			}
		}
	}
}
