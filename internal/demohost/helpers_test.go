package demohost

import (
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/sshtest"
	"golang.org/x/crypto/ssh"
)

// long bounds every wait in these tests. It is generous because the machine
// is shared; no test asserts how long anything took.
const long = 60 * time.Second

// demo is a running demo host with a CA it trusts and a real OpenSSH client
// that knows the host's key.
type demo struct {
	host *Host
	port string
	ca   *sshtest.CA
	c    *sshtest.Client
	logs *syncBuffer
	// certSigner presents the client's certificate; set by goClient.
	certSigner ssh.Signer
}

// startDemo starts a host trusting a new CA (opt.UserCA is set here) and a
// client holding a certificate from that CA for the given principals.
func startDemo(t *testing.T, opt Options, principals ...string) *demo {
	t.Helper()
	d := &demo{ca: sshtest.NewCA(t), logs: &syncBuffer{}}
	opt.UserCA = d.ca.PublicKey
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(d.logs, nil))
	}
	if opt.Dir == "" {
		opt.Dir = t.TempDir()
	}
	h, err := Start(t.Context(), opt)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { h.Close() })
	d.host = h
	_, d.port, _ = net.SplitHostPort(h.Addr())
	d.c = sshtest.NewClient(t, "")
	d.c.TrustHost(h.Addr(), h.HostKey())
	d.c.SetCertificate(d.ca.UserCert(t, d.c.PublicKey, "test:1:alice", principals...))
	return d
}

// run runs an exec session with the real ssh client and returns stdout,
// stderr and the exit status.
func (d *demo) run(t *testing.T, login string, command ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), long)
	defer cancel()
	cmd := d.c.SSH(ctx, d.port, login, command...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	_ = cmd.Run()
	if cmd.ProcessState == nil {
		t.Fatalf("ssh did not run: %s", errOut.String())
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// goClient logs in with golang.org/x/crypto/ssh, for protocol details the
// OpenSSH client does not expose (exit signals, refused channel types).
func (d *demo) goClient(t *testing.T, login string) *ssh.Client {
	t.Helper()
	pem, err := os.ReadFile(d.c.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	certText, err := os.ReadFile(d.c.KeyPath + "-cert.pub")
	if err != nil {
		t.Fatal(err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(certText)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.NewCertSigner(pub.(*ssh.Certificate), key)
	if err != nil {
		t.Fatal(err)
	}
	d.certSigner = signer
	client, err := ssh.Dial("tcp", d.host.Addr(), &ssh.ClientConfig{
		User:            login,
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(signer)},
		HostKeyCallback: ssh.FixedHostKey(d.host.HostKey()),
		Timeout:         long,
	})
	if err != nil {
		t.Fatalf("dial demo host: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

// syncBuffer collects log output written by the host's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// sshCommand runs the ssh client with exactly args.
func sshCommand(t *testing.T, args ...string) *exec.Cmd {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), long)
	t.Cleanup(cancel)
	return exec.CommandContext(ctx, "ssh", args...)
}

// resign signs cert again after a test changed it.
func resign(t *testing.T, ca *sshtest.CA, cert *ssh.Certificate) {
	t.Helper()
	if err := cert.SignCert(rand.Reader, ca.Signer); err != nil {
		t.Fatal(err)
	}
}

// waitLog polls the host's log until it contains substr.
func (d *demo) waitLog(t *testing.T, substr string) {
	t.Helper()
	deadline := time.Now().Add(long)
	for !strings.Contains(d.logs.String(), substr) {
		if time.Now().After(deadline) {
			t.Fatalf("%q not logged; log:\n%s", substr, d.logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
