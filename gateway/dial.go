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
func dialHost(ctx context.Context, h *policy.Host, login string, auth gossh.Signer, timeout time.Duration) (*hostConn, error) {
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
	hc := &hostConn{Conn: c, chans: chans, reqs: reqs, stop: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(hc.stopped)
		hc.serve(hc.stop)
	}()
	return hc, nil
}

// hostConn is a connection to a managed host, with what the host sends
// unasked: channel opens and global requests, such as OpenSSH's
// keepalives. Until the session's own loop takes them over (takeOver), a
// goroutine answers them; from then on that loop does (requestLoop), one
// goroutine fewer for each of a thousand idle sessions.
type hostConn struct {
	gossh.Conn
	chans <-chan gossh.NewChannel // nil once closed
	reqs  <-chan *gossh.Request   // nil once closed

	stop, stopped chan struct{}
}

// takeOver stops the goroutine that answers the host; the caller answers
// from now on, with answer, until both channels are nil.
func (h *hostConn) takeOver() {
	close(h.stop)
	<-h.stopped
}

// serve answers what the host sends unasked until both of its channels
// close (the connection ended) or stop closes.
func (h *hostConn) serve(stop <-chan struct{}) {
	for h.chans != nil || h.reqs != nil {
		select {
		case nc, ok := <-h.chans:
			h.answerChannel(nc, ok)
		case r, ok := <-h.reqs:
			h.answerRequest(r, ok)
		case <-stop:
			return
		}
	}
}

// answerChannel refuses a channel the host opens: the gateway opens every
// channel itself. ok false means the host's connection ended.
func (h *hostConn) answerChannel(nc gossh.NewChannel, ok bool) {
	if !ok {
		h.chans = nil // a nil channel is never ready again
		return
	}
	_ = nc.Reject(gossh.UnknownChannelType, "unknown channel type: "+nc.ChannelType())
}

// answerRequest answers a global request no, as x/crypto's Client does.
func (h *hostConn) answerRequest(r *gossh.Request, ok bool) {
	if !ok {
		h.reqs = nil
		return
	}
	if r.WantReply {
		_ = r.Reply(false, nil)
	}
}
