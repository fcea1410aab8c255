package demohost

import (
	"errors"
	"os"
	"os/user"
	"path/filepath"
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

// TestLoginRunsAsOneOSUser documents the demo host's one liberty: the
// login only has to be a principal of the certificate. As an ordinary user
// every login runs as that user; as root, a login other than root runs as
// the unprivileged account, never as uid 0.
func TestLoginRunsAsOneOSUser(t *testing.T) {
	want, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		if want, err = user.Lookup(DefaultUnprivileged); err != nil {
			t.Fatal(err)
		}
	}
	d := startDemo(t, Options{}, "deploy@web01")
	stdout, stderr, code := d.run(t, "deploy@web01", "id -un; id -u; echo $USER $HOME; id -G")
	lines := strings.Split(stdout, "\n")
	if code != 0 || len(lines) < 4 || lines[0] != want.Username || lines[1] != want.Uid ||
		lines[2] != want.Username+" "+want.HomeDir {
		t.Fatalf("output %q (exit %d, stderr %q), want user %s uid %s", stdout, code, stderr, want.Username, want.Uid)
	}
	if os.Geteuid() == 0 && strings.Contains(" "+lines[3]+" ", " 0 ") {
		t.Fatalf("unprivileged session kept root's group: id -G = %q", lines[3])
	}
	if logs := d.logs.String(); !strings.Contains(logs, `key_id=test:1:alice`) || !strings.Contains(logs, `login=deploy@web01`) {
		t.Fatalf("session log lacks key ID or login:\n%s", logs)
	}
}

// TestOnlyRootLoginIsUIDZero: run as root, the demo host gives uid 0 to the
// login root alone, on pipes and on a terminal, so that the demo's
// just-in-time root step is the only way to root.
func TestOnlyRootLoginIsUIDZero(t *testing.T) {
	if os.Geteuid() != 0 {
		// The mapping itself is shown for every uid by TestAccountsForLogin.
		t.Skip("needs root: the demo host switches users only when run as root")
	}
	nobody, err := user.Lookup(DefaultUnprivileged)
	if err != nil {
		t.Fatal(err)
	}
	d := startDemo(t, Options{}, "root", "demo", "rooty", "Root")
	for login, want := range map[string]string{"root": "0", "demo": nobody.Uid, "rooty": nobody.Uid, "Root": nobody.Uid} {
		if stdout, stderr, code := d.run(t, login, "id -u"); code != 0 || stdout != want+"\n" {
			t.Errorf("%s: id -u = %q (exit %d, %q), want %s", login, stdout, code, stderr, want)
		}
	}
	p := d.c.StartPTY(t, d.port, "demo", 80, 24)
	p.Send("id -u; exit\r")
	p.Expect(t, nobody.Uid+`\r?\n`, long)
	// Root's files stay root's: the unprivileged login cannot read them.
	secret := filepath.Join(t.TempDir(), "secret")
	writeTestFile(t, secret, []byte("root only\n"))
	if stdout, _, code := d.run(t, "demo", "cat "+secret); code == 0 || strings.Contains(stdout, "root only") {
		t.Fatalf("unprivileged login read root's file: %q", stdout)
	}
}

func TestAccountsForLogin(t *testing.T) {
	me := currentAccount()
	a, err := newAccounts(1000, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, login := range []string{"root", "demo"} {
		if got := a.forLogin(login); got.cred != nil || got.name != me.name {
			t.Errorf("non-root host: %s runs as %+v", login, got)
		}
	}
	if !strings.Contains(a.describe(), "one OS user") {
		t.Errorf("describe %q", a.describe())
	}
	a, err = newAccounts(0, "")
	if err != nil {
		t.Fatal(err)
	}
	if got := a.forLogin("root"); got.cred != nil {
		t.Errorf("root login switches to %+v", got.cred)
	}
	for _, login := range []string{"demo", "root@web01", "ROOT", "root ", ""} {
		got := a.forLogin(login)
		if got.cred == nil || got.cred.Uid == 0 || got.cred.Gid == 0 || len(got.cred.Groups) != 0 || got.name != DefaultUnprivileged {
			t.Errorf("root host: login %q runs as %+v %+v", login, got, got.cred)
		}
	}
	if d := a.describe(); !strings.Contains(d, "login root as uid 0") || !strings.Contains(d, "nobody") {
		t.Errorf("describe %q", d)
	}
	if _, err := newAccounts(0, "no-such-account-xyz"); err == nil {
		t.Error("a missing unprivileged account was accepted")
	}
	if _, err := newAccounts(0, "root"); err == nil {
		t.Error("root was accepted as the unprivileged account")
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
