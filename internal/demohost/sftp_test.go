package demohost

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/warden-gw/warden/internal/sshtest"
)

func TestSFTPPutGetRoundTrip(t *testing.T) {
	d := startDemo(t, Options{}, "root")
	dir := t.TempDir()
	src, back := filepath.Join(dir, "src.bin"), filepath.Join(dir, "back.bin")
	content := []byte("demo host sftp\x00\xff\n")
	writeTestFile(t, src, content)
	remote := filepath.Join(t.TempDir(), "uploaded.bin")

	batch := "put " + src + " " + remote + "\nget " + remote + " " + back + "\n"
	if out, err := d.c.SFTP(t.Context(), d.port, "root", batch).CombinedOutput(); err != nil {
		t.Fatalf("sftp: %v: %s", err, out)
	}
	assertSameFile(t, remote, content)
	assertSameFile(t, back, content)
	d.waitLog(t, "kind=sftp login=root")
}

// TestSCPRoundTripWithAtInLogin copies with scp over the sftp protocol and
// with the legacy protocol (-O, which runs "scp -t" as an exec session), as
// login "root@web01", the shape of a login through the gateway.
func TestSCPRoundTripWithAtInLogin(t *testing.T) {
	d := startDemo(t, Options{}, "root@web01")
	dir := sharedDir(t) // run as root, login root@web01 runs as nobody
	src := filepath.Join(dir, "src.txt")
	content := []byte("demo host scp\n")
	writeTestFile(t, src, content)
	for _, tt := range []struct {
		name  string
		flags []string
	}{
		{"sftp-protocol", nil},
		{"legacy", []string{"-O"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			remote := filepath.Join(dir, tt.name+".up")
			args := append(slices.Clone(tt.flags), src, sshtest.Remote("root@web01", remote))
			if out, err := d.c.SCP(t.Context(), d.port, args...).CombinedOutput(); err != nil {
				t.Fatalf("scp up: %v: %s", err, out)
			}
			back := remote + ".back"
			args = append(slices.Clone(tt.flags), sshtest.Remote("root@web01", remote), back)
			if out, err := d.c.SCP(t.Context(), d.port, args...).CombinedOutput(); err != nil {
				t.Fatalf("scp down: %v: %s", err, out)
			}
			assertSameFile(t, back, content)
		})
	}
}

func TestSFTPWithoutSFTPServerSaysWhy(t *testing.T) {
	d := startDemo(t, Options{SFTPServer: "/no/such/sftp-server"}, "root")
	out, err := d.c.SFTP(t.Context(), d.port, "root", "pwd\n").CombinedOutput()
	if err == nil {
		t.Fatalf("sftp succeeded without sftp-server: %s", out)
	}
	if !strings.Contains(string(out), "sftp is not available on the demo host: /no/such/sftp-server is missing") {
		t.Fatalf("sftp output lacks the reason: %q", out)
	}
}

func assertSameFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s = %q, want %q", path, got, want)
	}
}

// sharedDir is a temporary directory that the demo host's unprivileged
// account can write too, for logins other than root on a host run as root.
func sharedDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, d := range []string{filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o777); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
