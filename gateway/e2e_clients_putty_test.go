package gateway_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// PuTTY's command-line tools (Debian's putty-tools), the clients of most
// Windows admins: plink (ssh), pscp (scp over SFTP, or legacy scp with
// -scp) and psftp.

// putty runs one of PuTTY's tools as alice, with her key converted to
// PuTTY's format, the gateway's host key given by fingerprint (-hostkey:
// nothing is asked and nothing is cached), and HOME in a fresh directory so
// that no saved session or ~/.putty of the machine applies.
type putty struct {
	b    *testbed
	ppk  string
	home string
}

func newPutty(t *testing.T, b *testbed) *putty {
	t.Helper()
	for _, prog := range []string{"puttygen", "plink", "pscp", "psftp"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Fatalf("%s not installed: apt-get install putty-tools", prog)
		}
	}
	p := &putty{b: b, ppk: filepath.Join(b.dir, "alice.ppk"), home: t.TempDir()}
	if out, err := exec.Command("puttygen", b.alice.KeyPath, "-O", "private", "-o", p.ppk).CombinedOutput(); err != nil {
		t.Fatalf("puttygen: %v: %s", err, out)
	}
	return p
}

// cmd returns prog with the common options; args follow them.
func (p *putty) cmd(prog string, args ...string) *exec.Cmd {
	common := []string{"-batch", "-noagent", "-hostkey", gossh.FingerprintSHA256(p.b.hostKey),
		"-P", p.b.port, "-i", p.ppk, "-l", "root@web01"}
	cmd := exec.CommandContext(testCtx(p.b.t), prog, append(common, args...)...)
	cmd.Env = append(os.Environ(), "HOME="+p.home)
	return cmd
}

func (p *putty) run(prog string, args ...string) string {
	p.b.t.Helper()
	out, err := p.cmd(prog, args...).CombinedOutput()
	if err != nil {
		p.b.t.Fatalf("%s %v: %v: %s", prog, args, err, out)
	}
	return string(out)
}

func TestPlinkExecAndPty(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	p := newPutty(t, b)

	// A command, with its exit status.
	cmd := p.cmd("plink", "127.0.0.1", "echo plink-$((6*7)); exit 3")
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || string(out) != "plink-42\n" {
		t.Fatalf("plink: err %v out %q", err, out)
	}
	row := b.lastSession("alice")
	if row.ExitStatus == nil || *row.ExitStatus != 3 {
		t.Fatalf("session row %+v", row)
	}
	if cmds := b.commands(row.ID); len(cmds) != 1 || cmds[0].Source != "exec" || cmds[0].Command != "echo plink-$((6*7)); exit 3" {
		t.Fatalf("command rows %+v", cmds)
	}
	if _, o := castStreams(t, b.castOf(row.RecordingPath)); o != "plink-42\n" {
		t.Fatalf("cast output %q", o)
	}

	// With a terminal: plink waits for the answer to pty-req before it
	// sends the command.
	out2 := p.run("plink", "-t", "127.0.0.1", "test -t 0 && echo tty-yes")
	if !strings.Contains(out2, "tty-yes") {
		t.Fatalf("plink -t: %q", out2)
	}
	row = b.lastSession("alice")
	if cmds := b.commands(row.ID); len(cmds) != 1 || cmds[0].Command != "test -t 0 && echo tty-yes" {
		t.Fatalf("command rows %+v", cmds)
	}
	if _, o := castStreams(t, b.castOf(row.RecordingPath)); !strings.Contains(o, "tty-yes") {
		t.Fatalf("cast output %q", o)
	}
}

// TestPlinkInteractiveShell: plink with a terminal and no command, lines
// typed on its input; each line is logged as a shell command.
func TestPlinkInteractiveShell(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	p := newPutty(t, b)
	cmd := p.cmd("plink", "-t", "127.0.0.1")
	cmd.Stdin = strings.NewReader("echo typed-$((2*21))\nexit\n")
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), "typed-42") {
		t.Fatalf("plink shell: %v: %q", err, out)
	}
	row := b.lastSession("alice")
	var lines []string
	for _, c := range b.commands(row.ID) {
		if c.Source == "shell" {
			lines = append(lines, c.Command)
		}
	}
	// Input typed before the shell's prompt is echoed by the terminal
	// driver rather than readline, so only the command line is required.
	if !slices.Contains(lines, "echo typed-$((2*21))") {
		t.Fatalf("shell lines %q", lines)
	}
	if _, o := castStreams(t, b.castOf(row.RecordingPath)); !strings.Contains(o, "typed-42") {
		t.Fatalf("cast output %q", o)
	}
}

