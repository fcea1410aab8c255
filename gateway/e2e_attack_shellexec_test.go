package gateway_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestAttackShellExecSpellingsReadLines: an exec that starts a shell
// reading its standard input must have that input checked line by line,
// like `ssh host sh` (TestExecOfAShellReadsLines). The attack spells that
// shell so that a naive reading of the command sees a script operand or no
// shell at all: a redirection after its name (`sh 2>/dev/null`, `bash
// </dev/stdin`), a script operand that is standard input itself (`bash
// /dev/stdin`), or a name made by a command substitution (`$(echo sh)`,
// or echo bash in backquotes). Each must be read as a shell
// (readsShellInput fails closed): the denied line is logged and not run,
// and the session ends with status 1.
func TestAttackShellExecSpellingsReadLines(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	for i, shell := range []string{"sh 2>/dev/null", "bash </dev/stdin", "bash /dev/stdin", "$(echo sh)", "`echo bash`"} {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			t.Logf("exec %q", shell)
			marker := filepath.Join(t.TempDir(), "denied")
			cmd := b.alice.SSH(testCtx(t), b.port, "root@web01", shell)
			cmd.Stdin = strings.NewReader("echo via-stdin\nrm -rf /nothing-here; touch " + marker + "\n")
			var out, errb strings.Builder
			cmd.Stdout, cmd.Stderr = &out, &errb
			code := exitCode(cmd.Run())
			rows := shellRows(b.commands(b.lastSession("alice").ID))
			assertAbsent(t, marker)
			if code != 1 || !strings.Contains(errb.String(), "command denied by rule ^rm -rf /") {
				t.Errorf("exit %d, stdout %q, stderr %q, command log %q", code, out.String(), errb.String(), rows)
			}
			want := "shell denied rm -rf /nothing-here; touch " + marker + " | ^rm -rf /"
			if !containsRow(rows, want) {
				t.Errorf("command log %q, want a row %q", rows, want)
			}
		})
	}
}
