package sshtest

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestClientArgsPinKeyAndKnownHosts(t *testing.T) {
	c := NewClient(t, t.TempDir())
	for _, tt := range []struct {
		name     string
		args     []string
		portFlag string
	}{
		{"ssh", c.Args("2222"), "-p"},
		{"scp", c.SCPArgs("2222"), "-P"},
		{"sftp", c.SFTPArgs("2222"), "-P"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			joined := strings.Join(tt.args, " ")
			for _, want := range []string{
				"-F /dev/null",
				"-i " + c.KeyPath,
				"-o IdentitiesOnly=yes",
				"-o UserKnownHostsFile=" + c.KnownHostsPath,
				"-o StrictHostKeyChecking=yes",
				"-o BatchMode=yes",
				"-o LogLevel=ERROR",
				tt.portFlag + " 2222",
			} {
				if !strings.Contains(joined, want) {
					t.Errorf("args lack %q: %s", want, joined)
				}
			}
		})
	}
}

func TestClientTrustHostWritesBracketedPort(t *testing.T) {
	c := NewClient(t, "")
	key := NewCA(t).PublicKey
	c.TrustHost("127.0.0.1:2201", key)
	c.TrustHostCA(key)
	data, err := os.ReadFile(c.KnownHostsPath)
	if err != nil {
		t.Fatal(err)
	}
	keyText := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(key)))
	want := []string{"[127.0.0.1]:2201 " + keyText, "@cert-authority * " + keyText}
	if got := strings.Split(strings.TrimSpace(string(data)), "\n"); !slices.Equal(got, want) {
		t.Fatalf("known_hosts = %q, want %q", got, want)
	}
}

func TestNewClientRefusesDirWithSpaces(t *testing.T) {
	msg := failureOf(t, func(tb testing.TB) { NewClient(tb, "/tmp/a b") })
	if !strings.Contains(msg, "spaces or quotes") {
		t.Fatalf("failure = %q", msg)
	}
}

// TestClientCopiesFilesWithSCPAndSFTP round-trips a file through the real
// scp (sftp protocol and legacy -O) and sftp against the real sshd.
func TestClientCopiesFilesWithSCPAndSFTP(t *testing.T) {
	ca := NewCA(t)
	h := StartHost(t, HostOptions{TrustedUserCAKeys: []ssh.PublicKey{ca.PublicKey}})
	c := NewClient(t, "")
	c.TrustHost(h.Addr, h.HostKey)
	c.SetCertificate(ca.UserCert(t, c.PublicKey, "copier", "root"))

	local, remote := t.TempDir(), t.TempDir() // the host shares this file system
	content := []byte("warden sshtest\n")
	src := filepath.Join(local, "src.txt")
	writeFile(t, src, content)
	ctx := testContext(t)

	for _, tt := range []struct {
		name  string
		flags []string
	}{
		{"scp over sftp", nil},
		{"scp legacy", []string{"-O"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			up := filepath.Join(remote, strings.ReplaceAll(tt.name, " ", "-"))
			args := append(slices.Clone(tt.flags), src, Remote("root", up))
			if out, err := c.SCP(ctx, h.Port, args...).CombinedOutput(); err != nil {
				t.Fatalf("scp up: %v: %s", err, out)
			}
			down := up + ".back"
			args = append(slices.Clone(tt.flags), Remote("root", up), down)
			if out, err := c.SCP(ctx, h.Port, args...).CombinedOutput(); err != nil {
				t.Fatalf("scp down: %v: %s", err, out)
			}
			assertFile(t, down, content)
		})
	}

	t.Run("sftp", func(t *testing.T) {
		up, down := filepath.Join(remote, "sftp.txt"), filepath.Join(local, "sftp.back")
		batch := "put " + src + " " + up + "\nget " + up + " " + down + "\n"
		if out, err := c.SFTP(ctx, h.Port, "root", batch).CombinedOutput(); err != nil {
			t.Fatalf("sftp: %v: %s", err, out)
		}
		assertFile(t, down, content)
	})
}

func assertFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		t.Fatalf("%s = %q, want %q", path, got, want)
	}
}
