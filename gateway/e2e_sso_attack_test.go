package gateway_test

import (
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

const notKnown = "warden: this key is not known to Warden; sign in first: ssh -p PORT GATEWAY login\n"

// TestE2ESSOUnknownKeyCanOnlySignIn: with single sign-on on, a key nobody
// knows authenticates on the command interface, and can do nothing there
// but run `login`. Through OpenSSH: other commands, a shell-like line and
// host targets. Through a raw client: subsystems, a shell, port
// forwarding, direct-tcpip, and a second channel.
func TestE2ESSOUnknownKeyCanOnlySignIn(t *testing.T) {
	sb := newSSOBed(t)
	for _, args := range [][]string{{"whoami"}, {"hosts"}, {"help"}, {"login", "--json"}, {"login;", "id"}, {"request", "prod-root", "--for", "1h", "--reason", "x"}} {
		_, errOut, code := sb.run(sb.stranger, "me", args...)
		if code != 1 || errOut != notKnown {
			t.Errorf("%q: exit %d stderr %q", args, code, errOut)
		}
	}
	for _, target := range []string{"root@web01", "root@acme/web01", "me@nohost"} {
		if _, _, code := sb.run(sb.stranger, target, "id"); code != 255 {
			t.Errorf("%s: exit %d, want an authentication failure (255)", target, code)
		}
	}
	if n := len(sb.events("session.refused")); n < 6 {
		t.Errorf("%d session.refused events, want one per refused command", n)
	}

	raw, err := os.ReadFile(sb.stranger.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	dial := func(user string) (*gossh.Client, error) {
		return gossh.Dial("tcp", "127.0.0.1:"+sb.port, &gossh.ClientConfig{
			User: user, Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
			HostKeyCallback: gossh.FixedHostKey(sb.hostKey), Timeout: 10 * time.Second,
		})
	}
	if _, err := dial("root@web01"); err == nil || !strings.Contains(err.Error(), "unable to authenticate") {
		t.Fatalf("host target with an unknown key: %v", err)
	}
	c, err := dial("me")
	if err != nil {
		t.Fatalf("command interface with an unknown key: %v", err)
	}
	defer c.Close()
	if _, err := c.Dial("tcp", sb.host.Addr); err == nil {
		t.Error("direct-tcpip opened")
	}
	if ok, _, _ := c.SendRequest("tcpip-forward", true, gossh.Marshal(struct {
		Addr string
		Port uint32
	}{"127.0.0.1", 0})); ok {
		t.Error("tcpip-forward accepted")
	}
	sess, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	// x/crypto's Wait only follows Shell, Start and Run: read the refusal
	// from the stderr stream, which ends when the gateway closes.
	errPipe, err := sess.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.RequestSubsystem("sftp"); err != nil {
		t.Fatalf("subsystem request: %v", err)
	}
	if got, _ := io.ReadAll(errPipe); string(got) != notKnown {
		t.Fatalf("sftp subsystem: stderr %q", got)
	}
	// One sign-in channel per connection: the next is refused outright.
	if _, err := c.NewSession(); err == nil || !strings.Contains(err.Error(), "one sign-in per connection") {
		t.Fatalf("second channel: %v", err)
	}

	c2, err := dial("me")
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	sess, err = c2.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var stderr strings.Builder
	var ee *gossh.ExitError
	sess.Stderr = &stderr
	if err := sess.Shell(); err != nil {
		t.Fatal(err)
	}
	if err := sess.Wait(); !errors.As(err, &ee) || ee.ExitStatus() != 1 || stderr.String() != notKnown {
		t.Fatalf("shell: %v, stderr %q", err, stderr.String())
	}
	sb.waitEvent("forward.refused", "direct-tcpip")
	sb.waitEvent("session.refused", "subsystem sftp")
}
