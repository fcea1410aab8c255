package gateway

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
)

// A session end the store could not take while it was unreachable is
// written, exactly as it happened, once the store is back; an end the
// store refuses for what it says (already ended, unknown, invalid) is
// given up at once, never retried into a second session.end.
func TestSessionEndsAreRetriedUntilTheStoreTakesThem(t *testing.T) {
	var mu sync.Mutex
	calls := map[string]int{}
	written := map[string]audit.SessionEnd{}
	down := true
	write := func(_ context.Context, id string, end audit.SessionEnd) error {
		mu.Lock()
		defer mu.Unlock()
		calls[id]++
		switch {
		case id == "ended":
			return fmt.Errorf("audit: end session ended: %w", audit.ErrEnded)
		case id == "unknown":
			return fmt.Errorf("audit: end session unknown: %w", audit.ErrNotFound)
		case down:
			return errors.New("dial tcp 127.0.0.1:5432: connect: connection refused")
		}
		if _, dup := written[id]; dup {
			t.Errorf("session %s ended twice", id)
		}
		written[id] = end
		return nil
	}
	r := newEndRetrier(write, slog.New(slog.NewTextHandler(io.Discard, nil)))
	r.every = 5 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.run(ctx)

	results := make(chan string, 3)
	at := time.Date(2026, 12, 2, 14, 0, 0, 0, time.UTC)
	for _, id := range []string{"live", "ended", "unknown"} {
		r.add(id, audit.SessionEnd{EndedAt: at, Reason: "exit", BytesOut: 42, RecordingSHA256: "ab"}, func(sealed bool) {
			results <- fmt.Sprintf("%s:%v", id, sealed)
		})
	}
	got := map[string]bool{}
	for len(got) < 2 {
		got[<-results] = true
	}
	if !got["ended:false"] || !got["unknown:false"] {
		t.Fatalf("refused ends not given up: %v", got)
	}
	// Still down: the live session's end waits, retried.
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := calls["live"]
		mu.Unlock()
		if n >= 3 || time.Now().After(deadline) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r.len() != 1 {
		t.Fatalf("pending while the store is down: %d", r.len())
	}
	mu.Lock()
	down = false
	mu.Unlock()
	if v := <-results; v != "live:true" {
		t.Fatalf("after the store came back: %s", v)
	}
	mu.Lock()
	defer mu.Unlock()
	if e := written["live"]; !e.EndedAt.Equal(at) || e.BytesOut != 42 || e.Reason != "exit" || e.RecordingSHA256 != "ab" {
		t.Fatalf("the end written is not the end that happened: %+v", e)
	}
	if calls["ended"] != 1 || calls["unknown"] != 1 {
		t.Fatalf("refused ends were retried: %v", calls)
	}
	if r.len() != 0 {
		t.Fatalf("pending after all written: %d", r.len())
	}
}

// The store's errors are classified as the retrier needs them.
func TestEndSessionRefusesASecondEndWithErrEnded(t *testing.T) {
	st, err := audit.Open(context.Background(), t.TempDir(), audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx := context.Background()
	if err := st.StartSession(ctx, audit.Session{ID: "s1", User: "alice", Login: "root", Host: "web01", Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	if err := st.EndSession(ctx, "s1", audit.SessionEnd{Reason: "exit"}); err != nil {
		t.Fatal(err)
	}
	err = st.EndSession(ctx, "s1", audit.SessionEnd{Reason: "exit"})
	if !errors.Is(err, audit.ErrEnded) || retriable(err) {
		t.Fatalf("second end: %v (retriable %v)", err, retriable(err))
	}
	if err := st.EndSession(ctx, "nosuch", audit.SessionEnd{Reason: "exit"}); retriable(err) {
		t.Fatalf("unknown session: %v is retriable", err)
	}
}
