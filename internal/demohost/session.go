package demohost

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/creack/pty"
	gliderssh "github.com/gliderlabs/ssh"
	"golang.org/x/crypto/ssh"
)

// drainDelay bounds how long a session waits, after its process exited,
// for the pipes or terminal to reach EOF. A background child that inherited
// them could otherwise keep the session open forever.
const drainDelay = 2 * time.Second

// handleSession runs a shell or exec session: a login shell when the client
// sent no command, else "shell -c COMMAND", like sshd.
func (h *Host) handleSession(s gliderssh.Session) {
	ptyReq, winCh, isPTY := s.Pty()
	kind := "shell"
	if s.RawCommand() != "" {
		kind = "exec"
	}
	h.logSession(s, kind, isPTY)

	// The context ends with the connection; for a terminal session also
	// when the channel closes (winCh is closed then), so a shell whose
	// client went away does not live on.
	ctx, cancel := context.WithCancel(s.Context())
	defer cancel()
	var cmd *exec.Cmd
	if s.RawCommand() == "" {
		cmd = h.command(ctx, s, ptyReq.Term)
		cmd.Args[0] = "-" + filepath.Base(h.shell) // a leading '-' makes it a login shell
	} else {
		cmd = h.command(ctx, s, ptyReq.Term, "-c", s.RawCommand())
	}
	if isPTY {
		h.exit(s, runTerminal(cmd, s, ptyReq.Window, winCh, cancel))
	} else {
		h.exit(s, runPipes(cmd, s))
	}
}

// command builds the process for a session, running h.shell with args.
func (h *Host) command(ctx context.Context, s gliderssh.Session, term string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, h.shell, args...)
	h.prepare(cmd, s, term)
	return cmd
}

// prepare sets the OS user, working directory, environment and
// cancellation of cmd.
func (h *Host) prepare(cmd *exec.Cmd, s gliderssh.Session, term string) {
	acct := h.accounts.forLogin(s.User())
	cmd.Dir = h.dir
	if acct.dir != "" {
		cmd.Dir = acct.dir
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: acct.cred}
	cmd.Env = h.environ(acct, s.Environ(), term)
	// Kill the whole process group (the child leads its own: Setpgid for
	// pipes, Setsid for a terminal), not just the shell, so nothing a
	// session started outlives its connection.
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = drainDelay
}

// runPipes runs cmd with the channel as stdin and stdout and the channel's
// stderr stream as stderr, and returns cmd.Wait's error.
func runPipes(cmd *exec.Cmd, s gliderssh.Session) error {
	cmd.SysProcAttr.Setpgid = true // prepare set the credential
	cmd.Stdout = s
	cmd.Stderr = s.Stderr()
	// A pipe we copy into ourselves, not cmd.Stdin = s: exec would make
	// Wait wait for that copy, which blocks until the client sends EOF,
	// and a command that exits without reading its input would hang.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	go func() {
		_, _ = io.Copy(stdin, s) // ends at client EOF or when the channel closes
		stdin.Close()            // half-close: the command sees EOF, the session goes on
	}()
	return cmd.Wait()
}

// runTerminal runs cmd on a new pseudo-terminal of the client's size,
// resizes it on every window-change, and returns cmd.Wait's error after the
// terminal's output has reached the client.
func runTerminal(cmd *exec.Cmd, s gliderssh.Session, win gliderssh.Window, winCh <-chan gliderssh.Window, channelClosed func()) error {
	ptmx, err := pty.StartWithSize(cmd, winsize(win))
	if err != nil {
		return err
	}
	term := &terminal{f: ptmx}
	defer term.close()
	go func() {
		for w := range winCh {
			term.resize(w)
		}
		channelClosed()
	}()
	go func() { _, _ = io.Copy(ptmx, s) }()
	output := make(chan struct{})
	go func() {
		defer close(output)
		_, _ = io.Copy(s, ptmx) // ends with EIO when no process holds the terminal
	}()
	err = cmd.Wait()
	timer := time.NewTimer(drainDelay)
	defer timer.Stop()
	select {
	case <-output:
	case <-timer.C:
	}
	return err
}

// terminal serialises resizing and closing the pty master: pty.Setsize
// reads the descriptor with File.Fd, which must not race with Close.
type terminal struct {
	mu     sync.Mutex
	f      *os.File
	closed bool
}

func (t *terminal) resize(w gliderssh.Window) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		_ = pty.Setsize(t.f, winsize(w)) // a failed resize leaves the old size
	}
}

func (t *terminal) close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closed = true
	t.f.Close()
}

// winsize converts an SSH window size, clamped to what a terminal can hold.
func winsize(w gliderssh.Window) *pty.Winsize {
	clamp := func(n int) uint16 { return uint16(min(max(n, 0), 0xffff)) }
	return &pty.Winsize{Cols: clamp(w.Width), Rows: clamp(w.Height)}
}

// exit reports how the session's process ended, as sshd does: exit-status,
// or exit-signal when a signal killed it, then closes the channel.
func (h *Host) exit(s gliderssh.Session, err error) {
	var exitErr *exec.ExitError
	switch {
	case err == nil:
		_ = s.Exit(0)
	case errors.As(err, &exitErr):
		if ws, ok := exitErr.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			if name, ok := signalNames[ws.Signal()]; ok {
				sendExitSignal(s, name, ws.CoreDump())
				return
			}
			_ = s.Exit(128 + int(ws.Signal()))
			return
		}
		_ = s.Exit(exitErr.ExitCode())
	default:
		// The user sees that the session failed, not why: the cause may
		// name local paths. The log has it.
		h.log.Error("demohost: run session", "err", err, "login", s.User())
		fmt.Fprintln(s.Stderr(), "demohost: cannot start the session; see the demo's log")
		_ = s.Exit(1)
	}
}

// signalNames are the signal names RFC 4254 section 6.10 defines.
var signalNames = map[syscall.Signal]string{
	syscall.SIGABRT: "ABRT", syscall.SIGALRM: "ALRM", syscall.SIGFPE: "FPE",
	syscall.SIGHUP: "HUP", syscall.SIGILL: "ILL", syscall.SIGINT: "INT",
	syscall.SIGKILL: "KILL", syscall.SIGPIPE: "PIPE", syscall.SIGQUIT: "QUIT",
	syscall.SIGSEGV: "SEGV", syscall.SIGTERM: "TERM", syscall.SIGUSR1: "USR1",
	syscall.SIGUSR2: "USR2",
}

func sendExitSignal(s gliderssh.Session, name string, coreDumped bool) {
	msg := struct {
		Signal     string
		CoreDumped bool
		Error      string
		Lang       string
	}{Signal: name, CoreDumped: coreDumped}
	_, _ = s.SendRequest("exit-signal", false, ssh.Marshal(&msg))
	_ = s.Close()
}

// logSession records who opened a session, by the certificate's key ID:
// the name the issuing CA (Warden) gave the credential.
func (h *Host) logSession(s gliderssh.Session, kind string, isPTY bool) {
	attrs := []any{"kind", kind, "login", s.User(), "remote", s.RemoteAddr().String(), "pty", isPTY}
	if cert := sessionCert(s.Context()); cert != nil {
		attrs = append(attrs, "key_id", cert.KeyId, "serial", cert.Serial)
	}
	h.log.Info("demohost: session", attrs...)
}
