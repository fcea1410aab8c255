package demohost

import (
	"errors"
	"os/user"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestExecReturnsOutputAndExitStatus(t *testing.T) {
	d := startDemo(t, Options{}, "root")
	stdout, stderr, code := d.run(t, "root", "echo hi; exit 3")
	if stdout != "hi\n" || code != 3 {
		t.Fatalf("stdout %q, exit %d, want %q, 3; stderr %q", stdout, code, "hi\n", stderr)
	}
}

func TestExecKeepsStderrApart(t *testing.T) {
	d := startDemo(t, Options{}, "root")
	stdout, stderr, code := d.run(t, "root", "echo out; echo err >&2")
	if stdout != "out\n" || stderr != "err\n" || code != 0 {
		t.Fatalf("stdout %q stderr %q exit %d", stdout, stderr, code)
	}
}

func TestExecSeesStdinThenEOF(t *testing.T) {
	d := startDemo(t, Options{}, "root")
	cmd := d.c.SSH(t.Context(), d.port, "root", "tr a-z A-Z; echo done")
	cmd.Stdin = strings.NewReader("shout\n")
	out, err := cmd.Output()
	if err != nil || string(out) != "SHOUT\ndone\n" {
		t.Fatalf("output %q, err %v", out, err)
	}
}

// TestAnyLoginRunsAsTheCurrentUser documents the demo host's one liberty:
// the login only has to be a principal of the certificate.
func TestAnyLoginRunsAsTheCurrentUser(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	d := startDemo(t, Options{}, "deploy@web01")
	stdout, stderr, code := d.run(t, "deploy@web01", "id -un")
	if code != 0 || stdout != me.Username+"\n" {
		t.Fatalf("id -un = %q (exit %d, stderr %q), want %q", stdout, code, stderr, me.Username)
	}
	if logs := d.logs.String(); !strings.Contains(logs, `key_id=test:1:alice`) || !strings.Contains(logs, `login=deploy@web01`) {
		t.Fatalf("session log lacks key ID or login:\n%s", logs)
	}
}

func TestPTYExecReportsTerminalSize(t *testing.T) {
	d := startDemo(t, Options{}, "root")
	s := d.c.StartPTY(t, d.port, "root", 111, 33, "stty size; echo term=$TERM")
	s.Expect(t, `33 111\r\nterm=xterm`, long)
	if code, err := s.Wait(long); err != nil || code != 0 {
		t.Fatalf("Wait = %d, %v", code, err)
	}
}

func TestPTYLoginShellFollowsResize(t *testing.T) {
	d := startDemo(t, Options{Shell: "/bin/bash"}, "root")
	s := d.c.StartPTY(t, d.port, "root", 80, 24)
	s.Send(`echo zero=$0` + "\r")
	s.Expect(t, `zero=-bash`, long) // a login shell

	s.Resize(100, 40)
	// The window-change reaches the host asynchronously: wait on the host.
	s.Send(`while [ "$(stty size)" != "40 100" ]; do sleep 0.1; done; echo resized=$(stty size)` + "\r")
	s.Expect(t, `resized=40 100`, long)
	s.Send("exit 5\r")
	if code, err := s.Wait(long); err != nil || code != 5 {
		t.Fatalf("Wait = %d, %v; want 5", code, err)
	}
}

// TestPTYRefusedWithoutPermitPTY: with -tt a refused terminal is fatal to
// OpenSSH's client, so the message is all a user sees.
func TestPTYRefusedWithoutPermitPTY(t *testing.T) {
	d := startDemo(t, Options{}, "root")
	cert := d.ca.UserCert(t, d.c.PublicKey, "no-pty", "root")
	delete(cert.Extensions, "permit-pty")
	resign(t, d.ca, cert)
	d.c.SetCertificate(cert)
	s := d.c.StartPTY(t, d.port, "root", 80, 24, "tty")
	s.Expect(t, `PTY allocation request failed`, long)
	if _, err := s.Wait(long); err != nil {
		t.Fatal(err)
	}
	// The client may exit before the host's session goroutine has logged.
	d.waitLog(t, "kind=exec login=root remote=127.0.0.1:")
	d.waitLog(t, "pty=false key_id=no-pty")
}

func TestExitSignalIsReported(t *testing.T) {
	d := startDemo(t, Options{}, "root")
	sess, err := d.goClient(t, "root").NewSession()
	if err != nil {
		t.Fatal(err)
	}
	err = sess.Run("kill -TERM $$")
	var exitErr *ssh.ExitError
	if !errors.As(err, &exitErr) || exitErr.Signal() != "TERM" {
		t.Fatalf("Run = %v, want exit signal TERM", err)
	}
}
