package gateway_test

import (
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// The terminal modes of a pty-req (RFC 4254 §8) are the client's choice:
// an OpenSSH client copies its local `stty` settings. They choose which
// keys the host's tty driver, and readline (bind-tty-special-chars, on by
// default), take for erase, kill, word erase and end-of-file. The line
// rebuilder assumes DEL/^H, ^U, ^W and ^D, so a client that moved those
// roles to ordinary letters would make the host edit, or run, a line
// differently from the one the deny rules are asked about. The gateway
// sends the host its own modes (ttymodes.go); these tests try the client's.

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

// leaveShell drops the line being typed (Ctrl-C), types exit, and waits up
// to d for the session to end (waitEnded).
func leaveShell(in io.Writer, s *gossh.Session, d time.Duration) bool {
	_, _ = io.WriteString(in, "\x03")
	time.Sleep(300 * time.Millisecond)
	_, _ = io.WriteString(in, "exit\r")
	return waitEnded(s, d)
}

// waitEnded waits up to d for s to end. If it does not, it closes s (so
// the waiting goroutine ends too) and reports false.
func waitEnded(s *gossh.Session, d time.Duration) bool {
	done := make(chan struct{})
	go func() { _ = s.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(d):
		s.Close()
		return false
	}
}

// TestAttackPTYModesMoveKillToALetter: VKILL set to 'Z' in the pty-req.
// Were it passed on, bash's readline would bind Z to unix-line-discard,
// and "# okZrm -rf /...; touch M" would run "rm -rf /...; touch M", while
// the guard reads a comment. Without the kill, the host too reads a
// comment, so the marker appears only if Z killed.
func TestAttackPTYModesMoveKillToALetter(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	marker := filepath.Join(t.TempDir(), "denied")
	in, out, _ := ptyShell(t, b, gossh.TerminalModes{gossh.VKILL: 'Z'}, "")
	_, _ = io.WriteString(in, "export PS1='P> '\r")
	waitOutput(t, out, `P> $`)
	// Typed in one go, as a paste without brackets (or a script) sends it.
	_, _ = io.WriteString(in, "# okZrm -rf /nothing-here; touch "+marker+"\r")
	ran := waitExists(marker, 5*time.Second)
	_, _ = io.WriteString(in, "exit\r")
	time.Sleep(500 * time.Millisecond)
	rows := shellRows(b.commands(b.lastSession("alice").ID))
	if ran {
		t.Fatalf("a line the rule ^rm -rf / forbids ran on the host (pty-req VKILL='Z'); command log %q", rows)
	}
}

// TestAttackPTYModesMoveEOFToALetter: VEOF set to 'Z' in the pty-req, and
// `sh` (dash, which reads the tty in canonical mode). Were it passed on,
// "Z" would hand the line to dash without a newline, a second "Z" would
// end the input, and dash would run the line: the Ctrl-D path the guard
// watches (LineBuilder.ctrlD), with a letter. Typed slowly, each key's
// echo awaited: no Enter comes, so no line is submitted and no rule asked.
func TestAttackPTYModesMoveEOFToALetter(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	marker := filepath.Join(t.TempDir(), "denied")
	in, out, s := ptyShell(t, b, gossh.TerminalModes{gossh.VEOF: 'Z'}, "sh")
	_, _ = io.WriteString(in, "PS1='SH> '; export PS1\r")
	waitOutput(t, out, `SH> $`)
	_, _ = io.WriteString(in, "rm -rf /nothing-here; touch "+marker)
	waitOutput(t, out, regexp.QuoteMeta(marker)+`$`)
	_, _ = io.WriteString(in, "Z")
	time.Sleep(300 * time.Millisecond)
	_, _ = io.WriteString(in, "Z")
	ran := waitExists(marker, 5*time.Second)
	if !leaveShell(in, s, 5*time.Second) {
		t.Logf("sh did not exit; output %q", out.String())
	}
	time.Sleep(500 * time.Millisecond)
	rows := shellRows(b.commands(b.lastSession("alice").ID))
	if ran {
		t.Fatalf("a line the rule ^rm -rf / forbids ran on the host (pty-req VEOF='Z'); command log %q", rows)
	}
}

// TestAttackPTYModesEchoOffBlindsTheCommandLog: ECHO off in the pty-req,
// and `sh` (dash reads the tty in canonical mode, the tty driver echoes).
// Were it passed on, nothing typed would be echoed, every command line
// would read as a password to the rebuilder, and the command log would
// hold "(input not echoed)" in place of the commands that ran. (bash's
// readline echoes whatever the tty's mode.)
func TestAttackPTYModesEchoOffBlindsTheCommandLog(t *testing.T) {
	// recording.input: false, for a role with file transfer (web-admin): the
	// recording then holds only what the host displayed.
	b := newTestbed(t, bedOptions{recording: "recording:\n  input: false\n  on_failure: terminate\n"})
	in, out, s := ptyShell(t, b, gossh.TerminalModes{gossh.ECHO: 0}, "sh")
	_, _ = io.WriteString(in, "PS1='SH> '; export PS1\r")
	waitOutput(t, out, `SH> $`)
	_, _ = io.WriteString(in, "echo marker-$((6*7))")
	time.Sleep(500 * time.Millisecond)
	_, _ = io.WriteString(in, "\r")
	waitOutput(t, out, `marker-42`)
	_, _ = io.WriteString(in, "exit\r")
	_ = s.Wait()
	sess := b.lastSession("alice")
	rows := shellRows(b.commands(sess.ID))
	if !containsRow(rows, "shell allowed echo marker-$((6*7))") {
		t.Errorf("the command that ran is not in the command log: %q; output %q", rows, out.String())
	}
	cast, err := os.ReadFile(filepath.Join(b.data, sess.RecordingPath))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(cast), "6*7") {
		t.Errorf("the command that ran is nowhere in the recording either:\n%s", cast)
	}
}
