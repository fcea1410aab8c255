package sshtest

import (
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// ptyHost starts a host and a client that may log in to it as root.
func ptyHost(t *testing.T) (*Host, *Client) {
	t.Helper()
	ca := NewCA(t)
	h := StartHost(t, HostOptions{TrustedUserCAKeys: []ssh.PublicKey{ca.PublicKey}})
	c := NewClient(t, "")
	c.TrustHost(h.Addr, h.HostKey)
	c.SetCertificate(ca.UserCert(t, c.PublicKey, "test:pty", "root"))
	return h, c
}

func TestPTYInteractiveShellSeesSizeAndResize(t *testing.T) {
	h, c := ptyHost(t)
	s := c.StartPTY(t, h.Port, "root", 80, 24)

	// Each command prints a marker that its echoed input does not contain,
	// so Expect matches what the shell printed, not what was typed.
	s.Send("echo answer=$((6*7))\r")
	s.Expect(t, `answer=42`, long)
	s.Send("echo size=$(stty size)\r")
	s.Expect(t, `size=24 80`, long)

	s.Resize(100, 40)
	// The window-change reaches the host asynchronously: wait on the host.
	s.Send(`while [ "$(stty size)" != "40 100" ]; do sleep 0.1; done; echo resized=$(stty size)` + "\r")
	s.Expect(t, `resized=40 100`, long)

	s.Send("exit 7\r")
	code, err := s.Wait(long)
	if err != nil || code != 7 {
		t.Fatalf("Wait = %d, %v; want 7", code, err)
	}
}

func TestPTYExecWithTerminal(t *testing.T) {
	h, c := ptyHost(t)
	s := c.StartPTY(t, h.Port, "root", 123, 45, "stty size; tty")
	code, err := s.Wait(long)
	if err != nil || code != 0 {
		t.Fatalf("Wait = %d, %v; output %q", code, err, s.Output())
	}
	s.Expect(t, `45 123\r\n/dev/pts/\d+`, long)
}

func TestPTYExpectSearchesAfterThePreviousMatch(t *testing.T) {
	h, c := ptyHost(t)
	s := c.StartPTY(t, h.Port, "root", 80, 24, "echo one=1 two=2 one=3")
	if _, err := s.Wait(long); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"one=1", "one=3"} {
		if got := s.Expect(t, `one=\d`, long); got != want {
			t.Fatalf("Expect = %q, want %q", got, want)
		}
	}
	msg := failureOf(t, func(tb testing.TB) { s.Expect(tb, `one=\d`, long) })
	if !strings.Contains(msg, "terminal closed") || !strings.Contains(msg, "two=2") {
		t.Fatalf("failure after the last match lacks reason or output: %q", msg)
	}
}

func TestPTYExpectTimesOutWithOutputSoFar(t *testing.T) {
	h, c := ptyHost(t)
	s := c.StartPTY(t, h.Port, "root", 80, 24, "echo started=yes; exec sleep 600")
	s.Expect(t, `started=yes`, long)
	msg := failureOf(t, func(tb testing.TB) { s.Expect(tb, `never`, 0) })
	if !strings.Contains(msg, `"never" not seen`) || !strings.Contains(msg, "started=yes") {
		t.Fatalf("timeout failure lacks pattern or output: %q", msg)
	}
}
