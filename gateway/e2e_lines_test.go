package gateway_test

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
)

// The command log and the deny rules see every line a shell reads: with or
// without a terminal, whatever key submitted it, whatever the client
// pretends about pastes (issue 8, finding 4).

// shellRows returns the session's command rows as "source action text",
// with the rule of denied ones.
func shellRows(cmds []audit.Command) []string {
	var rows []string
	for _, c := range cmds {
		s := c.Source + " " + c.Action + " " + c.Command
		if c.Rule != "" {
			s += " | " + c.Rule
		}
		rows = append(rows, s)
	}
	return rows
}

func waitFile(t *testing.T, path string) {
	t.Helper()
	deadline := time.Now().Add(expectWait)
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never appeared", path)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func assertAbsent(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Stat(p); err == nil {
			t.Errorf("%s exists: a line that must not run ran on the host", filepath.Base(p))
		}
	}
}

func TestPipedShellLinesAreLogged(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	cmd := b.sshWith(testCtx(t), b.alice, []string{"-T"}, "root@web01")
	// The last line has no LF: the shell still runs it at end of input.
	cmd.Stdin = strings.NewReader("echo one\nexpr 6 \\* 7\necho a \\\nb\n\necho last")
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		t.Fatalf("ssh -T: %v, stderr %q", err, errb.String())
	}
	if out.String() != "one\n42\na b\nlast\n" {
		t.Fatalf("output %q", out.String())
	}
	s := b.lastSession("alice")
	got := shellRows(b.commands(s.ID))
	want := []string{"shell allowed echo one", "shell allowed expr 6 \\* 7", "shell allowed echo a \\\nb", "shell allowed echo last"}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("command log %q, want %q", got, want)
	}
}

// TestPipedShellDeniedLineEndsSession feeds ssh -T line by line: the line
// before the denied one runs, the denied one and the one after do not, and
// the session ends with one line that says why.
func TestPipedShellDeniedLineEndsSession(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	dir := t.TempDir()
	before, denied, after := filepath.Join(dir, "before"), filepath.Join(dir, "denied"), filepath.Join(dir, "after")
	cmd := b.sshWith(testCtx(t), b.alice, []string{"-T"}, "root@web01")
	feed, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out, errb safeBuffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(feed, "touch %s\n", before)
	waitFile(t, before)
	// Typed in two writes, so the host would have had the start of the
	// line already if the gateway did not hold it back.
	fmt.Fprintf(feed, "rm -rf /nothing-here; touch ")
	time.Sleep(100 * time.Millisecond)
	fmt.Fprintf(feed, "%s\ntouch %s\n", denied, after)
	err = cmd.Wait()
	if code := exitCode(err); code != 1 {
		t.Fatalf("exit %d (%v), stderr %q", code, err, errb.String())
	}
	if want := "warden: command denied by rule ^rm -rf / of role web-admin; not sent, session ended\n"; !strings.HasSuffix(errb.String(), want) {
		t.Fatalf("stderr %q, want it to end with %q", errb.String(), want)
	}
	assertAbsent(t, denied, after)
	s := b.lastSession("alice")
	if s.EndReason != "refused" {
		t.Fatalf("end reason %q", s.EndReason)
	}
	got := shellRows(b.commands(s.ID))
	want := []string{"shell allowed touch " + before, "shell denied rm -rf /nothing-here; touch " + denied + " | ^rm -rf /"}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("command log %q, want %q", got, want)
	}
	b.waitEvent("command.denied", s.ID)
}

// TestPipedShellDeniedLastLineWithoutLF: a shell runs a last line that has
// no LF when its input ends, so that line is checked before the EOF.
func TestPipedShellDeniedLastLineWithoutLF(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	marker := filepath.Join(t.TempDir(), "denied")
	cmd := b.sshWith(testCtx(t), b.alice, []string{"-T"}, "root@web01")
	cmd.Stdin = strings.NewReader("echo first\nshutdown -h now || touch " + marker)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	if code := exitCode(cmd.Run()); code != 1 || !strings.Contains(errb.String(), "warden: command denied by rule ^shutdown") {
		t.Fatalf("exit %d, stderr %q", code, errb.String())
	}
	assertAbsent(t, marker)
	got := shellRows(b.commands(b.lastSession("alice").ID))
	if len(got) != 2 || got[0] != "shell allowed echo first" || !strings.HasPrefix(got[1], "shell denied shutdown -h now") {
		t.Fatalf("command log %q", got)
	}
}

