package demohost

import (
	"bufio"
	"context"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/sshtest"
	"golang.org/x/crypto/ssh"
)

func TestStartKeepsHostKeyAcrossRestarts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host_ed25519")
	ca := sshtest.NewCA(t)
	var keys [][]byte
	for range 2 {
		h, err := Start(t.Context(), Options{UserCA: ca.PublicKey, HostKeyPath: path, Logger: discardLogger()})
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, h.HostKey().Marshal())
		h.Close()
	}
	if string(keys[0]) != string(keys[1]) {
		t.Fatal("host key changed across restarts")
	}
}

func TestStartRejectsBadOptions(t *testing.T) {
	ca := sshtest.NewCA(t).PublicKey
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		opt  Options
		want string
	}{
		{"missing shell", Options{UserCA: ca, Shell: "/no/such/shell"}, "no usable shell"},
		{"missing working directory", Options{UserCA: ca, Dir: "/no/such/dir"}, "working directory"},
		{"working directory is a file", Options{UserCA: ca, Dir: file}, "not a directory"},
		{"invalid address", Options{UserCA: ca, Addr: "256.0.0.1:0"}, "listen"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.opt.Logger = discardLogger()
			h, err := Start(t.Context(), tt.opt)
			if err == nil {
				h.Close()
				t.Fatal("Start succeeded")
			}
			if !strings.HasPrefix(err.Error(), "demohost: ") || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %q, want demohost: ...%s...", err, tt.want)
			}
		})
	}
}

func TestResolveShellFallsBack(t *testing.T) {
	t.Setenv("SHELL", "")
	got, err := resolveShell("")
	if err != nil {
		t.Fatal(err)
	}
	if got != "/bin/bash" && got != "/usr/bin/bash" {
		t.Errorf("resolveShell with no $SHELL = %q, want bash", got)
	}
	t.Setenv("SHELL", "/bin/sh")
	if got, _ := resolveShell(""); got != "/bin/sh" {
		t.Errorf("resolveShell with $SHELL=/bin/sh = %q", got)
	}
	if got, _ := resolveShell("/bin/sh"); got != "/bin/sh" {
		t.Errorf("explicit shell = %q", got)
	}
}

func TestCloseEndsSessionsAndListening(t *testing.T) {
	d := startDemo(t, Options{}, "root")
	sess, err := d.goClient(t, "root").NewSession()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := sess.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sess.Start("echo $$; exec sleep 600"); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}
	if err := d.host.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := sess.Wait(); err == nil {
		t.Fatal("session survived Close")
	}
	if c, err := net.Dial("tcp", d.host.Addr()); err == nil {
		c.Close()
		t.Fatal("still listening after Close")
	}
	if err := d.host.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	deadline := time.Now().Add(long)
	for syscall.Kill(pid, 0) == nil { // until killed and reaped
		if time.Now().After(deadline) {
			t.Fatalf("session process %d outlived Close", pid)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCancelledContextCloses(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	h, err := Start(ctx, Options{UserCA: sshtest.NewCA(t).PublicKey, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	deadline := time.Now().Add(long)
	for {
		c, err := net.Dial("tcp", h.Addr())
		if err != nil {
			return
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("still listening after the context ended")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestPortForwardingIsRefused(t *testing.T) {
	d := startDemo(t, Options{}, "root")
	client := d.goClient(t, "root")

	_, err := client.Dial("tcp", "127.0.0.1:22")
	var openErr *ssh.OpenChannelError
	if !errors.As(err, &openErr) || openErr.Reason != ssh.Prohibited {
		t.Errorf("direct-tcpip: err = %v, want prohibited", err)
	}
	if l, err := client.Listen("tcp", "127.0.0.1:0"); err == nil {
		l.Close()
		t.Errorf("tcpip-forward accepted")
	}

	// The real client, told to fail when a forward fails, fails.
	args := append(d.c.Args(d.port), "-o", "ExitOnForwardFailure=yes", "-R", "0:127.0.0.1:9",
		"--", sshtest.Dest("root"), "echo in")
	out, err := sshCommand(t, args...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "remote port forwarding failed") {
		t.Errorf("ssh -R: err %v, output %q; want remote port forwarding failed", err, out)
	}
}
