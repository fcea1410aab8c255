package gateway_test

import (
	"bytes"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gw/warden/internal/sshtest"
)

// randomFile writes n random bytes to a new file under dir.
func randomFile(t *testing.T, dir, name string, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p, data
}

func sameFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d sent", path, len(got), len(want))
	}
}

// remoteDir is a directory on the managed host (the same machine here).
func remoteDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "warden-remote-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

func (b *testbed) scp(args ...string) {
	b.t.Helper()
	cmd := b.alice.SCP(testCtx(b.t), b.port, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.t.Fatalf("scp %v: %v: %s", args, err, out)
	}
}

func (b *testbed) commandTexts(source string) []string {
	b.t.Helper()
	s := b.lastSession("alice")
	var out []string
	for _, c := range b.commands(s.ID) {
		if c.Source == source {
			out = append(out, c.Command)
		}
	}
	return out
}

func TestSCPBothDirectionsOverSFTPProtocol(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	local, remote := t.TempDir(), remoteDir(t)
	src, data := randomFile(t, local, "up.bin", 3<<20+17)

	b.scp(src, sshtest.Remote("root@web01", remote+"/up.bin"))
	sameFile(t, filepath.Join(remote, "up.bin"), data)
	if s := b.lastSession("alice"); s.RecordingPath != "" {
		t.Fatalf("file transfer got a terminal recording %q", s.RecordingPath)
	}
	want := fmt.Sprintf("put %s/up.bin (%d bytes)", remote, len(data))
	if got := b.commandTexts("sftp"); !contains(got, want) {
		t.Fatalf("sftp log %q lacks %q", got, want)
	}

	b.scp(sshtest.Remote("root@web01", remote+"/up.bin"), filepath.Join(local, "down.bin"))
	sameFile(t, filepath.Join(local, "down.bin"), data)
	want = fmt.Sprintf("get %s/up.bin (%d bytes)", remote, len(data))
	if got := b.commandTexts("sftp"); !contains(got, want) {
		t.Fatalf("sftp log %q lacks %q", got, want)
	}
}

func TestLegacySCPBothDirections(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	local, remote := t.TempDir(), remoteDir(t)
	src, data := randomFile(t, local, "legacy.bin", 1<<20+5)

	b.scp("-O", src, sshtest.Remote("root@web01", remote+"/"))
	sameFile(t, filepath.Join(remote, "legacy.bin"), data)
	want := fmt.Sprintf("put %s/legacy.bin (%d bytes)", remote, len(data))
	if got := b.commandTexts("scp"); !contains(got, want) {
		t.Fatalf("scp log %q lacks %q", got, want)
	}
	if got := b.commandTexts("exec"); len(got) != 1 || !strings.HasPrefix(got[0], "scp ") {
		t.Fatalf("exec log %q", got)
	}

	b.scp("-O", sshtest.Remote("root@web01", remote+"/legacy.bin"), filepath.Join(local, "back.bin"))
	sameFile(t, filepath.Join(local, "back.bin"), data)
	want = fmt.Sprintf("get %s/legacy.bin (%d bytes)", remote, len(data))
	if got := b.commandTexts("scp"); !contains(got, want) {
		t.Fatalf("scp log %q lacks %q", got, want)
	}
}

func TestSFTPOperationsAreLogged(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	local, remote := t.TempDir(), remoteDir(t)
	src, data := randomFile(t, local, "a.bin", 200000)
	batch := strings.Join([]string{
		"mkdir " + remote + "/d",
		"put " + src + " " + remote + "/d/a.bin",
		"rename " + remote + "/d/a.bin " + remote + "/d/b.bin",
		"get " + remote + "/d/b.bin " + local + "/b.bin",
		"rm " + remote + "/d/b.bin",
		"rmdir " + remote + "/d",
	}, "\n") + "\n"
	cmd := b.alice.SFTP(testCtx(t), b.port, "root@web01", batch)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("sftp: %v: %s", err, out)
	}
	sameFile(t, filepath.Join(local, "b.bin"), data)
	got := b.commandTexts("sftp")
	want := []string{
		"mkdir " + remote + "/d",
		fmt.Sprintf("put %s/d/a.bin (%d bytes)", remote, len(data)),
		"rename " + remote + "/d/a.bin -> " + remote + "/d/b.bin",
		fmt.Sprintf("get %s/d/b.bin (%d bytes)", remote, len(data)),
		"remove " + remote + "/d/b.bin",
		"rmdir " + remote + "/d",
	}
	for _, w := range want {
		if !contains(got, w) {
			t.Fatalf("sftp log %q lacks %q", got, w)
		}
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// rsync -e ssh runs `rsync --server` as an exec through the gateway; the
// OpenSSH client splits root@web01@gw at the last '@' as for ssh.
func TestRsyncOverSSH(t *testing.T) {
	rsync, err := exec.LookPath("rsync")
	if err != nil {
		t.Fatal("rsync not installed: apt-get install rsync")
	}
	b := newTestbed(t, bedOptions{})
	local, remote := t.TempDir(), remoteDir(t)
	src, data := randomFile(t, local, "r.bin", 500000)
	sshCmd := "ssh " + strings.Join(b.alice.Args(b.port), " ")
	cmd := exec.CommandContext(testCtx(t), rsync, "-e", sshCmd, src, sshtest.Remote("root@web01", remote+"/"))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("rsync: %v: %s", err, out)
	}
	sameFile(t, filepath.Join(remote, "r.bin"), data)
	if got := b.commandTexts("exec"); len(got) != 1 || !strings.HasPrefix(got[0], "rsync --server") {
		t.Fatalf("exec log %q", got)
	}
}
