package gateway_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
)

// goClient connects with x/crypto's client as alice, for inputs the
// OpenSSH client will not produce (control characters, huge names, absurd
// terminal sizes, abrupt disconnects).
func (b *testbed) goClient(user string) (*gossh.Client, net.Conn) {
	b.t.Helper()
	key, err := os.ReadFile(b.alice.KeyPath)
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
		User: user, Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.FixedHostKey(b.hostKey),
	})
	if err != nil {
		b.t.Fatal(err)
	}
	c := gossh.NewClient(cc, chans, reqs)
	b.t.Cleanup(func() { c.Close() })
	return c, nc
}

// runGo runs cmd in a session of c and returns stdout, stderr and status.
func runGo(t *testing.T, c *gossh.Client, cmd string) (string, string, int) {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	err = s.Run(cmd)
	code := 0
	if ee, ok := err.(*gossh.ExitError); ok {
		code = ee.ExitStatus()
	} else if err != nil {
		t.Fatalf("run: %v", err)
	}
	return out.String(), errb.String(), code
}

func TestMalformedUserNamesGetOneClearLine(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	for name, tc := range map[string]struct{ user, want string }{
		"only ats":      {"@@", "has no login"},
		"no host":       {"root@", "has no host"},
		"no login":      {"@web01", "has no login"},
		"many ats":      {"a@b@c@d", "more than one '@'"},
		"control chars": {"root\x1b[31m@web01", "control character"},
		"newline":       {"root@web01\nid", "control character"},
		"10 kB":         {strings.Repeat("a", 10000) + "@web01", "at most 512"},
		"bad host":      {"root@web 01", "not a valid host"},
		"slashes":       {"root@a/b/c", "not a valid host"},
	} {
		t.Run(name, func(t *testing.T) {
			c, _ := b.goClient(tc.user)
			out, errOut, code := runGo(t, c, "id")
			if code != 1 || out != "" || !strings.HasPrefix(errOut, "warden: ") || !strings.Contains(errOut, tc.want) ||
				strings.Count(errOut, "\n") != 1 {
				t.Fatalf("code %d out %q stderr %q", code, out, errOut)
			}
		})
	}
	// And through the real client, for the names it can send.
	for _, user := range []string{"@@", "root@"} {
		_, errOut, code := b.run(b.alice, user, "id")
		if code != 1 || !strings.HasPrefix(errOut, "warden: ") {
			t.Fatalf("ssh %q: code %d stderr %q", user, code, errOut)
		}
	}
	if n := len(b.events("session.refused")); n < 11 {
		t.Fatalf("%d refusal events, want one per attempt", n)
	}
}

func TestAbsurdPTYSizeIsRefusedSessionGoesOn(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	c, _ := b.goClient("root@web01")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.RequestPty("xterm", 1_000_000, 1_000_000, gossh.TerminalModes{}); err == nil {
		t.Fatal("absurd pty size accepted")
	}
	out, err := s.Output("echo still-works")
	if err != nil || string(out) != "still-works\n" {
		t.Fatalf("after refused pty: %v %q", err, out)
	}
}

func TestClientVanishingMidSessionClosesRowAndRecording(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	c, nc := b.goClient("root@web01")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	var out safeBuffer
	s.Stdout = &out
	if err := s.Start("echo started; sleep 300"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(expectWait)
	for !strings.Contains(out.String(), "started") {
		if time.Now().After(deadline) {
			t.Fatal("command never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	nc.Close() // the client's network goes away mid-session
	row := b.lastSession("alice")
	if row.EndReason != "client_disconnected" {
		t.Fatalf("end reason %q", row.EndReason)
	}
	raw, err := os.ReadFile(filepath.Join(b.data, row.RecordingPath))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if hex.EncodeToString(sum[:]) != row.RecordingSHA256 || !strings.Contains(string(raw), "started") {
		t.Fatalf("recording incomplete or digest wrong")
	}
}

func TestClientDisconnectDuringHandshakeLeavesNothingOpen(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	for i := 0; i < 5; i++ {
		nc, err := net.Dial("tcp", "127.0.0.1:"+b.port)
		if err != nil {
			t.Fatal(err)
		}
		nc.Write([]byte("SSH-2.0-half\r\n"))
		nc.Close()
	}
	// The gateway still serves.
	out, _, code := b.run(b.alice, "root@web01", "echo alive")
	if code != 0 || out != "alive\n" {
		t.Fatalf("after broken handshakes: %d %q", code, out)
	}
	// The broken handshakes left no session rows, open or closed: only the
	// one real session exists, and it is closed.
	b.lastSession("alice")
	all, err := b.store.Sessions(testCtx(t), audit.SessionFilter{})
	if err != nil || len(all) != 1 || all[0].EndedAt.IsZero() {
		t.Fatalf("sessions after broken handshakes: %v %+v", err, all)
	}
}

func TestX11AndOtherSubsystemsAreRefused(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	c, _ := b.goClient("root@web01")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	x11 := gossh.Marshal(struct {
		Single   bool
		Protocol string
		Cookie   string
		Screen   uint32
	}{false, "MIT-MAGIC-COOKIE-1", "0123456789abcdef0123456789abcdef", 0})
	if ok, err := s.SendRequest("x11-req", true, x11); err != nil || ok {
		t.Fatalf("x11-req: ok=%v err=%v", ok, err)
	}
	b.waitEvent("forward.refused", "x11-req")
	if err := s.RequestSubsystem("netconf"); err == nil {
		t.Fatal("subsystem netconf accepted")
	}
	b.waitEvent("session.refused", "subsystem not allowed")
	out, err := s.Output("echo after-refusals")
	if err != nil || string(out) != "after-refusals\n" {
		t.Fatalf("%v %q", err, out)
	}
}
