package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestDemoEndToEnd runs the README's first command the way a new user
// would: the demo prints ssh lines, real ssh follows them, and the session
// shows up in `warden sessions`, `warden commands` and `warden play`.
func TestDemoEndToEnd(t *testing.T) {
	ssh, err := exec.LookPath("ssh")
	if err != nil {
		t.Fatal("ssh not installed: apt-get install openssh-client")
	}
	dir := t.TempDir()
	cwdBefore := listDir(t, ".")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out lockedBuffer
	done := make(chan error, 1)
	go func() {
		done <- demo(ctx, &env{stdout: &out, stderr: io.Discard}, dir, 0, slog.New(slog.NewTextHandler(io.Discard, nil)))
	}()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(out.String(), "Press Ctrl-C") {
		select {
		case err := <-done:
			t.Fatalf("demo ended: %v\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("demo never became ready:\n%s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	m := regexp.MustCompile(`ssh -p (\d+) -i (\S+/keys/alice) .*-o UserKnownHostsFile=(\S+) (\S+@demo01)@localhost uname -a`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("demo did not print the ssh line to try:\n%s", out.String())
	}
	port, key, known, user := m[1], m[2], m[3], m[4]
	sshArgs := func(key, user string, args ...string) []string {
		return append([]string{"-F", "/dev/null", "-p", port, "-i", key, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
			"-o", "BatchMode=yes", "-o", "UserKnownHostsFile=" + known, "-o", "StrictHostKeyChecking=yes", user + "@localhost"}, args...)
	}
	got, err := exec.Command(ssh, sshArgs(key, user, "echo demo-$((6*7))")...).CombinedOutput()
	if err != nil || string(got) != "demo-42\n" {
		t.Fatalf("alice through the demo: %v %q", err, got)
	}
	bobKey := filepath.Join(filepath.Dir(key), "bob")
	got, err = exec.Command(ssh, sshArgs(bobKey, user, "true")...).CombinedOutput()
	if err == nil || !strings.Contains(string(got), "warden: bob may not log in") {
		t.Fatalf("bob should be refused: %v %q", err, got)
	}
	got, err = exec.Command(ssh, sshArgs(key, "alice", "whoami")...).CombinedOutput()
	if err != nil || !strings.Contains(string(got), "sysadmins") {
		t.Fatalf("command interface: %v %q", err, got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("demo: %v", err)
	}

	data := filepath.Join(dir, "data")
	sOut, errOut, code := run("sessions", "--data", data, "--json")
	var sessions []map[string]any
	if code != 0 || json.Unmarshal([]byte(sOut), &sessions) != nil || len(sessions) != 1 || sessions[0]["user"] != "alice" {
		t.Fatalf("sessions: %d %q %q", code, sOut, errOut)
	}
	cOut, _, code := run("commands", "--data", data, "--grep", "demo-")
	if code != 0 || !strings.Contains(cOut, "echo demo-$((6*7))") {
		t.Fatalf("commands: %q", cOut)
	}
	pOut, _, code := run("play", "--data", data, "--speed", "1000", sessions[0]["id"].(string))
	if code != 0 || !strings.Contains(pOut, "demo-42") {
		t.Fatalf("play: %q", pOut)
	}
	if after := listDir(t, "."); after != cwdBefore {
		t.Fatalf("demo wrote outside --dir: before %q after %q", cwdBefore, after)
	}
}

func listDir(t *testing.T, dir string) string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return strings.Join(names, ",")
}