// TestExecOfAShellReadsLines: `ssh host sh` and `ssh host bash -s` are a
// shell without a terminal too.
func TestExecOfAShellReadsLines(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	for _, shell := range [][]string{{"sh"}, {"bash", "-s"}, {"exec $SHELL"}} {
		t.Run(strings.Join(shell, " "), func(t *testing.T) {
			marker := filepath.Join(t.TempDir(), "denied")
			cmd := b.alice.SSH(testCtx(t), b.port, "root@web01", shell...)
			cmd.Stdin = strings.NewReader("echo via-stdin\nrm -rf /nothing-here; touch " + marker + "\n")
			var out, errb strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errb
			if code := exitCode(cmd.Run()); code != 1 || !strings.Contains(errb.String(), "command denied by rule ^rm -rf /") {
				t.Fatalf("exit %d, stdout %q, stderr %q", code, out.String(), errb.String())
			}
			assertAbsent(t, marker)
			got := shellRows(b.commands(b.lastSession("alice").ID))
			want := []string{"exec allowed " + strings.Join(shell, " "), "shell allowed echo via-stdin",
				"shell denied rm -rf /nothing-here; touch " + marker + " | ^rm -rf /"}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
				t.Fatalf("command log %q, want %q", got, want)
			}
		})
	}
}

// TestExecWithDataInputIsNotLines: the input of an ordinary command is
// data, not command lines, even when it looks like a denied one.
func TestExecWithDataInputIsNotLines(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	target := filepath.Join(t.TempDir(), "notes")
	cmd := b.alice.SSH(testCtx(t), b.port, "root@web01", "cat > "+target)
	cmd.Stdin = strings.NewReader("shutdown -h now\nrm -rf /\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if data, _ := os.ReadFile(target); string(data) != "shutdown -h now\nrm -rf /\n" {
		t.Fatalf("file %q", data)
	}
	if got := shellRows(b.commands(b.lastSession("alice").ID)); len(got) != 1 || got[0] != "exec allowed cat > "+target {
		t.Fatalf("command log %q", got)
	}
}

// TestClientPasteStartOnSh: sh never turns bracketed paste on, so a
// client-sent ESC[200~ must not switch the command log off.
func TestClientPasteStartOnSh(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	victim := filepath.Join(t.TempDir(), "victim")
	p := b.alice.StartPTY(t, b.port, "root@web01", 100, 30, "sh")
	p.Send("PS1='SH> '; export PS1\r")
	p.Expect(t, `SH> $`, expectWait)
	p.Send("\x1b[200~\r")
	p.Expect(t, `SH> $`, expectWait)
	// Typed with its echo waited for, as a person types.
	p.Send("echo marker-$((6*7))")
	p.Expect(t, `echo marker-\$\(\(6\*7\)\)$`, expectWait)
	p.Send("\r")
	p.Expect(t, `marker-42`, expectWait)
	p.Send("rm -rf /nothing-here; touch " + victim)
	p.Expect(t, `victim$`, expectWait)
	p.Send("\r")
	p.Expect(t, `warden: command denied by rule \^rm -rf / of role web-admin; not sent`, expectWait)
	p.Send("exit\r")
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	assertAbsent(t, victim)
	got := shellRows(b.commands(b.lastSession("alice").ID))
	if !containsRow(got, "shell allowed echo marker-$((6*7))") || !containsRow(got, "shell denied rm -rf /nothing-here; touch "+victim+" | ^rm -rf /") {
		t.Fatalf("command log %q", got)
	}
}

