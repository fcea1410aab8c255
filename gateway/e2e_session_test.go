package gateway_test

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	gossh "golang.org/x/crypto/ssh"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/recorder"
)

const expectWait = 30 * time.Second

func TestInteractiveShellIsRecordedAndLogged(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	p := b.alice.StartPTY(t, b.port, "root@web01", 100, 30)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("echo hello-$((40+2))\r")
	p.Expect(t, `hello-42`, expectWait)
	p.Send("exit\r")
	if code, err := p.Wait(expectWait); err != nil || code != 0 {
		t.Fatalf("exit code %d, err %v; output %q", code, err, p.Output())
	}

	s := b.lastSession("alice")
	if s.Login != "root" || s.Host != "web01" || s.Tenant != "acme" || s.Role != "web-admin" {
		t.Fatalf("session row %+v", s)
	}
	if s.EndReason != "exit" || s.ExitStatus == nil || *s.ExitStatus != 0 {
		t.Fatalf("end %q exit %v", s.EndReason, s.ExitStatus)
	}
	// The certificate's key ID names the session and the user in the
	// host's own log.
	b.host.WaitLog(t, "warden:"+s.ID+":alice", expectWait)

	// Every typed line is in the command log, in order.
	var lines []string
	for _, c := range b.commands(s.ID) {
		if c.Source != "shell" || c.Action != "allowed" || c.User != "alice" || c.Login != "root" || c.Host != "web01" {
			t.Fatalf("command row %+v", c)
		}
		lines = append(lines, c.Command)
	}
	want := []string{"export PS1='PROMPT> '", "echo hello-$((40+2))", "exit"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Fatalf("commands %q, want %q", lines, want)
	}

	// The recording is complete, matches its digest, and has the header
	// the contract names.
	path := filepath.Join(b.data, filepath.FromSlash(s.RecordingPath))
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(raw)
	if hex.EncodeToString(sum[:]) != s.RecordingSHA256 {
		t.Fatalf("recording sha256 mismatch: row %s", s.RecordingSHA256)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Fatalf("recording mode %v", st.Mode().Perm())
	}
	if !strings.HasPrefix(s.RecordingPath, "recordings/"+s.StartedAt.UTC().Format("2006-01-02")+"/"+s.ID+".cast") {
		t.Fatalf("recording path %q", s.RecordingPath)
	}
	sc := bufio.NewScanner(strings.NewReader(string(raw)))
	sc.Buffer(nil, 1<<20)
	sc.Scan()
	h, err := recorder.ReadHeader(sc.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	if h.Width != 100 || h.Height != 30 || h.Title != "alice as root@web01" || h.Env["TERM"] == "" ||
		h.Warden.SessionID != s.ID || h.Warden.User != "alice" || h.Warden.Role != "web-admin" || h.Warden.Tenant != "acme" {
		t.Fatalf("header %+v", h)
	}
	var sawInput bool
	for sc.Scan() {
		ev, err := recorder.ParseEvent(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		sawInput = sawInput || ev.Code == "i"
	}
	if !sawInput {
		t.Fatal("recording.input is on but no input events were recorded")
	}

	// The real asciinema player plays it.
	out := asciinemaPlay(t, path)
	if !strings.Contains(out, "hello-42") {
		t.Fatalf("asciinema play output lacks the command output: %q", out)
	}
}

// asciinemaPlay plays a cast with the real asciinema CLI (Debian's 2.2),
// which prints the output when there is no terminal.
func asciinemaPlay(t *testing.T, path string) string {
	t.Helper()
	bin, err := exec.LookPath("asciinema")
	if err != nil {
		t.Fatal("asciinema not installed: apt-get install asciinema")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "play", "-s", "100", "-i", "0.1", path)
	cmd.Stdin = nil
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("asciinema play: %v: %s", err, out)
	}
	return string(out)
}

func TestExecPassesStdoutStderrAndExitStatus(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	out, errOut, code := b.run(b.alice, "root@web01", "echo to-stdout; echo to-stderr >&2; exit 7")
	if out != "to-stdout\n" || errOut != "to-stderr\n" || code != 7 {
		t.Fatalf("stdout %q stderr %q code %d", out, errOut, code)
	}
	s := b.lastSession("alice")
	if s.ExitStatus == nil || *s.ExitStatus != 7 || s.EndReason != "exit" {
		t.Fatalf("row %+v", s)
	}
	cmds := b.commands(s.ID)
	if len(cmds) != 1 || cmds[0].Source != "exec" || cmds[0].Command != "echo to-stdout; echo to-stderr >&2; exit 7" {
		t.Fatalf("commands %+v", cmds)
	}
	// Exec sessions are recorded too, stdout and stderr alike.
	raw, err := os.ReadFile(filepath.Join(b.data, s.RecordingPath))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), "to-stdout") || !strings.Contains(string(raw), "to-stderr") {
		t.Fatalf("exec recording lacks output: %s", raw)
	}
	var hdr map[string]any
	if err := json.Unmarshal([]byte(strings.SplitN(string(raw), "\n", 2)[0]), &hdr); err != nil {
		t.Fatal(err)
	}
	if hdr["command"] != "echo to-stdout; echo to-stderr >&2; exit 7" {
		t.Fatalf("header command %v", hdr["command"])
	}
}

