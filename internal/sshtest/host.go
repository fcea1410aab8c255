package sshtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// HostOptions configures StartHost.
type HostOptions struct {
	// TrustedUserCAKeys are the only keys whose user certificates the host
	// accepts. With none, nobody can log in.
	TrustedUserCAKeys []ssh.PublicKey
	// ExtraConfig is appended to the generated sshd_config. sshd keeps the
	// first value of most keywords, so use it for new keywords or Match
	// blocks ("Match all" overrides a fixed value).
	ExtraConfig string
	// HostCA, when set, certifies the host key for the principals
	// "127.0.0.1" and "localhost" and sshd presents that certificate, so a
	// client can trust the host through a host CA instead of a pinned key.
	HostCA ssh.Signer
}

// Host is a real sshd listening on 127.0.0.1 that trusts the given user CAs.
// The test's cleanup stops it.
type Host struct {
	// Addr is "127.0.0.1:PORT".
	Addr string
	// Port is the port part of Addr.
	Port string
	// HostKey is the host's ed25519 public key.
	HostKey ssh.PublicKey
	// HostKeyPath is the host's private key file.
	HostKeyPath string
	// HostCertPath is the host certificate file, empty without HostCA.
	HostCertPath string
	// ConfigPath is the generated sshd_config.
	ConfigPath string
	// LogPath is the file sshd logs to (sshd -E).
	LogPath string
	// Dir holds all of the host's files.
	Dir string

	cmd    *exec.Cmd
	stderr *lockedBuffer
	done   chan struct{} // closed when sshd has exited
}

// readyTimeout bounds how long a starting sshd may take to accept
// connections. It is generous because the machine is shared with compilers.
const readyTimeout = 60 * time.Second

// bindAttempts is how many free ports StartHost tries: another process may
// take the port between FreePort and sshd's bind.
const bindAttempts = 3

// StartHost starts sshd -D on a free loopback port and waits until the port
// accepts connections. The test's cleanup stops sshd and, if the test failed,
// logs sshd's log.
func StartHost(t testing.TB, opt HostOptions) *Host {
	t.Helper()
	sshd := program(t, "sshd")
	// sshd refuses to start without its privilege separation directory,
	// which only exists on a host where the openssh-server service ran.
	if err := os.MkdirAll("/run/sshd", 0o755); err != nil {
		t.Fatalf("sshtest: create /run/sshd: %v", err)
	}
	dir := t.TempDir()
	h := &Host{
		Dir:         dir,
		HostKeyPath: filepath.Join(dir, "ssh_host_ed25519_key"),
		ConfigPath:  filepath.Join(dir, "sshd_config"),
		LogPath:     filepath.Join(dir, "sshd.log"),
	}
	h.HostKey = writeHostKey(t, h.HostKeyPath)
	if opt.HostCA != nil {
		h.HostCertPath = h.HostKeyPath + "-cert.pub"
		ca := &CA{Signer: opt.HostCA, PublicKey: opt.HostCA.PublicKey()}
		writeFile(t, h.HostCertPath, ssh.MarshalAuthorizedKey(ca.HostCert(t, h.HostKey, "127.0.0.1", "localhost")))
	}
	caPath := filepath.Join(dir, "trusted_user_ca_keys")
	var cas []byte
	for _, k := range opt.TrustedUserCAKeys {
		cas = append(cas, ssh.MarshalAuthorizedKey(k)...)
	}
	writeFile(t, caPath, cas)

	var lastErr error
	for range bindAttempts {
		h.Port = FreePort(t)
		h.Addr = net.JoinHostPort("127.0.0.1", h.Port)
		cfg := sshdConfig{
			Port:          h.Port,
			HostKeyPath:   h.HostKeyPath,
			HostCertPath:  h.HostCertPath,
			TrustedCAPath: caPath,
			Extra:         opt.ExtraConfig,
		}
		writeFile(t, h.ConfigPath, []byte(cfg.render()))
		if err := os.Remove(h.LogPath); err != nil && !os.IsNotExist(err) {
			t.Fatalf("sshtest: reset sshd log: %v", err)
		}
		h.start(t, sshd)
		lastErr = h.waitReady()
		if lastErr == nil {
			t.Cleanup(func() { h.stop(t) })
			return h
		}
		h.stop(t)
		if !strings.Contains(h.Log(), "Address already in use") {
			break
		}
	}
	t.Fatalf("sshtest: sshd did not start: %v\nsshd log:\n%s", lastErr, h.Log())
	return nil
}

// writeHostKey generates an ed25519 host key in OpenSSH format.
func writeHostKey(t testing.TB, path string) ssh.PublicKey {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("sshtest: generate host key: %v", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "sshtest host")
	if err != nil {
		t.Fatalf("sshtest: marshal host key: %v", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatalf("sshtest: host key signer: %v", err)
	}
	writeFile(t, path, pem.EncodeToMemory(block))
	writeFile(t, path+".pub", ssh.MarshalAuthorizedKey(signer.PublicKey()))
	return signer.PublicKey()
}

func (h *Host) start(t testing.TB, sshd string) {
	t.Helper()
	h.stderr = &lockedBuffer{}
	h.cmd = exec.Command(sshd, "-D", "-f", h.ConfigPath, "-E", h.LogPath)
	h.cmd.Stdout = h.stderr
	h.cmd.Stderr = h.stderr
	if err := h.cmd.Start(); err != nil {
		t.Fatalf("sshtest: start sshd: %v", err)
	}
	h.done = make(chan struct{})
	go func() {
		_ = h.cmd.Wait() // the exit status is reported through the log
		close(h.done)
	}()
}

// Pid is the process ID of the listening sshd. The sshd processes that
// serve each connection are its descendants (benchmarks read their CPU time
// from /proc).
func (h *Host) Pid() int { return h.cmd.Process.Pid }

// waitReady polls the port until sshd accepts a connection or exits.
func (h *Host) waitReady() error {
	deadline := time.Now().Add(readyTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-h.done:
			return fmt.Errorf("sshd exited (%v) before listening; output: %s", h.cmd.ProcessState, h.stderr.String())
		default:
		}
		c, err := net.DialTimeout("tcp", h.Addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("sshd not listening on %s after %v", h.Addr, readyTimeout)
}

// stop ends sshd: SIGTERM, then SIGKILL if it lingers. Connections already
// handed to per-connection children end when their clients disconnect.
func (h *Host) stop(t testing.TB) {
	select {
	case <-h.done:
	default:
		_ = h.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-h.done:
		case <-time.After(10 * time.Second):
			_ = h.cmd.Process.Kill()
			<-h.done
		}
	}
	if t.Failed() {
		t.Logf("sshtest: sshd log %s:\n%s", h.LogPath, h.Log())
	}
}

// Log returns the current content of sshd's log.
func (h *Host) Log() string {
	b, err := os.ReadFile(h.LogPath)
	if err != nil {
		return fmt.Sprintf("(sshd log unreadable: %v)", err)
	}
	return string(b)
}

// WaitLog polls sshd's log until it contains substr, or fails the test with
// the log after timeout. sshd writes its log asynchronously to the client's
// view of the connection, so tests wait for a line rather than read once.
func (h *Host) WaitLog(t testing.TB, substr string, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		if strings.Contains(h.Log(), substr) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshtest: %q not in sshd log after %v; log:\n%s", substr, timeout, h.Log())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lockedBuffer is a bytes.Buffer safe for a writing process and a reading test.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
