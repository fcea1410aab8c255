package gateway_test

import (
	"bytes"
	"encoding/json"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/policy"
)

// An attacker's client opens a session channel while its grant is valid and
// asks to start it only later. OpenSSH always starts at once, so these tests
// use x/crypto's client, which can wait between the two.

// goClientAs connects with x/crypto's client and c's key.
func (b *testbed) goClientAs(c *sshtest.Client, user string) *gossh.Client {
	b.t.Helper()
	key, err := os.ReadFile(c.KeyPath)
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
	client := gossh.NewClient(cc, chans, reqs)
	b.t.Cleanup(func() { client.Close() })
	return client
}

// openEarly opens a session channel as c on user and waits until the
// gateway lists it, live but not started, to the global auditor. It
// returns the channel and the session's ID.
func (b *testbed) openEarly(c *sshtest.Client, user string) (*gossh.Session, string) {
	b.t.Helper()
	s, err := b.goClientAs(c, user).NewSession()
	if err != nil {
		b.t.Fatalf("open channel: %v", err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, errOut, code := b.run(b.erin, "gw", "sessions", "--live", "--json")
		var live []map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &live) != nil {
			b.t.Fatalf("sessions --live: %d %q %q", code, out, errOut)
		}
		for _, l := range live {
			if l["state"] == "opening" {
				return s, l["id"].(string)
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("the opened channel is not live: %q", out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wantEndedEarly waits for the refusal the gateway records as soon as it
// ends a channel that has not started: proof that the revocation, expiry,
// kill or deprovisioning reached it, not only the check at start.
func (b *testbed) wantEndedEarly(reason string) {
	b.t.Helper()
	b.waitEvent("session.refused", reason)
}

// startLate asks the early channel to run `id` and returns what came back.
func startLate(t *testing.T, s *gossh.Session) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	s.Stdout, s.Stderr = &out, &errb
	err := s.Run("id")
	code := 0
	if ee, ok := err.(*gossh.ExitError); ok {
		code = ee.ExitStatus()
	} else if err != nil {
		code = -1 // the channel was closed without a status: also not run
	}
	return out.String(), errb.String(), code
}

// wantNotRun checks that the late start was refused with want and that no
// session row exists for user: nothing reached the host.
func (b *testbed) wantNotRun(t *testing.T, user, out, errOut string, code int, want string) {
	t.Helper()
	if code != 1 || errOut != want+"\n" || strings.Contains(out, "uid=") {
		t.Fatalf("late start: code %d stdout %q stderr %q; want %q", code, out, errOut, want)
	}
	rows, err := b.store.Sessions(testCtx(t), audit.SessionFilter{User: user})
	if err != nil || len(rows) != 0 {
		t.Fatalf("session rows %v %+v", err, rows)
	}
	b.waitEvent("session.refused", strings.TrimPrefix(want, "warden: "))
}

func TestRevokeReachesChannelOpenedEarly(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	gid := b.requestAndApprove("1h")
	g := strconv.FormatInt(gid, 10)
	s, _ := b.openEarly(b.bob, "root@web01")

	out, errOut, code := b.run(b.carol, "gw", "revoke", g, "--reason", "done")
	if code != 0 || out != "grant "+g+" revoked; 1 live session(s) closed\n" {
		t.Fatalf("revoke: %d %q %q", code, out, errOut)
	}
	b.wantEndedEarly("grant " + g + " ended before the session started")
	out, errOut, code = startLate(t, s)
	b.wantNotRun(t, "bob", out, errOut, code, "warden: grant "+g+" ended before the session started")
}

func TestGrantExpiryReachesChannelOpenedEarly(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	// Long enough for the channel to open on a loaded machine: the grant
	// must still be valid then.
	gid := b.requestAndApprove("10s")
	g := strconv.FormatInt(gid, 10)
	s, _ := b.openEarly(b.bob, "root@web01")
	grants, err := b.jit.Grants(testCtx(t), "bob", false)
	if err != nil || len(grants) != 1 {
		t.Fatalf("grants %v %v", grants, err)
	}
	// Start only once the grant has ended (its window is real time here).
	time.Sleep(time.Until(grants[0].ExpiresAt) + 200*time.Millisecond)
	b.wantEndedEarly("grant " + g + " expired before the session started")
	out, errOut, code := startLate(t, s)
	b.wantNotRun(t, "bob", out, errOut, code, "warden: grant "+g+" expired before the session started")
}

func TestKillReachesChannelOpenedEarly(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	s, id := b.openEarly(b.alice, "root@web01")
	if out, errOut, code := b.run(b.erin, "gw", "kill", id); code != 0 || out != "session "+id+" terminated\n" {
		t.Fatalf("kill: %d %q %q", code, out, errOut)
	}
	b.wantEndedEarly("session terminated by an administrator")
	out, errOut, code := startLate(t, s)
	b.wantNotRun(t, "alice", out, errOut, code, "warden: session terminated by an administrator")
}

// A policy reload between open and start is seen at start: the identity
// and the standing role are checked again, not only the grant.
func TestStartRechecksIdentityAndStandingRole(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	src, err := os.ReadFile(b.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	reload := func(old, repl string) {
		t.Helper()
		if !strings.Contains(string(src), old) {
			t.Fatalf("policy has no %q", old)
		}
		path := b.cfg.Path + ".new"
		if err := os.WriteFile(path, []byte(strings.Replace(string(src), old, repl, 1)), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg, err := policy.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		b.gw.SetPolicy(cfg)
	}
	for _, tc := range []struct {
		name, old, repl, want string
	}{
		{"no longer a member", "groups: [sysadmins]", "groups: [management]", "warden: unknown host web01"},
		{"key removed", "keys: [" + strconv.Quote(authorizedKey(b.alice.PublicKey)) + "]", "keys: []", "warden: your key is no longer known"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.gw.SetPolicy(b.cfg)
			s, _ := b.openEarly(b.alice, "root@web01")
			reload(tc.old, tc.repl)
			defer b.gw.SetPolicy(b.cfg)
			out, errOut, code := startLate(t, s)
			b.wantNotRun(t, "alice", out, errOut, code, tc.want)
		})
	}
}

func TestDeprovisioningReachesChannelOpenedEarly(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	gid := b.requestAndApprove("1h")
	s, _ := b.openEarly(b.bob, "root@web01")
	// bob leaves helpdesk; the policy is reloaded and Deprovision runs, as
	// warden serve does after a reload.
	src, err := os.ReadFile(b.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	path := b.cfg.Path + ".new"
	if err := os.WriteFile(path, []byte(strings.Replace(string(src), "groups: [helpdesk]", "groups: []", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := policy.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	b.cfg = cfg // the workflow reads b.cfg
	b.gw.SetPolicy(cfg)
	ended, err := b.jit.Deprovision(testCtx(t))
	if err != nil || len(ended) != 1 || ended[0].ID != gid {
		t.Fatalf("deprovision: %v %+v", err, ended)
	}
	b.wantEndedEarly("grant " + strconv.FormatInt(gid, 10) + " ended before the session started")
	out, errOut, code := startLate(t, s)
	b.wantNotRun(t, "bob", out, errOut, code, "warden: grant "+strconv.FormatInt(gid, 10)+" ended before the session started")
}

// A grant ended by a path that does not notify this gateway (another node,
// a direct database change such as `warden reconcile --apply`) is still
// caught when the early channel asks to start: the grant is read again.
func TestStartRechecksGrantInStore(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	gid := b.requestAndApprove("1h")
	s, _ := b.openEarly(b.bob, "root@web01")
	err := b.store.Update(testCtx(t), func(tx *audit.Tx) error {
		ts, err := audit.Time(time.Now())
		if err != nil {
			return err
		}
		_, err = tx.Exec(`UPDATE grants SET ended_at = ?, end_reason = 'deprovisioned' WHERE id = ?`, ts, gid)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	out, errOut, code := startLate(t, s)
	b.wantNotRun(t, "bob", out, errOut, code, "warden: grant "+strconv.FormatInt(gid, 10)+" ended before the session started")
}
