package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/recorder"
)

// collect reads feed frames into a string until it holds want or the feed
// ends; it returns the output seen and whether the feed ended.
func collect(t *testing.T, feed recorder.Feed, want string, d time.Duration) (string, bool) {
	t.Helper()
	var out strings.Builder
	timer := time.NewTimer(d)
	defer timer.Stop()
	for !strings.Contains(out.String(), want) {
		select {
		case f, ok := <-feed.Frames:
			if !ok {
				return out.String(), true
			}
			out.Write(f.Output)
		case <-timer.C:
			t.Fatalf("feed: no %q within %v; saw %q", want, d, out.String())
		}
	}
	return out.String(), false
}

// TestConsoleWatchAndKill: the console's view of a live session is the
// SSH watch's, scoped the same way: another tenant's approver, someone who
// oversees nothing and an unknown ID all get ErrNoLiveSession, audited.
// The overseer's feed shows what the real ssh session prints, and the
// overseer's kill (reason required) ends it with its line and end reason
// `killed`, the audit event naming them and the reason.
func TestConsoleWatchAndKill(t *testing.T) {
	b := newTenantBed(t)
	p := b.alice.StartPTY(t, b.port, "root@web01", 100, 30)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	id := b.liveID("alice")
	ctx := testCtx(t)

	for _, who := range []struct{ user, id string }{{"dave", id}, {"bob", id}, {"carol", "zzzzzzzzzzzzzzzzzzzzzzzzzz"}, {"nobody", id}} {
		if _, err := b.gw.WatchSession(ctx, who.user, who.id); !errors.Is(err, gateway.ErrNoLiveSession) {
			t.Fatalf("%s watching %s: %v", who.user, who.id, err)
		}
		if _, err := b.gw.LiveSession(ctx, who.user, who.id); !errors.Is(err, gateway.ErrNoLiveSession) {
			t.Fatalf("%s describing %s: %v", who.user, who.id, err)
		}
		if err := b.gw.KillSession(ctx, who.user, who.id, "because"); !errors.Is(err, gateway.ErrNoLiveSession) {
			t.Fatalf("%s killing %s: %v", who.user, who.id, err)
		}
	}
	b.waitEvent("command.refused", "tenant acme not overseen")
	if ids := b.gw.LiveSessionIDs(); len(ids) != 1 || ids[0] != id {
		t.Fatalf("LiveSessionIDs %v", ids)
	}

	h, err := b.gw.LiveSession(ctx, "tara", id) // acme's tenant auditor
	if err != nil || h.Width != 100 || h.Height != 30 || h.Title != "alice as root@web01" || h.Warden.Tenant != "acme" {
		t.Fatalf("LiveSession: %+v %v", h, err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	feed, err := b.gw.WatchSession(wctx, "carol", id)
	if err != nil {
		t.Fatal(err)
	}
	b.waitEvent("session.watched", "carol")
	p.Send("echo console-$((6*7))\r")
	collect(t, feed, "console-42", expectWait)

	var bad *gateway.BadReasonError
	if err := b.gw.KillSession(ctx, "carol", id, ""); !errors.As(err, &bad) || bad.BadInput() != "a reason is required" {
		t.Fatalf("kill without a reason: %v", err)
	}
	if err := b.gw.KillSession(ctx, "carol", id, "x\x1b[2Jy"); !errors.As(err, &bad) {
		t.Fatalf("kill with a control character: %v", err)
	}
	p.Send("echo still-$((1+1))\r")
	p.Expect(t, `still-2`, expectWait)

	if err := b.gw.KillSession(ctx, "carol", id, "suspicious activity"); err != nil {
		t.Fatal(err)
	}
	p.Expect(t, `warden: session terminated by an administrator`, expectWait)
	if _, ended := collect(t, feed, "\x00never", expectWait); !ended || feed.End() != "session ended" {
		t.Fatalf("feed after kill: ended %v, %q", ended, feed.End())
	}
	if s := b.waitSessionEnded(id); s.EndReason != "killed" {
		t.Fatalf("end reason %q", s.EndReason)
	}
	ev := b.waitEvent("session.killed", "carol")
	if ev.Subject != id || ev.Data["reason"] != "suspicious activity" || ev.Data["via"] != "console" {
		t.Fatalf("kill event %+v", ev)
	}
	b.waitEvent("session.watch_ended", "session ended")
	if err := b.gw.KillSession(ctx, "carol", id, "again"); !errors.Is(err, gateway.ErrNoLiveSession) {
		t.Fatalf("kill again: %v", err)
	}
}

// TestSSHKillReason: `ssh gw kill ID --reason TEXT` records the reason as
// the console's kill does; a reason with control characters is a usage
// error that kills nothing.
func TestSSHKillReason(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	p := b.alice.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	id := b.liveID("alice")
	if _, errOut, code := b.run(b.carol, "gw", "kill", id, "--reason", "'a\tb'"); code != 2 || !strings.Contains(errOut, "control") {
		t.Fatalf("bad reason: %d %q", code, errOut)
	}
	if out, errOut, code := b.run(b.carol, "gw", "kill", id, "--reason", "'left open overnight'"); code != 0 || !strings.Contains(out, "terminated") {
		t.Fatalf("kill: %d %q %q", code, out, errOut)
	}
	p.Expect(t, `warden: session terminated by an administrator`, expectWait)
	if ev := b.waitEvent("session.killed", "carol"); ev.Data["reason"] != "left open overnight" {
		t.Fatalf("event %+v", ev)
	}
}

// TestConsoleWatchEndsWhenOversightEnds: a console viewer taken out of the
// approvers' group while watching is cut off within seconds, and the
// refusal is audited, as for `ssh gw watch`.
func TestConsoleWatchEndsWhenOversightEnds(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	c := b.goClientAs(b.alice, "root@web01")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start("while :; do echo tick; sleep 0.2; done"); err != nil {
		t.Fatal(err)
	}
	id := b.liveID("alice")
	feed, err := b.gw.WatchSession(testCtx(t), "carol", id)
	if err != nil {
		t.Fatal(err)
	}
	collect(t, feed, "tick", expectWait)
	b.reloadPolicy("groups: [security]", "groups: []")
	deadline := time.After(30 * time.Second)
	for open := true; open; {
		select {
		case _, open = <-feed.Frames:
		case <-deadline:
			t.Fatal("the feed runs on after the viewer's oversight ended")
		}
	}
	if !strings.Contains(feed.End(), "no longer oversee") {
		t.Fatalf("end %q", feed.End())
	}
	b.waitEvent("command.refused", "no longer oversee")
	if _, err := b.gw.WatchSession(testCtx(t), "carol", id); !errors.Is(err, gateway.ErrNoLiveSession) {
		t.Fatalf("watch again: %v", err)
	}
}

// TestConsoleWatchSlowViewerDropsFrames: a viewer that reads nothing while
// the session prints megabytes does not slow the session: its own client
// gets every byte, the recording is complete, the viewer is told how many
// frames it lost, and the view's goroutines are gone once it ends.
func TestConsoleWatchSlowViewerDropsFrames(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	c := b.goClientAs(b.alice, "root@web01")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// The command waits for a line, so the viewer is in place before the
	// output starts.
	// 800000 lines of 41 bytes: 32 MB, some 250 chunks of the bridge's
	// 128 KiB buffers, far more than a watcher's 64 buffered frames.
	const lines = 800000
	if err := s.Start(fmt.Sprintf("read go; yes 0123456789012345678901234567890123456789 | head -n %d", lines)); err != nil {
		t.Fatal(err)
	}
	id := b.liveID("alice")
	base := runtime.NumGoroutine()
	wctx, wcancel := context.WithCancel(testCtx(t))
	feed, err := b.gw.WatchSession(wctx, "erin", id)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan int64, 1)
	go func() {
		var n int64
		buf := make([]byte, 64<<10)
		for {
			k, err := out.Read(buf)
			n += int64(k)
			if err != nil {
				got <- n
				return
			}
		}
	}()
	if _, err := in.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	var n int64
	select {
	case n = <-got:
	case <-time.After(2 * time.Minute):
		t.Fatal("the session's client did not get its output while a viewer read nothing")
	}
	if err := s.Wait(); err != nil {
		t.Fatalf("session: %v", err)
	}
	if want := int64(lines * 41); n != want {
		t.Fatalf("the session's client got %d bytes, want %d", n, want)
	}
	row := b.waitSessionEnded(id)
	cast, err := os.ReadFile(filepath.Join(b.data, row.RecordingPath))
	if err != nil {
		t.Fatal(err)
	}
	var recorded int
	for _, l := range strings.Split(strings.TrimSpace(string(cast)), "\n")[1:] {
		var ev []any
		if err := json.Unmarshal([]byte(l), &ev); err != nil || len(ev) != 3 {
			t.Fatalf("cast line %q: %v", l, err)
		}
		if ev[1] == "o" {
			recorded += len(ev[2].(string))
		}
	}
	if recorded != lines*41 {
		t.Fatalf("recording holds %d bytes of output, want %d", recorded, lines*41)
	}

	// Now the viewer reads: some output, a drop notice, then the end.
	var dropped, frames int64
	for f := range feed.Frames {
		frames++
		dropped += f.Dropped
	}
	if dropped == 0 || feed.End() != "session ended" {
		t.Fatalf("viewer got %d frames and %d drop notices, end %q", frames, dropped, feed.End())
	}
	t.Logf("the viewer got %d frames; %d were dropped", frames, dropped)
	wcancel()
	c.Close()
	deadline := time.Now().Add(30 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("goroutines %d, base %d:\n%s", runtime.NumGoroutine(), base, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(50 * time.Millisecond)
	}
}