// TestCtrlOSubmitsInBash: bash's operate-and-get-next runs a line without
// CR or LF; it is logged, and a denied one does not run.
func TestCtrlOSubmitsInBash(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	victim := filepath.Join(t.TempDir(), "victim")
	p := b.alice.StartPTY(t, b.port, "root@web01", 100, 30, "bash", "--norc", "-i")
	p.Send("PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("echo ctrl-o-$((2+3))\x0f")
	p.Expect(t, `ctrl-o-5`, expectWait)
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("rm -rf /nothing-here; touch " + victim + "\x0f")
	p.Expect(t, `warden: command denied by rule \^rm -rf / of role web-admin; not sent`, expectWait)
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("echo still-$((1+1))\r")
	p.Expect(t, `still-2`, expectWait)
	p.Send("exit\r")
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	assertAbsent(t, victim)
	got := shellRows(b.commands(b.lastSession("alice").ID))
	want := []string{"shell allowed echo ctrl-o-$((2+3))", "shell denied rm -rf /nothing-here; touch " + victim + " | ^rm -rf /",
		"shell allowed echo still-$((1+1))", "shell allowed exit"}
	if len(got) < 2 || fmt.Sprintf("%q", got[2:]) != fmt.Sprintf("%q", want) {
		t.Fatalf("command log %q, want %q after the exec and PS1 rows", got, want)
	}
}

// TestClientPasteStartInBashCannotHideALine: bash's readline takes ESC[200~
// as a paste start even when it did not ask for one (here: bracketed paste
// turned off). The gateway closes the unasked paste at once, so the lines
// typed after it run, and are checked, as typed lines.
func TestClientPasteStartInBashCannotHideALine(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	victim := filepath.Join(t.TempDir(), "victim")
	p := b.alice.StartPTY(t, b.port, "root@web01", 100, 30, "bash", "--norc", "-i")
	p.Send("bind 'set enable-bracketed-paste off'; PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("\x1b[200~rm -rf /nothing-here; touch " + victim + "\r")
	p.Expect(t, `warden: command denied by rule \^rm -rf / of role web-admin; not sent`, expectWait)
	p.Expect(t, `PROMPT> $`, expectWait)
	// Had readline stayed in a paste, the denied text would still be in
	// its line and run now.
	p.Send("\x1b[201~\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("exit\r")
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	assertAbsent(t, victim)
}

func containsRow(rows []string, want string) bool {
	for _, r := range rows {
		if r == want {
			return true
		}
	}
	return false
}

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	if ee, ok := err.(interface{ ExitCode() int }); ok {
		return ee.ExitCode()
	}
	return -1
}

// readUntil reads r until what was read contains want.
func readUntil(t *testing.T, r io.Reader, want string) string {
	t.Helper()
	var got []byte
	buf := make([]byte, 4096)
	done := make(chan error, 1)
	go func() {
		for !strings.Contains(string(got), want) {
			n, err := r.Read(buf)
			got = append(got, buf[:n]...)
			if err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("read %q, waiting for %q: %v", got, want, err)
		}
	case <-time.After(expectWait):
		t.Fatalf("%q not seen within %s", want, expectWait)
	}
	return string(got)
}

// TestRawShellWithoutPTYHoldsAnUnfinishedLine: a client that asks for
// "shell" without "pty-req" (x/crypto) gets its lines logged; when the
// host ends the session, a line without LF was never sent, and is logged
// as not submitted.
func TestRawShellWithoutPTYHoldsAnUnfinishedLine(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	marker := filepath.Join(t.TempDir(), "never")
	c, _ := b.goClient("root@web01")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdin, _ := s.StdinPipe()
	stdout, _ := s.StdoutPipe()
	if err := s.Shell(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(stdin, "echo raw-$((20+1))\r\n")
	readUntil(t, stdout, "raw-")
	// exit ends the shell; the line after it has no LF and stays held.
	fmt.Fprint(stdin, "exit 3\ntouch "+marker)
	go io.Copy(io.Discard, stdout)
	var exit *gossh.ExitError
	if err := s.Wait(); !errors.As(err, &exit) || exit.ExitStatus() != 3 {
		t.Fatalf("wait: %v", err)
	}
	assertAbsent(t, marker)
	got := shellRows(b.commands(b.lastSession("alice").ID))
	want := []string{"shell allowed echo raw-$((20+1))\r", "shell allowed exit 3",
		"shell allowed touch " + marker + " (not submitted; session ended)"}
	if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", want) {
		t.Fatalf("command log %q, want %q", got, want)
	}
}

// TestPTYLineTypedWhenClientVanishesIsLogged: a line typed but never
// submitted when the client goes is still in the command log.
func TestPTYLineTypedWhenClientVanishesIsLogged(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	c, nc := b.goClient("root@web01")
	// Raw requests: the gateway answers pty-req only once the session has
	// started, as OpenSSH's client expects, so it is sent without waiting.
	ch, reqs, err := c.OpenChannel("session", nil)
	if err != nil {
		t.Fatal(err)
	}
	go gossh.DiscardRequests(reqs)
	pty := gossh.Marshal(struct {
		Term             string
		Cols, Rows, W, H uint32
		Modes            string
	}{"xterm", 80, 24, 0, 0, "\x00"})
	if _, err := ch.SendRequest("pty-req", false, pty); err != nil {
		t.Fatal(err)
	}
	if ok, err := ch.SendRequest("exec", true, gossh.Marshal(struct{ Cmd string }{"bash --norc -i"})); !ok || err != nil {
		t.Fatalf("exec: %v %v", ok, err)
	}
	stdin, stdout := io.Writer(ch), io.Reader(ch)
	fmt.Fprint(stdin, "PS1='PROMPT> '\r")
	readUntil(t, stdout, "PROMPT> ")
	fmt.Fprint(stdin, "echo never-run-$((1+1))")
	readUntil(t, stdout, "never-run-$((1+1))")
	nc.Close()
	sess := b.lastSession("alice")
	got := shellRows(b.commands(sess.ID))
	if !containsRow(got, "shell allowed echo never-run-$((1+1)) (not submitted; session ended)") {
		t.Fatalf("command log %q", got)
	}
}

// TestHistoryFromBeforeTheSessionIsChecked: Up brings back a line from the
// shell's history file, which no key of this session typed. The screen
// shows it, so it is logged and checked like a typed line.
func TestHistoryFromBeforeTheSessionIsChecked(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	dir := t.TempDir()
	victim, hist := filepath.Join(dir, "victim"), filepath.Join(dir, "history")
	old := "rm -rf /nothing-here; touch " + victim + "\necho from-old-$((40+2))\n"
	if err := os.WriteFile(hist, []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	p := b.alice.StartPTY(t, b.port, "root@web01", 200, 30, "env", "HISTFILE="+hist, "bash", "--norc", "-i")
	p.Send("PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	// Up twice: past this session's PS1 line, to the old echo line.
	p.Send("\x1b[A")
	p.Expect(t, `PS1='PROMPT> '$`, expectWait)
	p.Send("\x1b[A")
	p.Expect(t, `echo from-old-\$\(\(40\+2\)\)$`, expectWait)
	p.Send("\r")
	p.Expect(t, `from-old-42`, expectWait)
	p.Expect(t, `PROMPT> $`, expectWait)
	// The history is now: rm, echo (both old), PS1, echo; up four times.
	for _, want := range []string{`from-old`, `PS1=`, `from-old`, `victim$`} {
		p.Send("\x1b[A")
		p.Expect(t, want, expectWait)
	}
	p.Send("\r")
	p.Expect(t, `warden: command denied by rule \^rm -rf / of role web-admin; not sent`, expectWait)
	p.Send("exit\r")
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	assertAbsent(t, victim)
	got := shellRows(b.commands(b.lastSession("alice").ID))
	if !containsRow(got, "shell allowed echo from-old-$((40+2))") || !containsRow(got, "shell denied rm -rf /nothing-here; touch "+victim+" | ^rm -rf /") {
		t.Fatalf("command log %q", got)
	}
}

// TestDeniedLineInsideAPasteClearsTheWholePaste: bash turned bracketed
// paste on, and the second pasted line is denied at its newline. The
// paste is ended and the whole buffer dropped: neither line runs.
func TestDeniedLineInsideAPasteClearsTheWholePaste(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	dir := t.TempDir()
	first, victim := filepath.Join(dir, "first"), filepath.Join(dir, "victim")
	p := b.alice.StartPTY(t, b.port, "root@web01", 200, 30, "bash", "--norc", "-i")
	p.Send("PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("\x1b[200~touch " + first + "\nrm -rf /nothing-here; touch " + victim + "\necho tail\x1b[201~")
	p.Expect(t, `warden: command denied by rule \^rm -rf / of role web-admin; not sent`, expectWait)
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("echo after-$((3+4))\r")
	p.Expect(t, `after-7`, expectWait)
	p.Send("exit\r")
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	assertAbsent(t, first, victim)
	got := shellRows(b.commands(b.lastSession("alice").ID))
	if !containsRow(got, "shell denied touch "+first+"\nrm -rf /nothing-here; touch "+victim+"\n | ^rm -rf /") {
		t.Fatalf("command log %q", got)
	}
}

// TestHistorySearchIsChecked: Ctrl-R finds an old line by a few letters;
// Enter runs the match, which only the screen shows.
func TestHistorySearchIsChecked(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	dir := t.TempDir()
	victim, hist := filepath.Join(dir, "victim"), filepath.Join(dir, "history")
	if err := os.WriteFile(hist, []byte("rm -rf /nothing-here; touch "+victim+"\nuptime\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := b.alice.StartPTY(t, b.port, "root@web01", 200, 30, "env", "HISTFILE="+hist, "bash", "--norc", "-i")
	p.Send("PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("\x12upt")
	p.Expect(t, "upt\x1b\\[27m", expectWait) // the match, highlighted
	p.Send("\r")
	p.Expect(t, `load average`, expectWait)
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("\x12nothing-h")
	p.Expect(t, "nothing-h\x1b\\[27m", expectWait)
	p.Send("\r")
	p.Expect(t, `warden: command denied by rule \^rm -rf / of role web-admin; not sent`, expectWait)
	p.Send("exit\r")
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	assertAbsent(t, victim)
	got := shellRows(b.commands(b.lastSession("alice").ID))
	if !containsRow(got, "shell allowed uptime") || !containsRow(got, "shell denied rm -rf /nothing-here; touch "+victim+" | ^rm -rf /") {
		t.Fatalf("command log %q", got)
	}
}

// TestShellOnTheAlternateScreenIsSeen: keys in a full-screen program are
// not lines, but a shell left on the alternate screen (printf, or a shell
// inside tmux) is a shell again from its second prompt.
func TestShellOnTheAlternateScreenIsSeen(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	victim := filepath.Join(t.TempDir(), "victim")
	p := b.alice.StartPTY(t, b.port, "root@web01", 200, 30, "bash", "--norc", "-i")
	p.Send("PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("printf '\\033[?1049h'\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("echo first-$((0+1))\r") // the one line that escapes
	p.Expect(t, `first-1`, expectWait)
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("rm -rf /nothing-here; touch " + victim + "\r")
	p.Expect(t, `warden: command denied by rule \^rm -rf / of role web-admin; not sent`, expectWait)
	p.Send("echo second-$((1+1))\r")
	p.Expect(t, `second-2`, expectWait)
	p.Send("exit\r")
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	assertAbsent(t, victim)
	got := shellRows(b.commands(b.lastSession("alice").ID))
	if !containsRow(got, "shell denied rm -rf /nothing-here; touch "+victim+" | ^rm -rf /") || !containsRow(got, "shell allowed echo second-$((1+1))") {
		t.Fatalf("command log %q", got)
	}
}
