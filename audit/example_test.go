package audit_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/warden-gw/warden/audit"
)

func Example() {
	dir, err := os.MkdirTemp("", "warden-data")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	ctx := context.Background()
	now := func() time.Time { return time.Date(2026, 11, 29, 8, 0, 0, 0, time.UTC) }

	st, err := audit.Open(ctx, dir, audit.Options{Now: now})
	if err != nil {
		log.Fatal(err)
	}
	sess := audit.Session{ID: "k3J9x", User: "alice", Login: "root", Host: "web01", Tenant: "acme", Role: "prod-root"}
	if err := st.StartSession(ctx, sess); err != nil {
		log.Fatal(err) // fail closed: a session that cannot be recorded does not run
	}
	if err := st.Append(ctx, audit.Event{Type: "session.start", Actor: "alice", Subject: sess.ID}); err != nil {
		log.Fatal(err)
	}
	if err := st.EndSession(ctx, sess.ID, audit.SessionEnd{Reason: "exit"}); err != nil {
		log.Fatal(err)
	}
	if err := st.Close(); err != nil {
		log.Fatal(err)
	}

	rep, err := audit.Verify(ctx, dir)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("events %d, problems %d\n", rep.Events, len(rep.Problems))
	// Output: events 2, problems 0
}
