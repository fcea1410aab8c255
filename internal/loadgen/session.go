package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"
)

// Session is one interactive session: its own connection, a pty and a
// shell.
type Session struct {
	// ID is the session's index in Open, 0 to Sessions-1.
	ID int

	client *ssh.Client
	sess   *ssh.Session
	stdin  io.WriteCloser
	out    *tail
}

// start asks for the pty and the shell, and waits for the first line.
func (s *Session) start(ctx context.Context, opt Options) error {
	sess, err := s.client.NewSession()
	if err != nil {
		return err
	}
	s.sess = sess
	if err := sess.RequestPty(opt.Term, opt.Rows, opt.Cols, ssh.TerminalModes{ssh.ECHO: 1}); err != nil {
		return fmt.Errorf("pty: %w", err)
	}
	if s.stdin, err = sess.StdinPipe(); err != nil {
		return err
	}
	// x/crypto copies the output into these writers on its own goroutine.
	sess.Stdout, sess.Stderr = s.out, s.out
	if err := sess.Shell(); err != nil {
		return fmt.Errorf("shell: %w", err)
	}
	return s.Ping(ctx)
}

// Ping types a line that makes the shell print a marker it computes,
// and waits for the marker: the session's whole path, both ways, works.
func (s *Session) Ping(ctx context.Context) error {
	tag := fmt.Sprintf("loadgen-%d-%d", s.ID, time.Now().UnixNano())
	return s.Run(ctx, "echo "+tag+"-$((6*7))", tag+"-42")
}

// Run types line and Enter into the shell and waits until want appears in
// the output that follows.
func (s *Session) Run(ctx context.Context, line, want string) error {
	mark := s.out.mark()
	if _, err := io.WriteString(s.stdin, line+"\n"); err != nil {
		return fmt.Errorf("type: %w", err)
	}
	return s.out.wait(ctx, mark, want)
}

// Close types exit and waits for the session to end, then closes its
// connection. If ctx ends first, the connection is closed anyway and the
// error says so.
func (s *Session) Close(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- s.sess.Wait() }()
	err := s.end(ctx, done)
	// Closing first is fine: the server may already have closed it.
	_ = s.client.Close()
	if err != nil {
		<-done // Wait returns once the connection is closed
	}
	return err
}

func (s *Session) end(ctx context.Context, done <-chan error) error {
	if _, err := io.WriteString(s.stdin, "exit\n"); err != nil {
		return fmt.Errorf("type exit: %w", err)
	}
	select {
	case err := <-done:
		var exit *ssh.ExitError
		if err != nil && !errors.As(err, &exit) {
			return err
		}
		return nil
	case <-ctx.Done():
		return fmt.Errorf("did not end: %w", ctx.Err())
	}
}

// Output returns up to the last tailSize bytes the session printed.
func (s *Session) Output() []byte { return s.out.bytes() }

// tailSize is how much of a session's output is kept: enough for the
// marker of the line typed last, whatever the shell printed around it.
const tailSize = 16 << 10

// tail keeps the end of a session's output and wakes those waiting for
// a string in it.
type tail struct {
	mu      sync.Mutex
	buf     []byte
	total   int64         // bytes ever written
	changed chan struct{} // closed and replaced on every write
}

func newTail() *tail { return &tail{changed: make(chan struct{})} }

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - tailSize; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	t.total += int64(len(p))
	close(t.changed)
	t.changed = make(chan struct{})
	return len(p), nil
}

// mark is the position from which a wait looks.
func (t *tail) mark() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.total
}

// wait returns when want appears in what was written after mark (as far
// as the tail still holds it), or when ctx ends.
func (t *tail) wait(ctx context.Context, mark int64, want string) error {
	for {
		t.mu.Lock()
		since := t.buf
		if skip := int64(len(t.buf)) - (t.total - mark); skip > 0 {
			since = t.buf[skip:]
		}
		found := bytes.Contains(since, []byte(want))
		changed := t.changed
		t.mu.Unlock()
		if found {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("%q not seen: %w", want, ctx.Err())
		}
	}
}

func (t *tail) bytes() []byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]byte(nil), t.buf...)
}
