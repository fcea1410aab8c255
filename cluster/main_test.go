package cluster

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/pgtest"
)

// pg is the test binary's PostgreSQL server; each test takes a fresh
// database on it. Tests that stop the server start their own.
var pg pgtest.Shared

func TestMain(m *testing.M) {
	code := m.Run()
	if err := pg.Stop(); err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		code = 1
	}
	os.Exit(code)
}

// logBuf is a concurrency-safe log destination the tests read back.
type logBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuf) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuf) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// openBus opens a Postgres bus on dsn, closed at cleanup, logging to log
// (nil: the test log).
func openBus(t *testing.T, dsn string, log *logBuf, retry time.Duration) *Postgres {
	t.Helper()
	var w interface{ Write([]byte) (int, error) } = testWriter{t}
	if log != nil {
		w = log
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := Open(ctx, dsn, Options{Logger: slog.New(slog.NewTextHandler(w, nil)), LeaderRetry: retry})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// testWriter sends log lines to t.Log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(bytes.TrimRight(p, "\n")))
	return len(p), nil
}

// inbox collects a subscriber's messages.
type inbox chan string

func (in inbox) fn(p []byte) { in <- string(p) }

// next waits for the next message; the 30 s is a hang guard on a loaded
// machine, not a timing check.
func (in inbox) next(t *testing.T) string {
	t.Helper()
	select {
	case m := <-in:
		return m
	case <-time.After(30 * time.Second):
		t.Fatal("no message")
		return ""
	}
}

// none checks that nothing arrives for a while.
func (in inbox) none(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case m := <-in:
		t.Fatalf("unexpected message %q", m)
	case <-time.After(d):
	}
}
