package audit

import (
	"context"
	"database/sql"
	"errors"
	"strings"
	"testing"
)

func TestRefusedWriteDoesNotUndoItsBatch(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	release := blockWriter(t, s, nil)

	// Four writes queue behind the blocked writer and so share one batch;
	// one of the two starts of S1 must fail on the primary key.
	errs := make(chan error, 4)
	go func() { errs <- s.StartSession(ctx, testSession("S1")) }()
	go func() { errs <- s.StartSession(ctx, testSession("S1")) }()
	go func() { errs <- s.StartSession(ctx, testSession("S2")) }()
	go func() { errs <- s.Append(ctx, Event{Type: "session.start", Subject: "S2"}) }()
	waitQueued(t, s, 4)
	release()

	var failed int
	for range 4 {
		if err := <-errs; err != nil {
			failed++
			if !strings.Contains(err.Error(), "UNIQUE") && !strings.Contains(err.Error(), "duplicate key") {
				t.Errorf("unexpected error: %v", err)
			}
		}
	}
	if failed != 1 {
		t.Fatalf("%d writes failed, want exactly the duplicate", failed)
	}
	for _, id := range []string{"S1", "S2"} {
		if _, err := s.Session(ctx, id); err != nil {
			t.Errorf("session %s: %v", id, err)
		}
	}
	if ev, err := s.Events(ctx, 0, 0); err != nil || len(ev) != 1 {
		t.Errorf("events = %d, %v; want 1", len(ev), err)
	}
}

func TestFailedWriteDoesNotAdvanceTheChain(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	// A write that appends an event and then fails: its savepoint is rolled
	// back, and the chain head must go back with it.
	boom := errors.New("boom")
	err := s.write(ctx, func(tx *sql.Tx, tip *chainTip) error {
		if err := appendEvent(tx, tip, eventRow{ts: "2026-11-29T08:00:00.000000Z", typ: "x", data: "{}"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("write: %v", err)
	}
	if err := s.Append(ctx, Event{Type: "after"}); err != nil {
		t.Fatal(err)
	}
	assertChain(t, s, dir, 1)
}

func TestBrokenTransactionFailsWholeBatchAndRestoresChain(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	if err := s.Append(ctx, Event{Type: "before"}); err != nil {
		t.Fatal(err)
	}
	release := blockWriter(t, s, nil)
	errs := make(chan error, 2)
	go func() { errs <- s.Append(ctx, Event{Type: "lost"}) }()
	waitQueued(t, s, 1)
	// This write ends the batch's transaction behind the writer's back, so
	// the batch cannot commit: both writes must report failure.
	go func() {
		errs <- s.write(ctx, func(tx *sql.Tx, tip *chainTip) error {
			if err := appendEvent(tx, tip, eventRow{ts: "2026-11-29T08:00:00.000000Z", typ: "x", data: "{}"}); err != nil {
				return err
			}
			_, err := tx.Exec("ROLLBACK")
			return err
		})
	}()
	waitQueued(t, s, 2)
	release()
	for range 2 {
		if err := <-errs; err == nil {
			t.Error("a write of the broken batch reported success")
		}
	}
	if err := s.Append(ctx, Event{Type: "after"}); err != nil {
		t.Fatal(err)
	}
	assertChain(t, s, dir, 2)
}
