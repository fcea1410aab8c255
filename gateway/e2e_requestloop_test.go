package gateway_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// TestRequestLoopKeepsOrderAndExitStatusBeforeEOF: one goroutine per
// session now handles the channel requests of both sides and the session's
// end (bridge_requests.go). Through it, on one client connection and a
// real sshd, for channel after channel: requests that want a reply get
// the host's answer, in order, while the command runs (sshd refuses
// keepalive@openssh.com and accepts a second one the same way; a no-reply
// window-change passes); and the exit status reaches the client before
// its EOF, as PuTTY needs, even when the host sent its EOF long before
// its exit status: when the client reads EOF, x/crypto has already queued
// the exit-status, because the two arrived in that order on the wire.
func TestRequestLoopKeepsOrderAndExitStatusBeforeEOF(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	c := b.goClientAs(b.alice, "root@web01")
	for i := range 4 {
		ch, reqs, err := c.OpenChannel("session", nil)
		if err != nil {
			t.Fatal(err)
		}
		// The command closes its output well before it exits: sshd sends
		// EOF, and only later the exit status, which the gateway must
		// forward before it passes on the EOF.
		cmd := fmt.Sprintf("read line; echo got-$line; exec >&- 2>&-; sleep 0.3; exit %d", 3+i)
		if ok, err := ch.SendRequest("exec", true, gossh.Marshal(struct{ Command string }{cmd})); !ok || err != nil {
			t.Fatalf("exec: %v %v", ok, err)
		}
		for range 3 {
			// sshd answers an unknown request no; what matters is that
			// an answer comes back through the loop, each in its turn.
			if ok, err := ch.SendRequest("keepalive@openssh.com", true, nil); ok || err != nil {
				t.Fatalf("channel %d: keepalive answered %v, %v", i, ok, err)
			}
		}
		if _, err := ch.SendRequest("window-change", false, gossh.Marshal(struct{ C, R, W, H uint32 }{100, 30, 0, 0})); err != nil {
			t.Fatal(err)
		}
		if _, err := fmt.Fprintf(ch, "line%d\n", i); err != nil {
			t.Fatal(err)
		}
		out, err := io.ReadAll(ch)
		if err != nil || string(out) != fmt.Sprintf("got-line%d\n", i) {
			t.Fatalf("channel %d: output %q, %v", i, out, err)
		}
		select {
		case r := <-reqs:
			if r.Type != "exit-status" || len(r.Payload) != 4 || binary.BigEndian.Uint32(r.Payload) != uint32(3+i) {
				t.Fatalf("channel %d: first request after the output %q %x, want exit-status %d", i, r.Type, r.Payload, 3+i)
			}
		default:
			t.Fatalf("channel %d: the client had EOF before the exit status", i)
		}
		for r := range reqs { // until the channel closes
			t.Errorf("channel %d: unexpected request %q after exit-status", i, r.Type)
		}
		ch.Close()
		if s := b.lastSession("alice"); s.ExitStatus == nil || *s.ExitStatus != 3+i {
			s = b.waitSessionEnded(s.ID)
			if s.ExitStatus == nil || *s.ExitStatus != 3+i || s.EndReason != "exit" {
				t.Fatalf("channel %d: row %+v", i, s)
			}
		}
	}
}

// TestHostKeepalivesAreAnsweredThroughTheLoop: an sshd with
// ClientAliveInterval asks, on the session's channel, for a reply every
// second and drops the connection after two unanswered. Its requests want
// a reply, so the session's loop forwards each from a short-lived
// goroutine and the client's answer goes back; the shell is still there
// after many intervals, and other requests (a window change) pass
// meanwhile.
func TestHostKeepalivesAreAnsweredThroughTheLoop(t *testing.T) {
	b := newTestbed(t, bedOptions{hostExtra: "ClientAliveInterval 1\nClientAliveCountMax 2\n"})
	p := b.alice.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("echo alive-$((6*7))\r")
	p.Expect(t, `alive-42`, expectWait)
	time.Sleep(6 * time.Second) // six keepalives; two unanswered would end it
	p.Resize(100, 30)
	p.Send("stty size; echo still-$((6*8))\r")
	p.Expect(t, `still-48`, expectWait)
	p.Send("exit\r")
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	if s := b.waitSessionEnded(b.lastSession("alice").ID); s.EndReason != "exit" {
		t.Fatalf("session ended %q, want exit", s.EndReason)
	}
}
