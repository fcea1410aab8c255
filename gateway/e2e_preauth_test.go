package gateway_test

import (
	"bufio"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/gateway"
)

// limitsBed is a testbed whose policy sets limits. The testbed's recording
// option is the one top-level block it lets a test write, so the limits
// ride along with the default recording block.
func limitsBed(t *testing.T, limits string) *testbed {
	return newTestbed(t, bedOptions{recording: "recording:\n  input: true\n  on_failure: terminate\nlimits: " + limits + "\n"})
}

// rawDial opens a TCP connection to the gateway from the loopback address
// src, as a client that never speaks SSH.
func (b *testbed) rawDial(src string) net.Conn {
	b.t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp", "127.0.0.1:"+b.port)
	if err != nil {
		b.t.Fatalf("dial from %s: %v", src, err)
	}
	b.t.Cleanup(func() { c.Close() })
	return c
}

// banner reads the gateway's version line: a connection that gets it was
// admitted. It returns "" when the gateway closed the connection first.
func banner(t *testing.T, c net.Conn) string {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil && !isClosed(err) {
		t.Fatalf("reading the banner: %v", err)
	}
	return line
}

func isClosed(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "connection reset")
}

// waitClosed waits until the gateway closes c, reading and discarding what
// it sends. It fails if c is still open after 30 s (a generous bound: the
// test is whether it closes, not how fast).
func waitClosed(t *testing.T, c net.Conn, what string) {
	t.Helper()
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := io.Copy(io.Discard, c)
	if err != nil && !isClosed(err) {
		t.Fatalf("%s: still open (%v)", what, err)
	}
}

func number(t *testing.T, data map[string]any, key string) int {
	t.Helper()
	n, ok := data[key].(json.Number)
	i, err := n.Int64()
	if !ok || err != nil {
		t.Fatalf("%s is %T %v in %v", key, data[key], data[key], data)
	}
	return int(i)
}

// TestPreAuthGraceTimeClosesStalledConnections: a client that sends nothing,
// or half a handshake, is closed once login_grace_time has run, and the
// audit trail shows one aggregated event; an authenticated session that
// runs longer than the grace time is not touched.
func TestPreAuthGraceTimeClosesStalledConnections(t *testing.T) {
	b := limitsBed(t, "{login_grace_time: 1s}")
	silent := b.rawDial("127.0.0.1")
	if got := banner(t, silent); !strings.HasPrefix(got, "SSH-2.0-Warden") {
		t.Fatalf("banner %q", got)
	}
	// Half a handshake: a version line, then the first 5 bytes of a
	// packet that announces 200 KiB and never comes.
	half := b.rawDial("127.0.0.1")
	half.Write([]byte("SSH-2.0-stall\r\n\x00\x03\x20\x00\x04"))

	out, errOut, code := b.run(b.alice, "root@web01", "sleep 3; echo still-here")
	if code != 0 || out != "still-here\n" {
		t.Fatalf("session longer than the grace time: code %d out %q err %q", code, out, errOut)
	}
	waitClosed(t, silent, "silent connection")
	waitClosed(t, half, "half handshake")

	gateway.FlushPreAuth(b.gw)
	e := b.waitEvent("auth.failed", "login grace time exceeded")
	if e.Subject != "127.0.0.1" || number(t, e.Data, "timed_out") != 2 || number(t, e.Data, "attempts") != 0 {
		t.Fatalf("event %+v", e)
	}
	if n := len(b.events("auth.failed")); n != 1 {
		t.Fatalf("%d auth.failed events, want 1", n)
	}
}

// TestPreAuthPerSourceAndGlobalCaps: the connection past
// max_startups_per_source is closed before it sees a byte, while another
// source still connects; with the table full, a real admin from a source
// holding nothing still logs in, at the cost of the heaviest source's
// oldest stalled connection.
func TestPreAuthPerSourceAndGlobalCaps(t *testing.T) {
	b := limitsBed(t, "{max_startups: 4, max_startups_per_source: 2}")
	var held []net.Conn
	for i := 0; i < 2; i++ {
		c := b.rawDial("127.0.0.2")
		if got := banner(t, c); !strings.HasPrefix(got, "SSH-2.0-") {
			t.Fatalf("connection %d from 127.0.0.2: banner %q", i+1, got)
		}
		held = append(held, c)
	}
	if got := banner(t, b.rawDial("127.0.0.2")); got != "" {
		t.Fatalf("third connection from 127.0.0.2 got %q, want it closed before the banner", got)
	}
	for i := 0; i < 2; i++ {
		c := b.rawDial("127.0.0.3")
		if got := banner(t, c); !strings.HasPrefix(got, "SSH-2.0-") {
			t.Fatalf("another source was refused: %q", got)
		}
		held = append(held, c)
	}
	if n := gateway.PreAuthHeld(b.gw); n != 4 {
		t.Fatalf("%d slots held, want 4 (full)", n)
	}

	out, errOut, code := b.run(b.alice, "root@web01", "echo admitted")
	if code != 0 || out != "admitted\n" {
		t.Fatalf("admin starved by stalled connections: code %d out %q err %q", code, out, errOut)
	}
	// The evicted one is 127.0.0.2's first connection: of the two sources
	// holding 2, the one whose oldest connection is older.
	waitClosed(t, held[0], "evicted connection")

	gateway.FlushPreAuth(b.gw)
	e := b.waitEvent("auth.failed", "127.0.0.2")
	dropped, _ := e.Data["dropped"].(map[string]any)
	if number(t, dropped, "per_source") != 1 || number(t, e.Data, "evicted") != 1 || e.Data["reason"] != "too many unauthenticated connections" {
		t.Fatalf("event %+v", e)
	}
	for _, e := range b.events("auth.failed") {
		if e.Subject == "127.0.0.1" {
			t.Fatalf("the admin's source has an event: %+v", e)
		}
	}
}

// TestPreAuthKeySprayIsOneEventPerSource sprays unknown keys over many
// connections with a raw x/crypto client: the chain gets one row for the
// source, with the counts, not one per key or per connection.
func TestPreAuthKeySprayIsOneEventPerSource(t *testing.T) {
	b := limitsBed(t, "{max_startups: 100}")
	var signers []gossh.Signer
	for i := 0; i < 3; i++ {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		s, err := gossh.NewSignerFromKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		signers = append(signers, s)
	}
	const conns = 10
	for i := 0; i < conns; i++ {
		_, err := gossh.Dial("tcp", "127.0.0.1:"+b.port, &gossh.ClientConfig{
			User: "root@web01", Auth: []gossh.AuthMethod{gossh.PublicKeys(signers...)},
			HostKeyCallback: gossh.FixedHostKey(b.hostKey), Timeout: 10 * time.Second,
		})
		if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("spray connection %d: %v", i, err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for gateway.PreAuthHeld(b.gw) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("spray connections still hold slots")
		}
		time.Sleep(20 * time.Millisecond)
	}
	gateway.FlushPreAuth(b.gw)
	events := b.events("auth.failed")
	if len(events) != 1 {
		t.Fatalf("%d auth.failed events, want 1: %+v", len(events), events)
	}
	d := events[0].Data
	if events[0].Subject != "127.0.0.1" || number(t, d, "attempts") != 3*conns || number(t, d, "keys") != 3 ||
		number(t, d, "connections") != conns || d["reason"] != "unknown public key" {
		t.Fatalf("event %+v", events[0])
	}
	if users, _ := d["users"].([]any); len(users) != 1 || users[0] != "root@web01" {
		t.Fatalf("users %v", d["users"])
	}
}
