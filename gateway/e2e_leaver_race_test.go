package gateway_test

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/jit"
)

// The directory's leaver change racing a session's opening: the SCIM
// request lands at the very moment the test hooks mark (OnAdmitted,
// OnStarted), not where a sleep might put it.

// leaverAt builds the directory testbed with dana provisioned into
// sysadmins (root on web01) and hook installed by install; the returned
// arm makes the hook deactivate dana (once) the next time it runs, and
// done is closed when the SCIM answer is back.
func leaverAt(t *testing.T, install func(o *gateway.Options, fire func())) (b *testbed, dana *sshtest.Client, arm func(), done chan struct{}) {
	t.Helper()
	var armed atomic.Bool
	var once sync.Once
	done = make(chan struct{})
	var deactivate func() int
	opt := bedOptions{configure: func(_ *testbed, o *gateway.Options) {
		install(o, func() {
			if !armed.Load() {
				return
			}
			once.Do(func() {
				defer close(done)
				if code := deactivate(); code != http.StatusOK {
					t.Errorf("deactivate from the hook: %d", code)
				}
			})
		})
	}}
	b, srv, dana := directoryBedWith(t, opt, "")
	id := provisionDana(t, srv, dana)
	deactivate = func() int {
		code, _ := scimDo(t, srv, "PATCH", "/Users/"+id, patchInactive)
		return code
	}
	return b, dana, func() { armed.Store(true) }, done
}

// A channel authorized before the directory deactivates dana, and not
// yet in the live registry the change walks, must not run: the start's
// recheck sees her gone.
func TestLeaverWhileASessionIsAdmitted(t *testing.T) {
	b, dana, arm, done := leaverAt(t, func(o *gateway.Options, fire func()) { gateway.OnAdmitted(o, fire) })
	arm()
	out, errOut, code := b.run(dana, "root@web01", "echo", "ran-$((40+2))")
	<-done
	if code != 1 || strings.Contains(out, "ran-42") || !strings.Contains(errOut, "warden: your key is no longer known") {
		t.Fatalf("a session admitted before the leaver change ran after it: exit %d out %q err %q", code, out, errOut)
	}
	b.waitEvent("session.refused", "your key is no longer known")
}

// A channel whose start passed the recheck and whose row is written,
// before its credential and host connection, is ended by the change as a
// running session is: the directory's line, end_reason deprovisioned, and
// identity.access_removed naming the session.
func TestLeaverWhileASessionStarts(t *testing.T) {
	b, dana, arm, done := leaverAt(t, func(o *gateway.Options, fire func()) {
		gateway.OnStarted(o, func(string) { fire() })
	})
	arm()
	out, errOut, code := b.run(dana, "root@web01", "echo", "ran-$((40+2))")
	<-done
	if code != 1 || strings.Contains(out, "ran-42") || !strings.Contains(errOut, "warden: access removed by the directory") {
		t.Fatalf("exit %d out %q err %q", code, out, errOut)
	}
	s := b.lastSession("dana@contoso.com")
	if got := b.waitSessionEnded(s.ID); got.EndReason != "deprovisioned" {
		t.Fatalf("row %+v, want end_reason deprovisioned", got)
	}
	b.waitEvent("identity.access_removed", s.ID)
}

// A connection authenticated before dana leaves (a ControlMaster, a raw
// client that keeps it open) keeps nothing: every channel on it ends with
// the directory's line (a command, sftp, and one opened but not started
// yet), and each channel it opens afterwards, to a host or to the command
// interface, is refused.
func TestLeaverEndsEveryChannelOfAConnection(t *testing.T) {
	b, srv, dana := directoryBed(t)
	id := provisionDana(t, srv, dana)
	early, _ := b.openEarly(dana, "root@web01")
	host := b.goClientAs(dana, "root@web01")
	cmd := b.goClientAs(dana, "gw")
	if out, err := sessionOutput(cmd, "whoami"); err != nil || !strings.Contains(string(out), "dana@contoso.com") {
		t.Fatalf("gw whoami before leaving: %v %q", err, out)
	}
	running := map[string]chan string{}
	for kind, start := range map[string]func(*gossh.Session) error{
		"exec":      func(s *gossh.Session) error { return s.Start("cat") },
		"subsystem": func(s *gossh.Session) error { return s.RequestSubsystem("sftp") },
	} {
		running[kind] = startHeld(t, host, start)
		b.waitEvent("session.start", "kind:"+kind)
	}

	if code, _ := scimDo(t, srv, "PATCH", "/Users/"+id, patchInactive); code != http.StatusOK {
		t.Fatalf("deactivate: %d", code)
	}
	for kind, ch := range running {
		select {
		case errOut := <-ch:
			if !strings.Contains(errOut, "warden: access removed by the directory; session closed") {
				t.Errorf("running %s: stderr %q", kind, errOut)
			}
		case <-time.After(expectWait):
			t.Fatalf("running %s goes on after the user left", kind)
		}
	}
	b.wantEndedEarly("access removed by the directory; session refused")
	if out, errOut, code := startLate(t, early); code == 0 || strings.Contains(out, "uid=") {
		t.Errorf("a channel opened before leaving ran after: exit %d out %q err %q", code, out, errOut)
	}
	for name, c := range map[string]*gossh.Client{"host": host, "gw": cmd} {
		_, err := c.NewSession()
		if err == nil || !strings.Contains(err.Error(), "your key is no longer known") {
			t.Errorf("%s: a channel opened after leaving: %v", name, err)
		}
	}
	rows := b.sessionsOf("dana@contoso.com")
	if len(rows) != 2 {
		t.Fatalf("session rows %+v, want the command and sftp", rows)
	}
	for _, s := range rows {
		if got := b.waitSessionEnded(s.ID); got.EndReason != "deprovisioned" {
			t.Errorf("session %s (%s) end_reason %q", s.ID, s.Role, got.EndReason)
		}
	}
}