func TestExecStdinReachesHostAndEOFIsHalfClose(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	cmd := b.alice.SSH(testCtx(t), b.port, "root@web01", "wc -c; echo after-eof")
	cmd.Stdin = strings.NewReader(strings.Repeat("x", 100000))
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	if strings.TrimSpace(string(out)) != "100000\nafter-eof" {
		t.Fatalf("out %q", out)
	}
	s := b.lastSession("alice")
	if s.BytesIn != 100000 {
		t.Fatalf("bytes_in %d", s.BytesIn)
	}
}

func TestWindowResizeReachesHost(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	p := b.alice.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("stty size\r")
	p.Expect(t, `24 80`, expectWait)
	p.Resize(132, 43)
	// Give ssh a moment to notice SIGWINCH by asking until the size shows.
	deadline := time.Now().Add(expectWait)
	for !strings.Contains(p.Output(), "43 132") {
		if time.Now().After(deadline) {
			t.Fatalf("new size never reached the host: %q", p.Output())
		}
		p.Send("stty size\r")
		time.Sleep(200 * time.Millisecond)
	}
	p.Send("exit\r")
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	s := b.lastSession("alice")
	raw, err := os.ReadFile(filepath.Join(b.data, s.RecordingPath))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(raw), `"r", "132x43"`) && !strings.Contains(string(raw), `"r","132x43"`) {
		t.Fatalf("no resize event in recording")
	}
}

func TestFullScreenProgramExitsCleanly(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	p := b.alice.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("vi -u NONE /tmp/warden-fullscreen-test\r")
	p.Expect(t, `\x1b\[\?1049h`, expectWait) // vi entered the alternate screen
	p.Send("iabc-typed-in-vi\x1b:q!\r")
	p.Expect(t, `\x1b\[\?1049l`, expectWait) // and left it
	p.Send("echo back-at-shell\r")
	p.Expect(t, `back-at-shell`, expectWait)
	p.Send("exit\r")
	if code, err := p.Wait(expectWait); err != nil || code != 0 {
		t.Fatalf("code %d err %v", code, err)
	}
	s := b.lastSession("alice")
	for _, c := range b.commands(s.ID) {
		if strings.Contains(c.Command, "abc-typed-in-vi") || strings.Contains(c.Command, ":q!") {
			t.Fatalf("keys typed inside vi were logged as a shell command: %q", c.Command)
		}
	}
	out := asciinemaPlay(t, filepath.Join(b.data, s.RecordingPath))
	if !strings.Contains(out, "back-at-shell") {
		t.Fatalf("playback lacks output after vi")
	}
}

func TestBuiltinCertificateFields(t *testing.T) {
	checkSessionCert(t, newTestbed(t, bedOptions{}))
}

// checkSessionCert checks the certificate of an exec session (no pty): the
// login as its only principal, key ID warden:SESSION:alice, no extensions
// (no pty asked for, and never forwarding), lifetime cert_ttl (2m) plus at
// most a minute of backdating for clock skew, and a fresh key every time.
func checkSessionCert(t *testing.T, b *testbed) {
	t.Helper()
	c1 := b.sessionCert()
	s := b.lastSession("alice")
	if len(c1.ValidPrincipals) != 1 || c1.ValidPrincipals[0] != "root" {
		t.Errorf("principals %v", c1.ValidPrincipals)
	}
	if c1.KeyId != "warden:"+s.ID+":alice" {
		t.Errorf("key id %q, want warden:%s:alice", c1.KeyId, s.ID)
	}
	if c1.CertType != gossh.UserCert {
		t.Errorf("cert type %d", c1.CertType)
	}
	if len(c1.Extensions) != 0 || len(c1.CriticalOptions) != 0 {
		t.Errorf("extensions %v critical %v", c1.Extensions, c1.CriticalOptions)
	}
	life := time.Duration(c1.ValidBefore-c1.ValidAfter) * time.Second
	if life < 2*time.Minute || life > 3*time.Minute {
		t.Errorf("lifetime %v, want cert_ttl 2m plus backdating", life)
	}
	if until := time.Until(time.Unix(int64(c1.ValidBefore), 0)); until > 2*time.Minute+5*time.Second {
		t.Errorf("certificate valid for %v more", until)
	}
	c2 := b.sessionCert()
	if string(c1.Key.Marshal()) == string(c2.Key.Marshal()) || c1.Serial == c2.Serial {
		t.Error("two sessions shared a key or a serial")
	}
}
