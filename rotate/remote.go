package rotate

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"time"
	"unicode"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/hostkey"
	"github.com/warden-gw/warden/policy"
)

// errRefused marks a login the host refused after its host key verified:
// the key is not (or no longer) authorized.
var errRefused = errors.New("host refused the key")

// maxOutput bounds what a remote command may print; an authorized_keys file
// is a few kilobytes.
const maxOutput = 1 << 20

// dial connects to the host as login with signer. The host key is checked
// with hostkey.Callback, the only way Warden trusts a host: rotating a key
// on an impostor would hand it the new key's public half and, worse, tell us
// the old key was removed when it was not. timeout bounds the TCP connect
// and the SSH handshake; ctx cancels both.
func dial(ctx context.Context, h *policy.Host, login string, signer gossh.Signer, timeout time.Duration) (*gossh.Client, error) {
	check, algos, err := hostkey.Callback(h)
	if err != nil {
		return nil, err
	}
	var verified atomic.Bool
	cfg := &gossh.ClientConfig{
		User: login,
		Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: func(addr string, remote net.Addr, key gossh.PublicKey) error {
			err := check(addr, remote, key)
			verified.Store(err == nil)
			return err
		},
		HostKeyAlgorithms: algos,
	}
	d := net.Dialer{Timeout: timeout}
	conn, err := d.DialContext(ctx, "tcp", h.Address)
	if err != nil {
		return nil, fmt.Errorf("rotate: connect to %s (%s): %w", h.Name, h.Address, err)
	}
	// The deadline is network I/O on the real clock, not expiry logic.
	_ = conn.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	c, chans, reqs, err := gossh.NewClientConn(conn, h.Address, cfg)
	canceled := !stop()
	if err != nil {
		conn.Close()
		switch {
		case canceled:
			return nil, fmt.Errorf("rotate: ssh to %s: %w", h.Name, ctx.Err())
		case verified.Load() && isAuthFailure(err):
			return nil, fmt.Errorf("rotate: ssh %s@%s with key %s: %w", login, h.Name, gossh.FingerprintSHA256(signer.PublicKey()), errRefused)
		}
		return nil, fmt.Errorf("rotate: ssh to %s: %w", h.Name, err)
	}
	_ = conn.SetDeadline(time.Time{})
	return gossh.NewClient(c, chans, reqs), nil
}

// isAuthFailure reports x/crypto's "no method succeeded" error, which it
// does not export as a type.
func isAuthFailure(err error) bool {
	return strings.Contains(err.Error(), "unable to authenticate")
}

// run runs one command in a new session and returns its stdout. A failure
// carries the command's first stderr line, which names what went wrong on
// the host (e.g. "No such file or directory"). ctx cancels the command by
// closing the connection.
func run(ctx context.Context, c *gossh.Client, cmd string) ([]byte, error) {
	s, err := c.NewSession()
	if err != nil {
		return nil, fmt.Errorf("rotate: open session: %w", err)
	}
	defer s.Close()
	stdout := &limitedBuffer{max: maxOutput}
	stderr := &limitedBuffer{max: 4096}
	s.Stdout, s.Stderr = stdout, stderr
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if err := s.Run(cmd); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if msg := firstLine(stderr.buf.String()); msg != "" {
			return nil, fmt.Errorf("%w: %s", err, msg)
		}
		return nil, err
	}
	return stdout.buf.Bytes(), nil
}

// probe logs in with signer on a new connection and runs `true`, the proof
// that the key works end to end, not only at authentication.
func probe(ctx context.Context, h *policy.Host, login string, signer gossh.Signer, timeout time.Duration) error {
	c, err := dial(ctx, h, login, signer, timeout)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := run(ctx, c, "true"); err != nil {
		return fmt.Errorf("rotate: run true on %s: %w", h.Name, err)
	}
	return nil
}

// limitedBuffer collects output up to max bytes and fails the write beyond,
// which ends the remote command instead of growing without bound.
type limitedBuffer struct {
	buf bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.buf.Len()+len(p) > b.max {
		return 0, fmt.Errorf("rotate: remote output exceeds %d bytes", b.max)
	}
	return b.buf.Write(p)
}

// firstLine returns the first non-empty line of s, printable characters
// only and at most 200 of them, fit for an error message.
func firstLine(s string) string {
	for line := range strings.SplitSeq(s, "\n") {
		line = strings.Map(func(r rune) rune {
			if unicode.IsPrint(r) {
				return r
			}
			return -1
		}, line)
		if line = strings.TrimSpace(line); line != "" {
			if r := []rune(line); len(r) > 200 {
				line = string(r[:200])
			}
			return line
		}
	}
	return ""
}
