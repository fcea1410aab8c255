package gateway_test

import (
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/sso"
)

// reparse parses the testbed's policy file after edit, failing the test if
// the edit changed nothing or broke the file.
func (b *testbed) reparse(edit func(string) string) *policy.Config {
	b.t.Helper()
	src := string(b.cfg.Source)
	if edit != nil {
		if src = edit(src); src == string(b.cfg.Source) {
			b.t.Fatal("the edit changed nothing")
		}
	}
	cfg, err := policy.Parse([]byte(src), b.cfg.Path)
	if err != nil {
		b.t.Fatalf("edited policy: %v", err)
	}
	return cfg
}

// A session opened with a key bound by single sign-on (no directory: the
// key is in no policy user's keys, the binding names the user) survives a
// reload that leaves its user's access alone, and ends with one that
// finds its binding gone. Judging the key by the policy's keys alone
// would end every signed-in session on each reload.
func TestReloadKeepsSignedInSession(t *testing.T) {
	sb := newSSOBed(t)
	sb.signIn(t, sb.stranger, "dana", "dana-pw")
	sb.waitEvent(sso.EventBound, "dana")

	p := sb.stranger.StartPTY(t, sb.port, "root@web01", 80, 24)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	if ended := sb.gw.ApplyPolicy(context.Background(), sb.reparse(nil)); len(ended) != 0 {
		t.Fatalf("an unchanged reload ended the signed-in session: %v", ended)
	}
	p.Send("echo still-$((20+22))\r")
	p.Expect(t, `still-42`, expectWait)

	// Once the binding ends (sign-out leaves live sessions alone), the key
	// names nobody: the next reload ends the session it still runs.
	if out, errOut, code := sb.run(sb.stranger, "me", "logout"); code != 0 {
		t.Fatalf("logout: exit %d %q %q", code, out, errOut)
	}
	p.Send("echo still-$((20+23))\r")
	p.Expect(t, `still-43`, expectWait)
	ended := sb.gw.ApplyPolicy(context.Background(), sb.reparse(nil))
	p.Expect(t, `warden: access removed by a policy change; session closed`, expectWait)
	if s := sb.lastSession("dana"); len(ended) != 1 || ended[0] != s.ID || s.EndReason != "policy_changed" {
		t.Fatalf("ended %v, row %+v", ended, s)
	}
	sb.waitEvent("session.access_removed", "sign-in no longer names this user")
}

// withoutAlice is the testbed's policy in which alice has left sysadmins
// for management: no role gives her web01 any more, now or on request.
func withoutAlice(s string) string {
	return strings.Replace(s, "    groups: [sysadmins]\n", "    groups: [management]\n", 1)
}

// A reload that lands after a session channel was authorized under the old
// policy, but before it joined the registry that ApplyPolicy judges, does
// not let it through: its start request is judged by the new policy.
func TestReloadWhileASessionIsAdmitted(t *testing.T) {
	var once sync.Once
	ended := make(chan []string, 1)
	b := newTestbed(t, bedOptions{configure: func(b *testbed, o *gateway.Options) {
		gateway.OnAdmitted(o, func() {
			once.Do(func() { ended <- b.gw.ApplyPolicy(context.Background(), b.reparse(withoutAlice)) })
		})
	}})
	out, errOut, code := b.run(b.alice, "root@web01", "echo", "ran-$((40+2))")
	if code != 1 || strings.Contains(out, "ran-42") || !strings.Contains(errOut, "warden: unknown host web01") {
		t.Fatalf("a session admitted before the reload ran after it: exit %d out %q err %q", code, out, errOut)
	}
	if e := <-ended; len(e) != 0 {
		t.Fatalf("ApplyPolicy ended %v: the channel was not in the registry yet", e)
	}
}

// A reload that lands after a session passed its start's recheck under the
// old policy and wrote its row, before its credential and host connection,
// ends it as it ends a running session: the policy's line, end_reason
// policy_changed and the session.access_removed event, not the failure
// the cancellation provokes further on (a dial cut short).
func TestReloadWhileASessionStarts(t *testing.T) {
	var once sync.Once
	ended := make(chan []string, 1)
	b := newTestbed(t, bedOptions{configure: func(b *testbed, o *gateway.Options) {
		gateway.OnStarted(o, func(string) {
			once.Do(func() { ended <- b.gw.ApplyPolicy(context.Background(), b.reparse(withoutAlice)) })
		})
	}})
	out, errOut, code := b.run(b.alice, "root@web01", "echo", "ran-$((40+2))")
	e := <-ended
	if code != 1 || strings.Contains(out, "ran-42") || !strings.Contains(errOut, "warden: access removed by a policy change") {
		t.Errorf("exit %d out %q err %q", code, out, errOut)
	}
	if len(e) != 1 {
		t.Fatalf("ApplyPolicy ended %v, want the starting session", e)
	}
	b.waitEvent("session.access_removed", e[0])
	if s := b.waitSessionEnded(e[0]); s.EndReason != "policy_changed" {
		t.Errorf("row %+v, want end_reason policy_changed", s)
	}
}

