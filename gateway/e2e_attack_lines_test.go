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

	"github.com/warden-gw/warden/recorder"
)

// ptyShell opens a session with a pty whose modes are modes, starts cmd
// (a shell when empty), and returns its stdin and what it printed.
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
	if !leaveShell(in, s, 10*time.Second) {
		o := out.String()
		t.Logf("the shell did not exit (ran %v); output ends %q", ran, o[max(0, len(o)-600):])
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

// TestAttackHostRefusedPTYLeavesTheTerminalGuard: the gateway answers a
// pty-req itself, before the host is connected. When the host then refuses
// the pty (PermitTTY no, as is common for service accounts; a certificate
// or pty limit), its shell reads a pipe: no echo, no line editor, a line
// runs at its LF and CR is a character. The attack types a denied line
// with Enter (CR), on which a terminal guard would swallow the key and
// "clear" the line with keys such a shell takes as text, then an allowed
// line with LF, which would run both. The gateway must rebuild lines as in
// a session without a terminal from the first key: each line is held until
// its LF and logged as sent, and the line that holds the denied command is
// refused whole, ending the session, so nothing of it runs.
func TestAttackHostRefusedPTYLeavesTheTerminalGuard(t *testing.T) {
	b := newTestbed(t, bedOptions{hostExtra: "Match all\n    PermitTTY no\n"})
	marker := filepath.Join(t.TempDir(), "denied")
	in, out, s := ptyShell(t, b, gossh.TerminalModes{}, "")
	waitOutput(t, out, `refused a terminal`)
	// An allowed line runs at its LF, and is logged as it was sent.
	_, _ = io.WriteString(in, "echo ok-$((40+2))\n")
	waitOutput(t, out, `ok-42`)
	_, _ = io.WriteString(in, "rm -rf /nothing-here; touch "+marker+"; : \r")
	time.Sleep(300 * time.Millisecond)
	_, _ = io.WriteString(in, "echo allowed\n")
	refused := "command denied by rule ^rm -rf / of role web-admin; not sent, session ended"
	for deadline := time.Now().Add(expectWait); !strings.Contains(out.String(), refused) && time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(marker); err == nil {
			break
		}
	}
	if !waitEnded(s, 10*time.Second) {
		t.Errorf("the session did not end after the denied line; output %q", out.String())
	}
	ran := waitExists(marker, 2*time.Second)
	rows := shellRows(b.commands(b.lastSession("alice").ID))
	if ran {
		t.Fatalf("a line the rule ^rm -rf / denied ran on the host all the same; command log %q; output %q", rows, out.String())
	}
	if !strings.Contains(out.String(), refused) {
		t.Fatalf("no %q in output %q", refused, out.String())
	}
	want := []string{
		"shell allowed echo ok-$((40+2))",
		"shell denied rm -rf /nothing-here; touch " + marker + "; : \recho allowed | ^rm -rf /",
	}
	if fmt.Sprintf("%q", rows) != fmt.Sprintf("%q", want) {
		t.Fatalf("command log %q, want %q", rows, want)
	}
}

// TestHostRefusedPTYRefusesLegacySCP: an exec of scp that asked for a pty
// was taken for a terminal session, not a file transfer. Once the host
// refuses the pty it would run as one, unparsed and unlogged as file
// operations, so the gateway refuses it before the host starts it.
func TestHostRefusedPTYRefusesLegacySCP(t *testing.T) {
	b := newTestbed(t, bedOptions{hostExtra: "Match all\n    PermitTTY no\n"})
	_, out, s := ptyShell(t, b, gossh.TerminalModes{}, "scp -t "+t.TempDir())
	done := make(chan error, 1)
	go func() { done <- s.Wait() }()
	select {
	case err := <-done:
		var exit *gossh.ExitError
		if !errors.As(err, &exit) || exit.ExitStatus() != 1 {
			t.Fatalf("exit %v; output %q", err, out.String())
		}
	case <-time.After(expectWait):
		t.Fatalf("scp was not refused; output %q", out.String())
	}
	if !strings.Contains(out.String(), "host web01 refused a terminal; scp does not run in a session that asked for one") {
		t.Fatalf("output %q", out.String())
	}
}
