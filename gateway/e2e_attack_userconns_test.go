package gateway_test

import (
	"net"
	"os"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/internal/sshtest"
)

// dialAs authenticates as c over a raw x/crypto connection and returns it,
// or the handshake's error.
func (b *testbed) dialAs(c *sshtest.Client, user string) (*gossh.Client, error) {
	key, err := os.ReadFile(c.KeyPath)
	if err != nil {
		b.t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(key)
	if err != nil {
		b.t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", "127.0.0.1:"+b.port, 10*time.Second)
	if err != nil {
		b.t.Fatal(err)
	}
	cc, chans, reqs, err := gossh.NewClientConn(nc, nc.RemoteAddr().String(), &gossh.ClientConfig{
		User: user, Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)}, HostKeyCallback: gossh.FixedHostKey(b.hostKey),
	})
	if err != nil {
		nc.Close()
		return nil, err
	}
	cl := gossh.NewClient(cc, chans, reqs)
	b.t.Cleanup(func() { cl.Close() })
	return cl, nil
}

// TestAttackAuthenticatedConnectionsPerUserAreCapped: once authenticated,
// a connection leaves the pre-authentication limits and gets its large
// read buffer; without channels it leaves no audit row either. So one key
// could hold thousands of idle connections, unseen, and exhaust the
// gateway's memory. A user holds at most max connections at once; the
// next one fails authentication and is audited; closing one makes room;
// other users are not affected.
func TestAttackAuthenticatedConnectionsPerUserAreCapped(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	gateway.SetUserLimits(b.gw, 5, 0)
	var held []*gossh.Client
	for i := 0; i < 5; i++ {
		c, err := b.dialAs(b.alice, "gw")
		if err != nil {
			t.Fatalf("connection %d: %v", i+1, err)
		}
		held = append(held, c)
	}
	if c, err := b.dialAs(b.alice, "root@web01"); err == nil {
		c.Close()
		t.Fatal("a sixth connection of alice authenticated")
	}
	b.waitEvent("connection.refused", "too many connections")
	// Another user is not affected.
	if out, errOut, code := b.run(b.bob, "gw", "whoami"); code != 0 || !strings.Contains(out, "bob") {
		t.Fatalf("bob: %d %q %q", code, out, errOut)
	}
	held[0].Close()
	waitFor(t, func() bool {
		c, err := b.dialAs(b.alice, "root@web01")
		if err != nil {
			return false
		}
		out, _, code := runGoErr(c, "echo room")
		return code == 0 && out == "room\n"
	}, "a connection closed makes room")
}

// TestAttackSessionChannelsPerUserAreCapped: before it starts, a session
// channel may hold up to x/crypto's 2 MiB window of the client's data, so
// channels across many connections of one user add up (10 per connection
// × 256 connections would be gigabytes). A user has at most max session
// channels in flight across all their connections.
func TestAttackSessionChannelsPerUserAreCapped(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	gateway.SetUserLimits(b.gw, 0, 12)
	var open []*gossh.Session
	for i := 0; i < 12; i++ {
		c, err := b.dialAs(b.alice, "root@web01")
		if err != nil {
			t.Fatal(err)
		}
		s, err := c.NewSession()
		if err != nil {
			t.Fatalf("channel %d: %v", i+1, err)
		}
		open = append(open, s)
	}
	c, err := b.dialAs(b.alice, "gw")
	if err != nil {
		t.Fatal(err)
	}
	var oce *gossh.OpenChannelError
	if s, err := c.NewSession(); err == nil {
		s.Close()
		t.Fatal("a thirteenth session channel of alice opened")
	} else if !asOpenChannelError(err, &oce) || oce.Reason != gossh.ResourceShortage ||
		oce.Message != "warden: too many sessions for alice (at most 12)" {
		t.Fatalf("thirteenth channel: %v", err)
	}
	if out, errOut, code := b.run(b.bob, "gw", "whoami"); code != 0 || !strings.Contains(out, "bob") {
		t.Fatalf("bob: %d %q %q", code, out, errOut)
	}
	open[0].Close()
	waitFor(t, func() bool {
		out, _, code := runGoErr(c, "whoami")
		return code == 0 && strings.Contains(out, "alice")
	}, "a channel closed makes room")
}
