package gateway_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/sshtest"
)

// These tests try to get past the file-transfer logging: a shell behind a
// program named scp, bytes that are not the protocol a session claims, and
// file transfer on a role that may not use it.

// impostor writes a program named scp into a new directory: it answers
// the sink's opening \0 as real scp would, then runs a shell on the rest of
// its input. With hostPATH, sshd puts that directory first in PATH, so even
// the bare `scp` of a genuine transfer command is this program: what a
// user who had changed the login's PATH or shell startup files would get.
func impostor(t *testing.T, shell string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "warden-impostor-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	script := "#!/bin/sh\n" + shell + "\n"
	if err := os.WriteFile(filepath.Join(dir, "scp"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func hostPATH(dir string) string { return "SetEnv PATH=" + dir + ":/usr/bin:/bin\n" }

// sessionsOf lists the sessions of user, newest first, once the newest
// has ended.
func (b *testbed) sessionsOf(user string) []audit.Session {
	b.t.Helper()
	b.lastSession(user)
	list, err := b.store.Sessions(context.Background(), audit.SessionFilter{User: user})
	if err != nil {
		b.t.Fatal(err)
	}
	return list
}

// castStreams returns the concatenated input and output events of a cast,
// so that checks do not depend on how the bytes were cut into chunks.
func castStreams(t *testing.T, cast string) (in, out string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(cast), "\n")
	var ib, ob strings.Builder
	for _, l := range lines[1:] {
		var ev []any
		if err := json.Unmarshal([]byte(l), &ev); err != nil || len(ev) != 3 {
			t.Fatalf("bad cast event %q: %v", l, err)
		}
		switch ev[1] {
		case "i":
			ib.WriteString(ev[2].(string))
		case "o":
			ob.WriteString(ev[2].(string))
		}
	}
	return ib.String(), ob.String()
}

// castOf reads a session's recording.
func (b *testbed) castOf(rel string) string {
	b.t.Helper()
	if rel == "" {
		b.t.Fatal("the session has no recording")
	}
	raw, err := os.ReadFile(filepath.Join(b.data, rel))
	if err != nil {
		b.t.Fatal(err)
	}
	return string(raw)
}

// (a) A program of the user's choosing that is named scp is an ordinary
// command: recorded as a terminal and logged as exec.
func TestProgramNamedSCPIsRecordedAsACommand(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	dir := impostor(t, "exec sh -i")
	cmd := b.alice.SSH(testCtx(t), b.port, "root@web01", dir+"/scp -t x")
	cmd.Stdin = strings.NewReader("echo escaped-$((6*7))\nexit\n")
	out, err := cmd.Output()
	if err != nil || !strings.Contains(string(out), "escaped-42") {
		t.Fatalf("err %v out %q", err, out)
	}
	s := b.lastSession("alice")
	cast := b.castOf(s.RecordingPath)
	if in, out := castStreams(t, cast); !strings.Contains(out, "escaped-42") || !strings.Contains(in, `echo escaped-$((6*7))`) {
		t.Fatalf("the cast lacks the shell's input or output:\n%s", cast)
	}
	if got := b.commandTexts("exec"); len(got) != 1 || got[0] != dir+"/scp -t x" {
		t.Fatalf("exec log %q", got)
	}
	if got := b.commandTexts("scp"); len(got) != 0 {
		t.Fatalf("logged as a transfer: %q", got)
	}
}

// goSession starts cmd (an exec) or the sftp subsystem (cmd "") in a raw
// x/crypto session of alice. stderr returns what the session wrote there,
// once its channel has closed.
func (b *testbed) goSession(cmd string) (s *gossh.Session, in io.WriteCloser, out io.Reader, stderr func() string) {
	b.t.Helper()
	c, _ := b.goClient("root@web01")
	s, err := c.NewSession()
	if err != nil {
		b.t.Fatal(err)
	}
	if in, err = s.StdinPipe(); err != nil {
		b.t.Fatal(err)
	}
	if out, err = s.StdoutPipe(); err != nil {
		b.t.Fatal(err)
	}
	// x/crypto copies stderr only for sessions started with Start, not
	// for subsystems, so it is read here for both.
	errPipe, err := s.StderrPipe()
	if err != nil {
		b.t.Fatal(err)
	}
	var errb bytes.Buffer
	errDone := make(chan struct{})
	go func() { io.Copy(&errb, errPipe); close(errDone) }()
	if cmd == "" {
		err = s.RequestSubsystem("sftp")
	} else {
		err = s.Start(cmd)
	}
	if err != nil {
		b.t.Fatal(err)
	}
	return s, in, out, func() string {
		select {
		case <-errDone:
		case <-time.After(30 * time.Second):
			b.t.Fatal("stderr did not close")
		}
		return errb.String()
	}
}

// waitExit waits for an exec's end and returns its exit status.
func waitExit(t *testing.T, s *gossh.Session) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		if ee, ok := err.(*gossh.ExitError); ok {
			return ee.ExitStatus()
		}
		if err != nil {
			t.Fatalf("wait: %v", err)
		}
		return 0
	case <-time.After(30 * time.Second):
		t.Fatal("session did not end")
	}
	return 0
}

