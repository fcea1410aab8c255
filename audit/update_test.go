package audit

import (
	"context"
	"errors"
	"testing"
)

func TestUpdateCommitsRowsAndEventsTogether(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	err := s.Update(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(`INSERT INTO requests (user, role, tenant, reason, ticket, duration, state, created_at)
			VALUES ('alice', 'prod-root', 'acme', 'INC-1', '', '1h0m0s', 'pending', '2026-11-29T10:00:00.000000Z')`); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(`SELECT count(*) FROM requests`).Scan(&n); err != nil || n != 1 {
			t.Errorf("tx does not see its own write: %d %v", n, err)
		}
		return tx.Append(Event{TS: at("2026-11-29T10:00:00Z"), Type: "request.created", Actor: "alice", Subject: "request:1",
			Data: map[string]any{"request_id": 1, "user": "alice", "role": "prod-root", "tenant": "acme", "reason": "INC-1", "duration": "1h0m0s"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err = s.Update(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(`UPDATE requests SET state = 'approved'`); err != nil {
			return err
		}
		if err := tx.Append(Event{Type: "request.approved"}); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	var state string
	if err := s.DB().QueryRow(`SELECT state FROM requests`).Scan(&state); err != nil || state != "pending" {
		t.Fatalf("rolled-back update stored: %q %v", state, err)
	}
	evs, err := s.Events(ctx, 0, 10)
	if err != nil || len(evs) != 1 || evs[0].Type != "request.created" {
		t.Fatalf("events %+v %v", evs, err)
	}
	// The chain stays valid after a rolled-back append.
	if err := s.Append(ctx, Event{Type: "after"}); err != nil {
		t.Fatal(err)
	}
	rep, err := Verify(ctx, dir)
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("verify %+v %v", rep, err)
	}
}

// A second Store on the same database (the CLI writing while the gateway
// runs) must not fork or break the chain.
func TestTwoStoresShareOneChain(t *testing.T) {
	dir := t.TempDir()
	a := openStore(t, dir)
	b := openStore(t, dir)
	ctx := context.Background()
	for i := 0; i < 5; i++ {
		if err := a.Append(ctx, Event{Type: "from.a"}); err != nil {
			t.Fatalf("a %d: %v", i, err)
		}
		if err := b.Append(ctx, Event{Type: "from.b"}); err != nil {
			t.Fatalf("b %d: %v", i, err)
		}
	}
	rep, err := Verify(ctx, dir)
	if err != nil || len(rep.Problems) != 0 || rep.Events != 10 {
		t.Fatalf("verify %+v %v", rep, err)
	}
}
