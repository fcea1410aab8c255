package audit

import (
	"context"
	"database/sql"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// t0 is the start of every test clock.
var t0 = time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC)

// clock is a deterministic Options.Now: each call is one millisecond after
// the previous one. It is safe for concurrent use.
type clock struct{ n atomic.Int64 }

func (c *clock) Now() time.Time { return t0.Add(time.Duration(c.n.Add(1)) * time.Millisecond) }

// openStore opens a Store in dir with a test clock and closes it at cleanup.
func openStore(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), dir, Options{Now: (&clock{}).Now})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// testSession returns a valid session with the given ID.
func testSession(id string) Session {
	return Session{ID: id, User: "alice", Login: "root", Host: "web01", Tenant: "acme", Role: "prod-root"}
}

// mustStart starts sessions or fails the test.
func mustStart(t *testing.T, s *Store, sessions ...Session) {
	t.Helper()
	for _, sess := range sessions {
		if err := s.StartSession(context.Background(), sess); err != nil {
			t.Fatalf("StartSession(%s): %v", sess.ID, err)
		}
	}
}

// blockWriter parks the writer goroutine inside an open transaction until
// the returned release func is called, so tests can queue writes behind it.
func blockWriter(t *testing.T, s *Store, inTx func(*sql.Tx) error) (release func()) {
	t.Helper()
	entered, rel, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- s.write(context.Background(), func(tx *sql.Tx, _ *chainTip) error {
			var err error
			if inTx != nil {
				err = inTx(tx)
			}
			close(entered)
			<-rel
			return err
		})
	}()
	<-entered
	return func() {
		close(rel)
		if err := <-done; err != nil {
			t.Errorf("blocking write: %v", err)
		}
	}
}

// waitQueued waits until n writes wait in the queue.
func waitQueued(t *testing.T, s *Store, n int) {
	t.Helper()
	for len(s.ops) < n {
		time.Sleep(time.Millisecond)
	}
}

// rawDB opens the database in dir as a plain writable sqlite3 connection,
// the way a tamperer with file access would, bypassing the Store.
func rawDB(t *testing.T, dir string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite3", filepath.Join(dir, DBName))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// assertChain checks that the store holds n events and verifies cleanly.
func assertChain(t *testing.T, s *Store, dir string, n int) {
	t.Helper()
	ev, err := s.Events(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev) != n {
		t.Fatalf("%d events, want %d", len(ev), n)
	}
	rep, err := Verify(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != n || len(rep.Problems) > 0 {
		t.Fatalf("Verify: %d events, problems %v", rep.Events, rep.Problems)
	}
}