func TestPscpBothWaysOverSFTPAndSCP(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	p := newPutty(t, b)
	local, remote := t.TempDir(), remoteDir(t)
	src, data := randomFile(t, local, "up.bin", 1<<20+3)

	// SFTP, pscp's default.
	p.run("pscp", "-sftp", src, "127.0.0.1:"+remote+"/up.bin")
	sameFile(t, filepath.Join(remote, "up.bin"), data)
	if got := b.commandTexts("sftp"); !slices.ContainsFunc(got, func(c string) bool {
		return strings.HasPrefix(c, "put "+remote+"/up.bin")
	}) {
		t.Fatalf("sftp log %q", got)
	}
	p.run("pscp", "-sftp", "127.0.0.1:"+remote+"/up.bin", filepath.Join(local, "down.bin"))
	sameFile(t, filepath.Join(local, "down.bin"), data)
	if got := b.commandTexts("sftp"); !slices.ContainsFunc(got, func(c string) bool {
		return strings.HasPrefix(c, "get "+remote+"/up.bin")
	}) {
		t.Fatalf("sftp log %q", got)
	}

	// Legacy scp, into a directory and back.
	p.run("pscp", "-scp", src, "127.0.0.1:"+remote+"/")
	sameFile(t, filepath.Join(remote, "up.bin"), data)
	want := fmt.Sprintf("put %s/up.bin (%d bytes)", remote, len(data))
	if got := b.commandTexts("scp"); !slices.Contains(got, want) {
		t.Fatalf("scp log %q lacks %q", got, want)
	}
	if got := b.commandTexts("exec"); len(got) != 1 || !strings.HasPrefix(got[0], "scp ") {
		t.Fatalf("exec log %q", got)
	}
	p.run("pscp", "-scp", "127.0.0.1:"+remote+"/up.bin", filepath.Join(local, "back.bin"))
	sameFile(t, filepath.Join(local, "back.bin"), data)
	want = fmt.Sprintf("get %s/up.bin (%d bytes)", remote, len(data))
	if got := b.commandTexts("scp"); !slices.Contains(got, want) {
		t.Fatalf("scp log %q lacks %q", got, want)
	}
}

func TestPsftpBatch(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	p := newPutty(t, b)
	local, remote := t.TempDir(), remoteDir(t)
	src, data := randomFile(t, local, "a.bin", 200000)
	batch := filepath.Join(local, "batch")
	script := strings.Join([]string{
		"cd " + remote,
		"put " + src + " a.bin",
		"mkdir sub",
		"mv a.bin sub/b.bin",
		"get sub/b.bin " + filepath.Join(local, "b.bin"),
		"rm sub/b.bin",
		"rmdir sub",
		"quit",
	}, "\n") + "\n"
	if err := os.WriteFile(batch, []byte(script), 0o600); err != nil {
		t.Fatal(err)
	}
	p.run("psftp", "-b", batch, "-be", "127.0.0.1")
	sameFile(t, filepath.Join(local, "b.bin"), data)
	if _, err := os.Stat(filepath.Join(remote, "sub")); !os.IsNotExist(err) {
		t.Fatalf("sub still exists on the host: %v", err)
	}
	got := strings.Join(b.commandTexts("sftp"), "\n")
	for _, want := range []string{"put " + remote + "/a.bin", "mkdir " + remote + "/sub",
		"rename " + remote + "/a.bin -> " + remote + "/sub/b.bin", "get " + remote + "/sub/b.bin",
		"remove " + remote + "/sub/b.bin", "rmdir " + remote + "/sub"} {
		if !strings.Contains(got, want) {
			t.Errorf("sftp log lacks %q:\n%s", want, got)
		}
	}
}