func readByte(t *testing.T, r io.Reader) byte {
	t.Helper()
	var b [1]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		t.Fatalf("read: %v", err)
	}
	return b[0]
}

// (b) A transfer session whose client sends something that is not scp is
// ended before those bytes reach the host, even when the host's scp is a
// shell in disguise.
func TestSCPSessionThatIsNotSCPIsTerminated(t *testing.T) {
	tests := []struct {
		name string
		send func(marker string) string
	}{
		{"a shell command", func(m string) string { return "touch " + m + "\n" }},
		{"a command dressed as times", func(m string) string { return "T1 0 1 0; touch " + m + "\n" }},
		{"a file body sent before the sink accepted the file", func(m string) string {
			c := "touch " + m + "\n"
			return fmt.Sprintf("C0644 %d x\n%s", len(c), c)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newTestbed(t, bedOptions{hostExtra: hostPATH(impostor(t, `printf '\000'; exec sh`))})
			marker := filepath.Join(remoteDir(t), "pwned")
			s, in, out, stderr := b.goSession("scp -t /tmp")
			if got := readByte(t, out); got != 0 {
				t.Fatalf("opening answer %#x", got)
			}
			io.WriteString(in, tt.send(marker))
			// Whatever follows must not reach the host either.
			io.WriteString(in, "touch "+marker+"\n")
			if code := waitExit(t, s); code != 1 {
				t.Fatalf("exit %d", code)
			}
			if e := stderr(); !strings.Contains(e, "warden: the scp stream did not parse as the scp protocol; session terminated") {
				t.Fatalf("stderr %q", e)
			}
			sess := b.lastSession("alice")
			if sess.EndReason != "recording_failed" {
				t.Fatalf("end reason %q", sess.EndReason)
			}
			b.waitEvent("recording.failed", sess.ID)
			if _, err := os.Stat(marker); err == nil {
				t.Fatal("the command reached the host's shell")
			}
			if got := b.commandTexts("scp"); len(got) != 1 || !strings.Contains(got[0], "session terminated") {
				t.Fatalf("scp log %q", got)
			}
			// What was refused is kept for the auditor.
			// (x/crypto sends each write as one packet, so the refused
			// chunk holds the whole line.)
			if in, _ := castStreams(t, b.castOf(sess.RecordingPath)); !strings.Contains(in, "touch "+marker) {
				t.Fatalf("the cast lacks the refused bytes: %q", in)
			}
		})
	}
}

