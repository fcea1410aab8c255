package cli

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

const faultWait = time.Minute // generous: only to end a hung test

// TestServeKill9MidSessionLosesNothing kills `warden serve` with SIGKILL
// while an interactive shell, a shell printing as fast as it can and a
// command under a just-in-time grant run through it, and starts it again on
// the same data directory. Then: every session row the crash left open is
// ended as "interrupted"; every recording is asciicast v2 made of whole
// JSON lines (a line torn by the kill is cut and the cut sealed), and holds
// the output the shell printed more than a second before the kill (the
// recorder flushes every second); `warden audit verify` passes; and the
// grant is still in force after the restart and ends at its expiry, with
// the session running under it.
func TestServeKill9MidSessionLosesNothing(t *testing.T) {
	b := newFaultBed(t)
	b.writePolicy(b.policy("[ops]", ""))
	b.start()

	out, errOut, code := b.ssh(b.bob, "gw", "request", "prod-root", "--for", "45s", "--reason", "'INC-1 crash drill'")
	m := regexp.MustCompile(`^request (\d+) opened`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		t.Fatalf("request: %d %q %q", code, out, errOut)
	}
	out, errOut, code = b.ssh(b.carol, "gw", "approve", m[1])
	g := regexp.MustCompile(`grant (\d+) for bob on prod-root until (\S+)`).FindStringSubmatch(out)
	if code != 0 || g == nil {
		t.Fatalf("approve: %d %q %q", code, out, errOut)
	}
	grantID := g[1]
	expires, err := time.Parse(time.RFC3339, g[2])
	if err != nil {
		t.Fatal(err)
	}

	shell := b.alice.StartPTY(t, b.port, "root@web01", 80, 24)
	shell.Send("echo marker-$((6*7))\r")
	shell.Expect(t, `marker-42`, faultWait)
	flood := b.alice.StartPTY(t, b.port, "root@web01", 80, 24)
	flood.Send("yes flood-$((2+2)) | head -c 300000000\r")
	flood.Expect(t, `flood-4`, faultWait)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	underGrant := b.bob.SSH(ctx, b.port, "root@web01", "echo", "bob-started;", "sleep", "600")
	stdout, err := underGrant.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := underGrant.Start(); err != nil {
		t.Fatal(err)
	}
	defer underGrant.Process.Kill()
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "bob-started\n" {
		t.Fatalf("session under the grant printed %q", line)
	}
	// More than the recorder's one-second flush after marker-42.
	time.Sleep(2500 * time.Millisecond)
	if err := b.gw.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-b.gw.done
	open := 0
	for _, s := range b.sessions() {
		if !s.ended {
			open++
		}
	}
	if open != 3 {
		t.Fatalf("%d session rows open after the kill, want 3: %+v", open, b.sessions())
	}

	b.start()
	rows := b.sessions()
	var shellOut string
	for _, s := range rows {
		if !s.ended || s.endReason != "interrupted" {
			t.Errorf("session %s of %s: ended %v reason %q, want interrupted", s.id, s.user, s.ended, s.endReason)
		}
		if s.recording == "" {
			t.Errorf("session %s has no recording", s.id)
			continue
		}
		o := castOutput(t, filepath.Join(b.data, filepath.FromSlash(s.recording)))
		if strings.Contains(o, "marker-42") {
			shellOut = o
		}
	}
	if shellOut == "" {
		t.Fatal("no recording holds the output printed 2.5s before the kill")
	}
	r := b.reader()
	var recovered int
	// JSON true is 1 to SQLite's json_extract and 'true' to the
	// PostgreSQL store's (text): the cast compares either.
	if err := r.DB().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE type = 'session.end'
		AND CAST(json_extract(data, '$.recovered') AS TEXT) IN ('1', 'true')
		AND json_extract(data, '$.reason') = 'interrupted'`).Scan(&recovered); err != nil || recovered != 3 {
		t.Fatalf("%d recovered session.end events, %v; want 3", recovered, err)
	}
	var repaired int
	r.DB().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE json_extract(data, '$.recording_repaired') IS NOT NULL`).Scan(&repaired)
	t.Logf("%d recordings had a torn last line cut at recovery", repaired)
	b.auditVerify()

	// The grant outlived the crash: bob still gets in under it, and the
	// restarted gateway ends it, and the session under it, at its expiry.
	if out, errOut, code := b.ssh(b.bob, "root@web01", "echo", "resumed"); code != 0 || out != "resumed\n" {
		t.Fatalf("under the grant after the restart: %d %q %q", code, out, errOut)
	}
	_, errOut, code = b.ssh(b.bob, "root@web01", "sleep", "600")
	if code != 1 || !strings.Contains(errOut, "warden: grant "+grantID+" expired at") {
		t.Fatalf("session under the grant: %d %q", code, errOut)
	}
	b.waitFor("the grant ends as expired", func() bool {
		var reason, ended string
		err := r.DB().QueryRow(`SELECT COALESCE(end_reason, ''), COALESCE(ended_at, '') FROM grants WHERE id = ?`, grantID).Scan(&reason, &ended)
		if err != nil || reason == "" {
			return false
		}
		at, perr := time.Parse(time.RFC3339Nano, ended)
		if reason != "expired" || perr != nil || at.Before(expires) {
			t.Fatalf("grant ended %q at %s (expires %s)", reason, ended, expires)
		}
		return true
	})
	b.auditVerify()
}

