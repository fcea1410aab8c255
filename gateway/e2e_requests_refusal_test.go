package gateway_test

import (
	"io"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// Refusals of channel requests that used to be answered "no" without an
// audit event. CONTRACT §1: every refusal leaves an audit event (within
// the user's refusal budget, postauth_report.go).

// TestRefusalSecondStartIsAudited: a channel runs one thing. A second
// exec, shell or subsystem on a started channel would escape the recording
// chosen for the first, so it is refused, and the refusal is on record.
func TestRefusalSecondStartIsAudited(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	c := b.goClientAs(b.alice, "root@web01")
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	go gossh.DiscardRequests(reqs)
	if ok, err := ch.SendRequest("exec", true, gossh.Marshal(struct{ Command string }{"cat"})); !ok || err != nil {
		t.Fatalf("exec: %v %v", ok, err)
	}
	if ok, err := ch.SendRequest("exec", true, gossh.Marshal(struct{ Command string }{"id"})); ok || err != nil {
		t.Fatalf("second exec: ok=%v err=%v, want refused", ok, err)
	}
	b.waitEvent("request.refused", "already started")
	if ok, err := ch.SendRequest("subsystem", true, gossh.Marshal(struct{ Name string }{"sftp"})); ok || err != nil {
		t.Fatalf("subsystem after exec: ok=%v err=%v, want refused", ok, err)
	}
	e := b.waitEvent("request.refused", "subsystem")
	if e.Actor != "alice" || !strings.HasPrefix(e.Subject, "root@web01") {
		t.Fatalf("event %+v", e)
	}
	// The first command still runs.
	if _, err := ch.Write([]byte("still-here\n")); err != nil {
		t.Fatal(err)
	}
	_ = ch.CloseWrite()
	out, _ := io.ReadAll(ch)
	if string(out) != "still-here\n" {
		t.Fatalf("first command's output %q", out)
	}
}

// TestRefusalMalformedStartIsAudited: an exec or subsystem request whose
// payload does not parse is bad input; it is refused and audited, and the
// channel may still start.
func TestRefusalMalformedStartIsAudited(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	c := b.goClientAs(b.alice, "root@web01")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, err := s.SendRequest("exec", true, []byte{0, 0, 0, 9, 'x'}); ok || err != nil {
		t.Fatalf("malformed exec: ok=%v err=%v", ok, err)
	}
	b.waitEvent("request.refused", "malformed")
	out, err := s.Output("echo after")
	if err != nil || string(out) != "after\n" {
		t.Fatalf("%v %q", err, out)
	}
}

// TestRefusalCommandInterfaceRequestsAreAudited: the command interface
// (a user name without '@') runs exec and shell only. A subsystem (`sftp
// gw`), a malformed exec or agent forwarding there is refused, and each
// refusal leaves its event as it would on a host's session.
func TestRefusalCommandInterfaceRequestsAreAudited(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	c := b.goClientAs(b.alice, "alice")

	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RequestSubsystem("sftp"); err == nil {
		t.Fatal("subsystem sftp on the command interface accepted")
	}
	e := b.waitEvent("command.refused", "subsystem")
	if e.Actor != "alice" || !strings.Contains(e.Subject, "sftp") {
		t.Fatalf("event %+v", e)
	}
	s.Close()

	s, err = c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.SendRequest("auth-agent-req@openssh.com", true, nil); ok || err != nil {
		t.Fatalf("agent forwarding: ok=%v err=%v", ok, err)
	}
	b.waitEvent("forward.refused", "auth-agent-req@openssh.com")
	if ok, err := s.SendRequest("exec", true, []byte{0, 0, 0, 9, 'x'}); ok || err != nil {
		t.Fatalf("malformed exec: ok=%v err=%v", ok, err)
	}
	b.waitEvent("command.refused", "malformed")
	// The channel still runs a command.
	out, err := s.Output("whoami")
	if err != nil || !strings.Contains(string(out), "alice") {
		t.Fatalf("whoami after refusals: %v %q", err, out)
	}
}

// TestRefusalUnknownRequestBeforeStartIsAudited: before the start, a
// request the gateway does not queue for the host (a break, a signal to
// nothing yet, a made-up type) is answered no; like every refusal it is
// audited, within the user's budget. After the start such requests go to
// the host, which answers them.
func TestRefusalUnknownRequestBeforeStartIsAudited(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	c := b.goClientAs(b.alice, "root@web01")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ok, err := s.SendRequest("made-up@example.com", true, nil); ok || err != nil {
		t.Fatalf("made-up request: ok=%v err=%v", ok, err)
	}
	e := b.waitEvent("request.refused", "made-up@example.com")
	if e.Actor != "alice" || !strings.HasPrefix(e.Subject, "root@web01") {
		t.Fatalf("event %+v", e)
	}
	out, err := s.Output("echo after")
	if err != nil || string(out) != "after\n" {
		t.Fatalf("%v %q", err, out)
	}
}