// (g) Under on_failure: continue the session goes on, and everything from
// the failure on is recorded raw in a cast.
func TestSCPSessionThatIsNotSCPIsRecordedRawUnderContinue(t *testing.T) {
	b := newTestbed(t, bedOptions{
		hostExtra: hostPATH(impostor(t, `printf '\000'; exec sh`)),
		recording: "recording:\n  input: false\n  on_failure: continue\n",
	})
	s, in, out, _ := b.goSession("scp -t /tmp")
	if got := readByte(t, out); got != 0 {
		t.Fatalf("opening answer %#x", got)
	}
	io.WriteString(in, "echo raw-$((6*7))\nexit\n")
	got, _ := io.ReadAll(out)
	if code := waitExit(t, s); code != 0 || !strings.Contains(string(got), "raw-42") {
		t.Fatalf("exit %d out %q", code, got)
	}
	sess := b.lastSession("alice")
	cast := b.castOf(sess.RecordingPath)
	if in, out := castStreams(t, cast); !strings.Contains(in, "echo raw-$((6*7))") || !strings.Contains(out, "raw-42") {
		t.Fatalf("the raw cast lacks the bytes:\n%s", cast)
	}
	if sess.RecordingSHA256 == "" {
		t.Fatal("no digest for the raw cast")
	}
	if got := b.commandTexts("scp"); len(got) != 1 || !strings.Contains(got[0], "recorded raw") {
		t.Fatalf("scp log %q", got)
	}
	ev := b.waitEvent("recording.failed", sess.ID)
	if ev.Data["on_failure"] != "continue" {
		t.Fatalf("event %v", ev.Data)
	}
}

// transferRefused checks that scp (over SFTP and legacy) and sftp are
// refused for c (bob) with the one line and an audit event, and that a command
// still runs.
func transferRefused(t *testing.T, b *testbed, c *sshtest.Client, role string) {
	t.Helper()
	local, remote := t.TempDir(), remoteDir(t)
	src, _ := randomFile(t, local, "f.bin", 1000)
	want := "warden: file transfer is not allowed for role " + role
	for name, args := range map[string][]string{
		"scp":    {src, sshtest.Remote("root@web01", remote+"/")},
		"scp -O": {"-O", src, sshtest.Remote("root@web01", remote+"/")},
	} {
		out, err := c.SCP(testCtx(t), b.port, args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), want) {
			t.Fatalf("%s: err %v out %q", name, err, out)
		}
	}
	out, err := c.SFTP(testCtx(t), b.port, "root@web01", "put "+src+" "+remote+"/f.bin\n").CombinedOutput()
	if err == nil || !strings.Contains(string(out), want) {
		t.Fatalf("sftp: err %v out %q", err, out)
	}
	if _, err := os.Stat(filepath.Join(remote, "f.bin")); err == nil {
		t.Fatal("a file was transferred")
	}
	n := 0
	for _, e := range b.events("session.refused") {
		if strings.Contains(fmt.Sprint(e.Data), "file transfer is not allowed for role "+role) {
			n++
		}
	}
	if n != 3 {
		t.Fatalf("%d refusal events, want 3", n)
	}
	// A command still runs, and data moved through its input is recorded
	// even though the testbed's recording.input is off.
	cmd := c.SSH(testCtx(t), b.port, "root@web01", "cat > "+remote+"/via-cat && echo still-a-shell")
	cmd.Stdin = strings.NewReader("moved-by-cat\n")
	if out, err := cmd.Output(); err != nil || string(out) != "still-a-shell\n" {
		t.Fatalf("command: %v %q", err, out)
	}
	rec := b.castOf(b.sessionsOf("bob")[0].RecordingPath)
	if in, _ := castStreams(t, rec); !strings.Contains(in, "moved-by-cat") {
		t.Fatalf("the command's input is not in its recording:\n%s", rec)
	}
}

// (e) A role with file_transfer: false may not use scp, scp -O or sftp.
func TestFileTransferFalseRefusesEveryTransfer(t *testing.T) {
	b := newTestbed(t, bedOptions{recording: "recording:\n  input: false\n  on_failure: terminate\n", extraRoles: `  - name: helpdesk-web
    tenant: acme
    hosts: {labels: {tier: web}}
    logins: [root]
    members: [helpdesk]
    file_transfer: false
`})
	transferRefused(t, b, b.bob, "helpdesk-web")
}

