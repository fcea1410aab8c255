package vaulttest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

// EnvBinary names the environment variable that overrides the binary path.
const EnvBinary = "WARDEN_VAULTDEV"

// startTimeout bounds how long a fresh core may take to print its address;
// it is generous because the machine may be busy compiling.
const startTimeout = 2 * time.Minute

// Server is a running vaultdev process with a fresh, unsealed, in-memory
// Vault. Its state is lost when it stops. Pause, Resume, Client and Unseal
// report failures on the test that started it, so call them from that
// test's goroutine.
type Server struct {
	// Addr is the Vault address, "http://127.0.0.1:PORT".
	Addr string
	// RootToken is the root token of this Vault.
	RootToken string
	// UnsealKeys are the hex unseal keys, for tests that seal and unseal.
	UnsealKeys []string

	t        testing.TB
	cmd      *exec.Cmd
	stopOnce sync.Once
}

// Binary returns the path of the vaultdev binary: $WARDEN_VAULTDEV, or
// ~/.cache/warden/vaultdev.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".cache", "warden", "vaultdev"), nil
}

// Start runs a new vaultdev on a free loopback port and stops it when the
// test ends. A missing binary fails the test with the command that builds
// it.
func Start(t testing.TB) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("vaulttest: locate vaultdev: %v", err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("vaulttest: vaultdev binary %s is missing (%v): run `make vaultdev` (or set %s)", bin, err, EnvBinary)
	}
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0")
	cmd.Stderr = t.Output()
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatalf("vaulttest: %v", err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("vaulttest: start %s: %v", bin, err)
	}
	s := &Server{t: t, cmd: cmd}
	t.Cleanup(s.Stop)

	line := make(chan []byte, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Bytes()
		}
		close(line)
	}()
	select {
	case b, ok := <-line:
		if !ok {
			t.Fatalf("vaulttest: vaultdev exited before printing its address")
		}
		if err := json.Unmarshal(b, &struct {
			Addr       *string   `json:"addr"`
			RootToken  *string   `json:"root_token"`
			UnsealKeys *[]string `json:"unseal_keys"`
		}{&s.Addr, &s.RootToken, &s.UnsealKeys}); err != nil {
			t.Fatalf("vaulttest: vaultdev printed %q: %v", b, err)
		}
	case <-time.After(startTimeout):
		t.Fatalf("vaulttest: vaultdev printed nothing within %v", startTimeout)
	}
	if s.Addr == "" || s.RootToken == "" {
		t.Fatalf("vaulttest: vaultdev printed no address or root token")
	}
	return s
}

// Stop kills the server and waits for it; a paused server is resumed first
// so that it can die. Stop is idempotent.
func (s *Server) Stop() {
	s.stopOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGCONT)
		_ = s.cmd.Process.Kill()
		_ = s.cmd.Wait() // "signal: killed" is the expected outcome
	})
}

// Pause stops the process with SIGSTOP: its socket still accepts
// connections but nothing answers, like a hung Vault. State is kept.
func (s *Server) Pause() {
	t := s.t
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		t.Fatalf("vaulttest: pause: %v", err)
	}
	// kill(2) only queues the signal: a thread running on another CPU may
	// still answer a request. Wait until every thread is stopped.
	deadline := time.Now().Add(10 * time.Second)
	for !allStopped(s.cmd.Process.Pid) {
		if time.Now().After(deadline) {
			t.Fatalf("vaulttest: pause: process %d did not stop", s.cmd.Process.Pid)
		}
		time.Sleep(time.Millisecond)
	}
}

// allStopped reports whether every thread of pid is in state T (stopped),
// from /proc/PID/task/*/stat.
func allStopped(pid int) bool {
	tasks, err := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/stat", pid))
	if err != nil || len(tasks) == 0 {
		return false
	}
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			return false
		}
		// The state follows the parenthesised command name.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 || i+2 >= len(b) || b[i+2] != 'T' {
			return false
		}
	}
	return true
}

// Resume continues a paused server with SIGCONT.
func (s *Server) Resume() {
	t := s.t
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGCONT); err != nil {
		t.Fatalf("vaulttest: resume: %v", err)
	}
}

// Client returns an api client for this server holding the root token.
func (s *Server) Client() *api.Client {
	t := s.t
	t.Helper()
	cfg := api.DefaultConfig()
	cfg.Address = s.Addr
	c, err := api.NewClient(cfg)
	if err != nil {
		t.Fatalf("vaulttest: client: %v", err)
	}
	c.SetToken(s.RootToken)
	return c
}

// Unseal unseals the server with its unseal keys after a test sealed it.
func (s *Server) Unseal() {
	t := s.t
	t.Helper()
	c := s.Client()
	for _, k := range s.UnsealKeys {
		st, err := c.Sys().Unseal(k)
		if err != nil {
			t.Fatalf("vaulttest: unseal: %v", err)
		}
		if !st.Sealed {
			return
		}
	}
	t.Fatalf("vaulttest: still sealed after %d unseal keys", len(s.UnsealKeys))
}
