package gateway_test

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/recorder"
)

// ptyShell opens a session with a pty whose modes are modes, starts cmd
// (a shell when empty), and returns its stdin and what it printed.
func ptyShell(t *testing.T, b *testbed, modes gossh.TerminalModes, cmd string) (io.WriteCloser, *safeBuffer, *gossh.Session) {
	t.Helper()
	c := b.goClientAs(b.alice, "root@web01")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.RequestPty("xterm", 30, 100, modes); err != nil {
		t.Fatal(err)
	}
	in, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := new(safeBuffer)
	s.Stdout, s.Stderr = out, out
	if cmd == "" {
		err = s.Shell()
	} else {
		err = s.Start(cmd)
	}
	if err != nil {
		t.Fatal(err)
	}
	return in, out, s
}

func waitOutput(t *testing.T, out *safeBuffer, re string) {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(expectWait)
	for !rx.MatchString(out.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in output %q", re, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitExists(path string, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if _, err := os.Stat(path); err == nil {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// TestAttackOverlongLineHidesWhatIsInsertedAtItsStart: on a terminal the
// rebuilder caps a line at recorder.MaxLineBytes and drops what is typed
// beyond it, but the host's readline keeps it all. The attack fills the
// line to the cap, goes home (Ctrl-A) and types the forbidden command
// there, slowly, as a person would: the host holds "rm -rf /…; touch …;
// : xxxx…" while the rebuilder still holds "xxxx…". Such a line can no
// longer be checked, so under deny rules it must be refused: Enter is not
// sent, the host's line is cleared, the user is told the line was too long
// to check, and the command log has it as denied with that rule.
func TestAttackOverlongLineHidesWhatIsInsertedAtItsStart(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	marker := filepath.Join(t.TempDir(), "denied")
	in, out, s := ptyShell(t, b, gossh.TerminalModes{}, "")
	_, _ = io.WriteString(in, "export PS1='P> '\r")
	waitOutput(t, out, `P> $`)
	filler := strings.Repeat("x", 64<<10)
	_, _ = io.WriteString(in, filler)
	for deadline := time.Now().Add(expectWait); strings.Count(out.String(), "x") < len(filler); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the host echoed %d of %d bytes", strings.Count(out.String(), "x"), len(filler))
		}
	}
	time.Sleep(time.Second)
	// Typed as a person types, each key's echo awaited.
	_, _ = io.WriteString(in, "\x01")
	time.Sleep(300 * time.Millisecond)
	for _, c := range "rm -rf /nothing-here; touch " + marker + "; : " {
		_, _ = io.WriteString(in, string(c))
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(time.Second)
	_, _ = io.WriteString(in, "\r")
	ran := waitExists(marker, 10*time.Second)
	_, _ = io.WriteString(in, "\x03")
	time.Sleep(300 * time.Millisecond)
	_, _ = io.WriteString(in, "exit\r")
	done := make(chan struct{})
	go func() { _ = s.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		o := out.String()
		t.Logf("the shell did not exit (ran %v); output ends %q", ran, o[max(0, len(o)-600):])
		s.Close()
	}
	var rows []string
	denied := false
	for _, c := range b.commands(b.lastSession("alice").ID) {
		rows = append(rows, fmt.Sprintf("%s %s %.60q (%d bytes) %s", c.Source, c.Action, c.Command, len(c.Command), c.Rule))
		if c.Action == "denied" && c.Rule == recorder.TooLongRule && strings.HasPrefix(c.Command, "xxx") {
			denied = true
		}
	}
	if ran {
		t.Fatalf("a line the rule ^rm -rf / forbids ran on the host; command log %q", rows)
	}
	if !denied || !strings.Contains(out.String(), "warden: line too long to check against the rules of role web-admin; not sent") {
		o := out.String()
		t.Fatalf("the overlong line was not refused as too long to check; command log %q; output ends %q", rows, o[max(0, len(o)-300):])
	}
}