// (f) Break-glass roles have no file transfer unless the policy says so.
func TestBreakGlassHasNoFileTransferByDefault(t *testing.T) {
	b := newTestbed(t, bedOptions{extraRoles: `  - name: break-glass
    tenant: acme
    hosts: {names: [web01]}
    logins: [root]
    break_glass: true
    eligible: [helpdesk]
    approvers: [security, management]
`})
	if !b.cfg.Role("prod-root").FileTransfer || b.cfg.Role("break-glass").FileTransfer {
		t.Fatal("file_transfer defaults are wrong")
	}
	out, errOut, code := b.run(b.bob, "gw", "request", "break-glass", "--for", "10m", "--reason", "'INC-2 outage'")
	if code != 0 {
		t.Fatalf("request: %q", errOut)
	}
	id := strings.Fields(out[strings.Index(out, "request ")+len("request "):])[0]
	for _, approver := range []*sshtest.Client{b.carol, b.dave} {
		if _, errOut, code := b.run(approver, "gw", "approve", id); code != 0 {
			t.Fatalf("approve: %q", errOut)
		}
	}
	transferRefused(t, b, b.bob, "break-glass")
}

// A transfer runs without the client's environment beyond the locale: a
// variable such as BASH_ENV would run code under the name of scp on a
// host whose AcceptEnv lets it through.
func TestTransferGetsOnlyLocaleVariables(t *testing.T) {
	probe := filepath.Join(remoteDir(t), "env")
	dir := impostor(t, `printf '\000'; printf '%s|%s' "$WARDEN_PROBE" "$LC_WARDEN" > `+probe+`; exec cat >/dev/null`)
	b := newTestbed(t, bedOptions{hostExtra: "AcceptEnv *\n" + hostPATH(dir)})
	c, _ := b.goClient("root@web01")
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	go gossh.DiscardRequests(reqs)
	for _, kv := range [][2]string{{"WARDEN_PROBE", "leaked"}, {"LC_WARDEN", "kept"}} {
		if _, err := ch.SendRequest("env", false, gossh.Marshal(struct{ Name, Value string }{kv[0], kv[1]})); err != nil {
			t.Fatal(err)
		}
	}
	if ok, err := ch.SendRequest("exec", true, gossh.Marshal(struct{ Value string }{"scp -t /tmp"})); err != nil || !ok {
		t.Fatalf("exec: %v %v", ok, err)
	}
	if got := readByte(t, ch); got != 0 {
		t.Fatalf("opening answer %#x", got)
	}
	ch.CloseWrite()
	io.Copy(io.Discard, ch)
	ch.Close()
	b.lastSession("alice")
	got, err := os.ReadFile(probe)
	if err != nil || string(got) != "|kept" {
		t.Fatalf("environment seen by the host's scp: %q (%v)", got, err)
	}
}

// The lock-step the scp parser now demands is what OpenSSH's scp keeps:
// a recursive legacy copy with times, both ways, passes and is logged.
func TestLegacySCPRecursiveWithTimesPasses(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	local, remote := t.TempDir(), remoteDir(t)
	tree := filepath.Join(local, "tree")
	if err := os.MkdirAll(filepath.Join(tree, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, a := randomFile(t, tree, "a.bin", 70000)
	_, c := randomFile(t, filepath.Join(tree, "sub"), "c.bin", 3)
	b.scp("-O", "-r", "-p", tree, sshtest.Remote("root@web01", remote+"/"))
	sameFile(t, filepath.Join(remote, "tree", "a.bin"), a)
	sameFile(t, filepath.Join(remote, "tree", "sub", "c.bin"), c)
	got := b.commandTexts("scp")
	for _, w := range []string{"mkdir " + remote + "/tree", "mkdir " + remote + "/tree/sub",
		fmt.Sprintf("put %s/tree/a.bin (70000 bytes)", remote), fmt.Sprintf("put %s/tree/sub/c.bin (3 bytes)", remote)} {
		if !contains(got, w) {
			t.Fatalf("scp log %q lacks %q", got, w)
		}
	}
	back := filepath.Join(local, "back")
	b.scp("-O", "-r", "-p", sshtest.Remote("root@web01", remote+"/tree"), back)
	sameFile(t, filepath.Join(back, "sub", "c.bin"), c)
	if got := b.commandTexts("scp"); !contains(got, fmt.Sprintf("get %s/tree/a.bin (70000 bytes)", remote)) {
		t.Fatalf("scp log %q", got)
	}
	if s := b.lastSession("alice"); s.EndReason == "recording_failed" || s.RecordingPath != "" {
		t.Fatalf("session %+v", s)
	}
}
