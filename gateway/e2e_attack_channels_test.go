package gateway_test

import (
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// TestAttackSessionChannelsPerConnectionAreCapped: every session channel
// costs the gateway a host connection, a certificate, a recording and its
// buffers, so one authenticated connection (a ControlMaster, or a few lines
// of Go) must not open them without bound. Like sshd's MaxSessions, the
// eleventh channel in flight on a connection is refused, command channels
// included, and a closed one makes room again.
func TestAttackSessionChannelsPerConnectionAreCapped(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	c := b.goClientAs(b.alice, "root@web01")
	var open []*gossh.Session
	for i := 0; i < 10; i++ {
		s, err := c.NewSession()
		if err != nil {
			t.Fatalf("channel %d: %v", i+1, err)
		}
		open = append(open, s)
	}
	s, err := c.NewSession()
	if err == nil {
		s.Close()
		t.Fatal("an eleventh session channel opened on one connection")
	}
	var oce *gossh.OpenChannelError
	if !asOpenChannelError(err, &oce) || oce.Reason != gossh.ResourceShortage ||
		oce.Message != "warden: too many sessions on this connection (at most 10)" {
		t.Fatalf("eleventh channel: %v", err)
	}
	b.waitEvent("session.refused", "too many sessions on this connection")

	// Closing one makes room; the channel that takes it runs.
	open[0].Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, errOut, code := runGoErr(c, "echo room")
		if code == 0 && out == "room\n" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after closing one: %d %q %q", code, out, errOut)
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Command channels count too: a connection of the command interface
	// is capped the same way.
	cmd := b.goClientAs(b.carol, "gw")
	var held []*gossh.Session
	for i := 0; i < 10; i++ {
		s, err := cmd.NewSession()
		if err != nil {
			t.Fatalf("command channel %d: %v", i+1, err)
		}
		held = append(held, s)
	}
	if s, err := cmd.NewSession(); err == nil {
		s.Close()
		t.Fatal("an eleventh command channel opened on one connection")
	}
	for _, s := range append(open[1:], held...) {
		s.Close()
	}
}

func asOpenChannelError(err error, target **gossh.OpenChannelError) bool {
	e, ok := err.(*gossh.OpenChannelError)
	if ok {
		*target = e
	}
	return ok
}

// runGoErr is runGo that returns a failed channel open as status -1, for
// a channel that may be refused while the gateway frees a slot.
func runGoErr(c *gossh.Client, cmd string) (string, string, int) {
	s, err := c.NewSession()
	if err != nil {
		return "", err.Error(), -1
	}
	defer s.Close()
	var out, errb strings.Builder
	s.Stdout, s.Stderr = &out, &errb
	err = s.Run(cmd)
	code := 0
	if ee, ok := err.(*gossh.ExitError); ok {
		code = ee.ExitStatus()
	} else if err != nil {
		code = -1
	}
	return out.String(), errb.String(), code
}