// TestServeSIGTERMDrains stops `warden serve` with SIGTERM while two shells
// run through it: it stops accepting, tells both "warden: gateway
// restarting", lets the one whose user types exit end by itself, closes
// the other when shutdown_grace (here 3s) has passed, ends every row and
// exits 0.
func TestServeSIGTERMDrains(t *testing.T) {
	b := newFaultBed(t)
	b.writePolicy(b.policy("[ops]", "shutdown_grace: 3s"))
	b.start()
	leaver := b.alice.StartPTY(t, b.port, "root@web01", 80, 24)
	leaver.Send("echo ready-$((1+1))\r")
	leaver.Expect(t, `ready-2`, faultWait)
	stayer := b.erin.StartPTY(t, b.port, "root@web01", 80, 24)
	stayer.Send("echo ready-$((1+2))\r")
	stayer.Expect(t, `ready-3`, faultWait)

	if err := b.gw.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	leaver.Expect(t, `warden: gateway restarting; this session will be closed within 3s`, faultWait)
	stayer.Expect(t, `warden: gateway restarting; this session will be closed within 3s`, faultWait)
	// The listener is closed: a new connection is refused.
	if out, _, code := b.ssh(b.alice, "root@web01", "echo", "must-not-run"); code == 0 || strings.Contains(out, "must-not-run") {
		t.Fatalf("a new session ran while draining: %d %q", code, out)
	}
	leaver.Send("exit\r")
	if code, err := leaver.Wait(faultWait); err != nil || code != 0 {
		t.Fatalf("the shell that exited by itself: code %d, %v", code, err)
	}
	stayer.Expect(t, `warden: gateway restarting; session closed`, faultWait)
	if code, err := stayer.Wait(faultWait); err != nil || code != 1 {
		t.Fatalf("the shell closed by the drain: code %d, %v", code, err)
	}
	select {
	case <-b.gw.done:
	case <-time.After(faultWait):
		t.Fatalf("warden serve still running after the drain\n%s", b.gw.log.String())
	}
	if code := b.gw.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("warden serve exited %d after SIGTERM\n%s", code, b.gw.log.String())
	}
	want := map[string]string{"alice": "exit", "erin": "shutdown"}
	rows := b.sessions()
	for _, s := range rows {
		if !s.ended || s.endReason != want[s.user] {
			t.Errorf("session of %s: ended %v reason %q, want %q", s.user, s.ended, s.endReason, want[s.user])
		}
	}
	if len(rows) != 2 {
		t.Fatalf("%d session rows, want 2: %+v", len(rows), rows)
	}
	if _, err := os.Stat(filepath.Join(b.data, pidFile)); !os.IsNotExist(err) {
		t.Errorf("pid file left behind: %v", err)
	}
	b.auditVerify()
}