// A connection opened before a reload (a ControlMaster, a client that
// keeps one) gets nothing by it: the reload ends each of its running
// channels, a command and sftp alike, and each channel it opens after is
// judged by the new policy, whatever it asks to run.
func TestReloadJudgesEveryChannelOfAConnection(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	c := b.goClientAs(b.alice, "root@web01")
	running := []chan string{
		startHeld(t, c, func(s *gossh.Session) error { return s.Start("cat") }),
		startHeld(t, c, func(s *gossh.Session) error { return s.RequestSubsystem("sftp") }),
	}
	b.waitEvent("session.start", "kind:exec")
	b.waitEvent("session.start", "kind:subsystem")

	if ended := b.gw.ApplyPolicy(context.Background(), b.reparse(withoutAlice)); len(ended) != 2 {
		t.Fatalf("ApplyPolicy ended %v, want the command and sftp", ended)
	}
	for i, ch := range running {
		if errOut := <-ch; !strings.Contains(errOut, "warden: access removed by a policy change; session closed") {
			t.Errorf("running channel %d: stderr %q", i, errOut)
		}
	}
	if out, errOut, code := runGoErr(c, "echo ran-$((40+2))"); code != 1 || strings.Contains(out, "ran-42") || !strings.Contains(errOut, "warden: unknown host web01") {
		t.Errorf("exec after the reload: exit %d out %q err %q", code, out, errOut)
	}
	sftp := startHeld(t, c, func(s *gossh.Session) error { return s.RequestSubsystem("sftp") })
	if errOut := <-sftp; !strings.Contains(errOut, "warden: unknown host web01") {
		t.Errorf("sftp after the reload: stderr %q", errOut)
	}
}

// A channel opened before a reload and started after it, by a client that
// waits in between (x/crypto's can), is ended by the reload itself, not
// only refused at its start: the event and the line say why.
func TestReloadEndsAChannelOpenedEarly(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	s, id := b.openEarly(b.alice, "root@web01")
	if ended := b.gw.ApplyPolicy(context.Background(), b.reparse(withoutAlice)); len(ended) != 1 || ended[0] != id {
		t.Fatalf("ApplyPolicy ended %v, want %s", ended, id)
	}
	b.waitEvent("session.access_removed", id)
	b.wantEndedEarly("access removed by a policy change; session refused")
	out, errOut, code := startLate(t, s)
	b.wantNotRun(t, "alice", out, errOut, code, "warden: access removed by a policy change; session refused")
}

// A user a reload removes from the policy loses their sign-in binding on
// the record (sso.ended, reason policy_changed), not merely while out of
// the policy: a later reload that puts the name back, for the same person
// or a new one, does not bring the old binding, and the key it bound, back
// to life.
func TestReloadRemovingAUserEndsTheirSignIns(t *testing.T) {
	sb := newSSOBed(t)
	sb.signIn(t, sb.stranger, "dana", "dana-pw")
	sb.waitEvent(sso.EventBound, "dana")
	if out, _, _ := sb.run(sb.stranger, "me", "whoami"); !strings.Contains(out, "user:        dana") {
		t.Fatalf("whoami before: %q", out)
	}

	withoutDana := func(s string) string { return strings.Replace(s, "  - name: dana\n    groups: [sysadmins]\n", "", 1) }
	sb.gw.ApplyPolicy(context.Background(), sb.reparse(withoutDana))
	sb.waitEvent(sso.EventEnded, "policy_changed")

	sb.gw.ApplyPolicy(context.Background(), sb.reparse(nil)) // dana is back
	_, errOut, code := sb.run(sb.stranger, "me", "whoami")
	if code != 1 || !strings.Contains(errOut, "this key is not known to Warden; sign in first") {
		t.Fatalf("the key bound before dana left works again after she is back: exit %d %q", code, errOut)
	}
	if _, _, code := sb.run(sb.stranger, "root@web01", "true"); code != 255 {
		t.Fatalf("the key bound before dana left reaches a host again: exit %d", code)
	}
}

// startHeld opens a session channel on c, starts it with start and keeps
// its stdin open, so that it runs until the gateway ends it; the channel
// returned gets what its stderr held when it closed. The pipes work for
// sftp too, whose x/crypto session never "starts".
func startHeld(t *testing.T, c *gossh.Client, start func(*gossh.Session) error) chan string {
	t.Helper()
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	errPipe, err := s.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.StdinPipe(); err != nil { // held open: the channel runs until ended
		t.Fatal(err)
	}
	if err := start(s); err != nil {
		t.Fatal(err)
	}
	stderr := make(chan string, 1)
	go func() {
		b, _ := io.ReadAll(errPipe)
		stderr <- string(b)
	}()
	return stderr
}