func sessionOutput(c *gossh.Client, command string) ([]byte, error) {
	s, err := c.NewSession()
	if err != nil {
		return nil, err
	}
	defer s.Close()
	var out bytes.Buffer
	s.Stdout = &out
	err = s.Run(command)
	return out.Bytes(), err
}

// A leaver's live view ends with them: dana, an auditor through the
// directory, watches alice's session over `ssh gw watch`; the directory
// deactivates her and the watch ends with its line and event, while the
// watched session goes on.
func TestLeaverWatchEnds(t *testing.T) {
	b, srv, dana := directoryBed(t)
	id, _ := provisionIn(t, srv, dana, "auditors")
	s, err := b.goClientAs(b.alice, "root@web01").NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start("while :; do echo tick; sleep 0.2; done"); err != nil {
		t.Fatal(err)
	}
	live := b.liveID("alice")
	watch := dana.SSH(testCtx(t), b.port, "gw", "watch", live)
	var seen, errb safeBuffer
	watch.Stdout, watch.Stderr = &seen, &errb
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(seen.String(), "tick") }, "the watch shows the session")
	done := make(chan error, 1)
	go func() { done <- watch.Wait() }()

	if code, _ := scimDo(t, srv, "PATCH", "/Users/"+id, patchInactive); code != http.StatusOK {
		t.Fatalf("deactivate: %d", code)
	}
	select {
	case err := <-done:
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != 1 || !strings.Contains(errb.String(), "warden: you no longer oversee this session; watch ended") {
			t.Fatalf("watch ended with %v, stderr %q", err, errb.String())
		}
	case <-time.After(expectWait):
		t.Fatalf("the leaver's watch runs on; stderr %q", errb.String())
	}
	b.waitEvent("session.watch_ended", "dana@contoso.com")
	if got := b.liveID("alice"); got != live {
		t.Fatalf("the watched session %s ended with the watch (now %s)", live, got)
	}
}

// midCutOff is the elevation workflow with a hook that runs once, when
// the first of the directory's two workflow steps (ending grants,
// cancelling requests) has returned and before the other runs.
type midCutOff struct {
	*jit.Service
	once sync.Once
	hook atomic.Pointer[func()]
}

func (m *midCutOff) step() {
	if f := m.hook.Load(); f != nil {
		m.once.Do(*f)
	}
}

func (m *midCutOff) Deprovision(ctx context.Context) ([]jit.Grant, error) {
	defer m.step()
	return m.Service.Deprovision(ctx)
}

func (m *midCutOff) CancelIneligible(ctx context.Context, users []string, actor string) ([]jit.Request, error) {
	defer m.step()
	return m.Service.CancelIneligible(ctx, users, actor)
}

// An approval that lands while the directory's cut-off is under way,
// between its two workflow steps, leaves the leaver no grant, now or
// after re-activation: decided after the change, it is refused (the
// requester is gone, or the request cancelled). The narrower window, an
// approval decided on the policy from before the change and committed
// between the two steps, has no hook inside jit to land in; the order of
// the steps in directoryChanged is what closes it.
func TestLeaverApprovalDuringTheCutOff(t *testing.T) {
	m := &midCutOff{}
	b, srv, dana := directoryBedWith(t, bedOptions{configure: func(b *testbed, o *gateway.Options) {
		m.Service = b.jit
		o.JIT = m
	}}, "")
	id, _ := provisionIn(t, srv, dana, "helpdesk")
	out, errOut, code := b.run(dana, "gw", "request", "prod-root", "--for", "30m", "--reason", "INC-1")
	req := regexp.MustCompile(`^request (\d+) opened`).FindStringSubmatch(out)
	if code != 0 || req == nil {
		t.Fatalf("request: %d %q %q", code, out, errOut)
	}
	approve := func() { b.run(b.carol, "gw", "approve", req[1]) } // granted or refused: the outcome is checked below
	m.hook.Store(&approve)
	if code, _ := scimDo(t, srv, "PATCH", "/Users/"+id, patchInactive); code != http.StatusOK {
		t.Fatalf("deactivate: %d", code)
	}
	var live int
	if err := b.db().QueryRow(`SELECT COUNT(*) FROM grants WHERE user = 'dana@contoso.com' AND ended_at IS NULL`).Scan(&live); err != nil || live != 0 {
		t.Fatalf("%d live grants for the leaver (%v)", live, err)
	}
	if code, _ := scimDo(t, srv, "PATCH", "/Users/"+id, patchActive); code != http.StatusOK {
		t.Fatalf("reactivate: %d", code)
	}
	if _, errOut, code := b.run(dana, "root@web01", "true"); code != 1 || !strings.Contains(errOut, "no active grant") {
		t.Fatalf("re-activated leaver on web01: %d %q", code, errOut)
	}
}