// TestServeReloadKeepsEntitledSessions reloads the policy of a running
// `warden serve` while alice and erin have shells open through it. The new
// policy takes erin out of the group that gave her access: her session ends
// at once with a line and an audit event, while alice's goes on and still
// answers. The new version is in policy_versions. An invalid file is refused
// by `warden reload` with every error at file:line, and a SIGHUP sent by
// hand with it keeps the policy in force, logs the errors with file:line
// and leaves a policy.reload_failed event.
func TestServeReloadKeepsEntitledSessions(t *testing.T) {
	b := newFaultBed(t)
	b.writePolicy(b.policy("[ops]", ""))
	b.start()
	kept := b.alice.StartPTY(t, b.port, "root@web01", 80, 24)
	kept.Send("echo ready-$((1+1))\r")
	kept.Expect(t, `ready-2`, faultWait)
	removed := b.erin.StartPTY(t, b.port, "root@web01", 80, 24)
	removed.Send("echo ready-$((1+2))\r")
	removed.Expect(t, `ready-3`, faultWait)

	v2 := b.policy("[]", "")
	b.writePolicy(v2)
	out, errOut, code := b.warden("reload", "-c", b.cfgPath)
	if code != 0 || !strings.HasPrefix(out, "policy ") || !strings.Contains(out, " in force (warden serve pid ") {
		t.Fatalf("warden reload: %d %q %q\n%s", code, out, errOut, b.gw.log.String())
	}
	removed.Expect(t, `warden: access removed by a policy change; session closed`, faultWait)
	if code, err := removed.Wait(faultWait); err != nil || code != 1 {
		t.Fatalf("erin's session: code %d, %v", code, err)
	}
	kept.Send("echo after-$((3+4))\r")
	kept.Expect(t, `after-7`, faultWait)

	r := b.reader()
	// The client sees its channel close before the gateway has sealed the
	// session's row (a store across the network shows it): wait for it.
	b.waitFor("erin's session row ended", func() bool {
		var ended bool
		return r.DB().QueryRow(`SELECT ended_at IS NOT NULL FROM sessions WHERE user = 'erin'`).Scan(&ended) == nil && ended
	})
	var erinEnd, event string
	if err := r.DB().QueryRow(`SELECT s.end_reason, json_extract(e.data, '$.reason') FROM sessions s
		JOIN audit_events e ON e.type = 'session.access_removed' AND e.subject = s.id WHERE s.user = 'erin'`).Scan(&erinEnd, &event); err != nil {
		t.Fatalf("erin's session row and event: %v", err)
	}
	if erinEnd != "policy_changed" || event == "" {
		t.Fatalf("erin's session ended %q, event reason %q", erinEnd, event)
	}
	var versions int
	if err := r.DB().QueryRow(`SELECT COUNT(*) FROM policy_versions WHERE sha256 = ?`, fmt.Sprintf("%x", sha256.Sum256([]byte(v2)))).Scan(&versions); err != nil || versions != 1 {
		t.Fatalf("the reloaded policy is not in policy_versions: %d %v", versions, err)
	}
	if _, errOut, code := b.ssh(b.erin, "root@web01", "true"); code != 1 || !strings.Contains(errOut, "warden: ") {
		t.Fatalf("erin after the reload: %d %q", code, errOut)
	}

	// An invalid file: line 3 is an unknown key.
	bad := strings.Replace(v2, "\n\ntenants:", "\ncolour: red\ntenants:", 1)
	if bad == v2 {
		t.Fatal("test policy layout changed")
	}
	b.writePolicy(bad)
	_, errOut, code = b.warden("reload", "-c", b.cfgPath)
	if code != 2 || !strings.Contains(errOut, b.cfgPath+`:3: unknown key "colour"`) || !strings.Contains(errOut, "the gateway was not signalled") {
		t.Fatalf("warden reload of an invalid file: %d %q", code, errOut)
	}
	if err := b.gw.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	b.waitFor("policy.reload_failed", func() bool {
		// The event's data is read whole and decoded here: the PostgreSQL
		// store's json_extract takes no array index ('$.errors[0]').
		var data []string
		rows, err := r.DB().Query(`SELECT data FROM audit_events WHERE type = 'policy.reload_failed'`)
		if err != nil {
			return false
		}
		defer rows.Close()
		for rows.Next() {
			var d string
			if rows.Scan(&d) == nil {
				data = append(data, d)
			}
		}
		if len(data) != 1 {
			return false
		}
		var ev struct{ Errors []string }
		return json.Unmarshal([]byte(data[0]), &ev) == nil && len(ev.Errors) > 0 &&
			strings.HasPrefix(ev.Errors[0], b.cfgPath+`:3: unknown key "colour"`)
	})
	if log := b.gw.log.String(); !strings.Contains(log, `policy reload refused; the policy in force is kept" error="`+b.cfgPath+`:3: unknown key \"colour\"`) {
		t.Fatalf("the gateway log does not name the error at file:line:\n%s", log)
	}
	if out, errOut, code := b.ssh(b.alice, "root@web01", "echo", "still-in"); code != 0 || out != "still-in\n" {
		t.Fatalf("alice after the refused reload: %d %q %q", code, out, errOut)
	}
	kept.Send("echo kept-$((4+4))\r")
	kept.Expect(t, `kept-8`, faultWait)
	b.auditVerify()
}
