package gateway_test

import (
	"io"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/gateway"
)

// TestAttackHeldChannelRequests tries, on one channel, what a client might
// send to change a session after the gateway chose its recording, or to
// act on the gateway itself: requests before the start that only a server
// sends (exit-status, eow), signals before there is a process, a second
// exec, shell, subsystem or pty-req after the start, an absurd
// window-change. Each is refused; the first exec is the one logged and
// run. These held when tried; the test keeps them so.
func TestAttackHeldChannelRequests(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	c := b.goClientAs(b.alice, "root@web01")
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	go gossh.DiscardRequests(reqs)
	for _, r := range []struct {
		typ     string
		payload []byte
	}{
		{"exit-status", []byte{0, 0, 0, 0}},
		{"eow@openssh.com", nil},
		{"signal", gossh.Marshal(struct{ Sig string }{"KILL"})},
		{"break", []byte{0, 0, 0, 1}},
		{"auth-agent-req@openssh.com", nil},
		{"keepalive@openssh.com", nil},
	} {
		if ok, err := ch.SendRequest(r.typ, true, r.payload); ok || err != nil {
			t.Fatalf("%s before the start: %v %v", r.typ, ok, err)
		}
	}
	if ok, err := ch.SendRequest("exec", true, gossh.Marshal(struct{ Cmd string }{"read x; echo first $x"})); !ok || err != nil {
		t.Fatalf("exec: %v %v", ok, err)
	}
	for _, r := range []struct {
		typ     string
		payload []byte
	}{
		{"exec", gossh.Marshal(struct{ Cmd string }{"echo second"})},
		{"shell", nil},
		{"subsystem", gossh.Marshal(struct{ Name string }{"sftp"})},
		{"pty-req", gossh.Marshal(struct {
			Term                 string
			Cols, Rows, Wpx, Hpx uint32
			Modes                string
		}{"xterm", 80, 24, 0, 0, ""})},
		{"window-change", gossh.Marshal(struct{ Cols, Rows, Wpx, Hpx uint32 }{1 << 30, 1 << 30, 0, 0})},
		{"x11-req", gossh.Marshal(struct {
			Single        bool
			Proto, Cookie string
			Screen        uint32
		}{false, "MIT-MAGIC-COOKIE-1", "00", 0})},
	} {
		if ok, err := ch.SendRequest(r.typ, true, r.payload); ok || err != nil {
			t.Fatalf("%s after the start: %v %v", r.typ, ok, err)
		}
	}
	if _, err := io.WriteString(ch, "in\n"); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(ch)
	if err != nil || string(out) != "first in\n" {
		t.Fatalf("output %q %v", out, err)
	}
	s := b.lastSession("alice")
	cmds := b.commands(s.ID)
	if len(cmds) != 1 || cmds[0].Command != "read x; echo first $x" || cmds[0].Source != "exec" {
		t.Fatalf("command log %+v", cmds)
	}
	if len(s.ID) != 26 || strings.Trim(s.ID, "abcdefghijklmnopqrstuvwxyz234567") != "" {
		t.Fatalf("session ID %q is not 128 random bits in base32", s.ID)
	}
	b.waitEvent("forward.refused", "x11-req")
	b.waitEvent("request.refused", "window-change")
}

// TestAttackHeldNoAuthWithoutAKey: a client that offers no key, only
// "none", a password or keyboard-interactive answers, is not let in and
// holds a pre-authentication slot only until it gives up; the gateway
// offers nothing but publickey.
func TestAttackHeldNoAuthWithoutAKey(t *testing.T) {
	b := limitsBed(t, "{login_grace_time: 2s}")
	for name, auth := range map[string][]gossh.AuthMethod{
		"none":     nil,
		"password": {gossh.Password("root")},
		"keyboard-interactive": {gossh.KeyboardInteractive(func(string, string, []string, []bool) ([]string, error) {
			return []string{"root"}, nil
		})},
	} {
		_, err := gossh.Dial("tcp", "127.0.0.1:"+b.port, &gossh.ClientConfig{
			User: "root@web01", Auth: auth, HostKeyCallback: gossh.FixedHostKey(b.hostKey),
		})
		if err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
			t.Fatalf("%s: %v", name, err)
		}
	}
	waitFor(t, func() bool { return gateway.PreAuthHeld(b.gw) == 0 }, "the slots are given back")
}
