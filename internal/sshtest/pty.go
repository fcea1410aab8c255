package sshtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/creack/pty"
)

// PTYSession is "ssh -tt" running under a real pseudo-terminal: the test is
// the person at the keyboard. Its methods that take or hold a testing.TB fail
// the test and must be called from the test's goroutine.
type PTYSession struct {
	t    testing.TB
	cmd  *exec.Cmd
	ptmx *os.File

	mu   sync.Mutex
	out  []byte // everything ssh wrote to the terminal
	mark int    // Expect searches out[mark:]

	more     chan struct{} // holds a token after new output arrived
	readDone chan struct{} // closed when the terminal reached EOF
	exited   chan struct{} // closed when ssh has exited; then exitCode is set
	exitCode int
	waitErr  error
}

// StartPTY runs "ssh -tt OPTIONS -- user@127.0.0.1 args..." on a new
// terminal of cols x rows. With no args, the host starts a login shell. The
// test's cleanup kills ssh if it is still running.
func (c *Client) StartPTY(t testing.TB, port, user string, cols, rows int, args ...string) *PTYSession {
	t.Helper()
	argv := append([]string{"-tt"}, c.Args(port)...)
	argv = append(argv, "--", Dest(user))
	cmd := exec.Command(c.ssh, append(argv, args...)...)
	ptmx, err := pty.StartWithSize(cmd, winsize(cols, rows))
	if err != nil {
		t.Fatalf("sshtest: start ssh on a pty: %v", err)
	}
	s := &PTYSession{
		t:        t,
		cmd:      cmd,
		ptmx:     ptmx,
		more:     make(chan struct{}, 1),
		readDone: make(chan struct{}),
		exited:   make(chan struct{}),
	}
	go s.read()
	go func() {
		err := cmd.Wait()
		s.exitCode = cmd.ProcessState.ExitCode()
		var exitErr *exec.ExitError
		if err != nil && !errors.As(err, &exitErr) {
			s.waitErr = err
		}
		close(s.exited)
	}()
	t.Cleanup(func() {
		select {
		case <-s.exited:
		default:
			_ = cmd.Process.Kill()
			<-s.exited
		}
		ptmx.Close()
		if t.Failed() {
			t.Logf("sshtest: terminal output:\n%s", s.Output())
		}
	})
	return s
}

func winsize(cols, rows int) *pty.Winsize {
	return &pty.Winsize{Cols: uint16(cols), Rows: uint16(rows)}
}

// read collects terminal output until the terminal closes (EIO once ssh
// and every other holder of the terminal have exited).
func (s *PTYSession) read() {
	defer close(s.readDone)
	buf := make([]byte, 4096)
	for {
		n, err := s.ptmx.Read(buf)
		if n > 0 {
			s.mu.Lock()
			s.out = append(s.out, buf[:n]...)
			s.mu.Unlock()
			select {
			case s.more <- struct{}{}:
			default: // a token is already waiting
			}
		}
		if err != nil {
			return
		}
	}
}

// Send types str on the terminal. Use "\r" for the Enter key.
func (s *PTYSession) Send(str string) {
	s.t.Helper()
	if _, err := s.ptmx.Write([]byte(str)); err != nil {
		s.t.Fatalf("sshtest: type %q: %v", str, err)
	}
}

// Expect waits until the output after the previous match matches the
// regular expression re and returns the match; the next Expect searches
// after it. The typed input is echoed into the output, so re should match
// what the command prints, not what was typed. On timeout or end of output
// it fails the test with the output so far.
func (s *PTYSession) Expect(t testing.TB, re string, timeout time.Duration) string {
	t.Helper()
	rx, err := regexp.Compile(re)
	if err != nil {
		t.Fatalf("sshtest: Expect(%q): %v", re, err)
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	ended := false
	for {
		s.mu.Lock()
		if loc := rx.FindIndex(s.out[s.mark:]); loc != nil {
			m := string(s.out[s.mark+loc[0] : s.mark+loc[1]])
			s.mark += loc[1]
			s.mu.Unlock()
			return m
		}
		s.mu.Unlock()
		if ended {
			t.Fatalf("sshtest: terminal closed before %q appeared; output:\n%s", re, s.Output())
		}
		select {
		case <-s.more:
		case <-s.readDone:
			ended = true // look once more: the last output may hold the match
		case <-timer.C:
			t.Fatalf("sshtest: %q not seen within %v; output so far:\n%s", re, timeout, s.Output())
		}
	}
}

// Resize sets the terminal to cols x rows. The kernel signals ssh, which
// sends a window-change request; the host sees the new size a moment later,
// so a test should poll on the host side (for example loop on "stty size")
// rather than assume the very next command sees it.
func (s *PTYSession) Resize(cols, rows int) {
	s.t.Helper()
	if err := pty.Setsize(s.ptmx, winsize(cols, rows)); err != nil {
		s.t.Fatalf("sshtest: resize terminal to %dx%d: %v", cols, rows, err)
	}
}

// Wait waits for ssh to exit and for its last output to be read, then
// returns ssh's exit status (255 when ssh itself failed, -1 when killed by a
// signal). It returns an error if ssh is still running after timeout; the
// test's cleanup then kills it.
func (s *PTYSession) Wait(timeout time.Duration) (exitCode int, err error) {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-s.exited:
	case <-timer.C:
		return -1, fmt.Errorf("sshtest: ssh still running after %v", timeout)
	}
	select {
	case <-s.readDone:
	case <-timer.C:
		return s.exitCode, fmt.Errorf("sshtest: terminal still open after %v", timeout)
	}
	return s.exitCode, s.waitErr
}

// Output returns everything ssh has written to the terminal so far.
func (s *PTYSession) Output() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.out)
}
