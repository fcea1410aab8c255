package jit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
)

func TestEmptyOptionalValuesAreNull(t *testing.T) {
	e := newEnv(t)
	r := e.request("alice", "db-admin", time.Hour, "", "CHG-1")
	e.approve("carol", r.ID)
	var nulls int
	if err := e.store.DB().QueryRow(`SELECT CASE WHEN reason IS NULL THEN 1 ELSE 0 END + CASE WHEN decided_at IS NULL THEN 1 ELSE 0 END FROM requests WHERE id = ?`, r.ID).Scan(&nulls); err != nil || nulls != 2 {
		t.Errorf("requests NULLs = %d, %v", nulls, err)
	}
	if err := e.store.DB().QueryRow(`SELECT count(*) FROM approvals WHERE comment IS NULL`).Scan(&nulls); err != nil || nulls != 1 {
		t.Errorf("approvals with NULL comment = %d, %v", nulls, err)
	}
}

func TestCorruptRowsAreErrorsNotZeroValues(t *testing.T) {
	tests := []struct {
		name, insert, want string
		list               func(e *env) error
	}{
		{"bad duration",
			`INSERT INTO requests (user, role, tenant, duration, state, created_at) VALUES ('a', 'r', 't', 'forever', 'pending', '2026-11-29T09:00:00.000000Z')`,
			`bad duration "forever"`,
			func(e *env) error { _, err := e.svc.AllRequests(context.Background()); return err }},
		{"bad request time",
			`INSERT INTO requests (user, role, tenant, duration, state, created_at) VALUES ('a', 'r', 't', '1h0m0s', 'pending', 'yesterday')`,
			`bad time "yesterday"`,
			func(e *env) error { _, err := e.svc.AllRequests(context.Background()); return err }},
		{"bad grant time",
			`INSERT INTO grants (user, role, tenant, starts_at, expires_at) VALUES ('a', 'r', 't', '2026-11-29T09:00:00.000000Z', '2026-11-29 10:00')`,
			`bad time "2026-11-29 10:00"`,
			func(e *env) error { _, err := e.svc.AllGrants(context.Background()); return err }},
		{"bad grant at start of Run",
			`INSERT INTO grants (user, role, tenant, starts_at, expires_at) VALUES ('a', 'r', 't', 'x', '2026-11-29T10:00:00.000000Z')`,
			`bad time "x"`,
			func(e *env) error { return e.svc.Run(context.Background()) }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			if err := e.store.Update(context.Background(), func(tx *audit.Tx) error {
				_, err := tx.Exec(tc.insert)
				return err
			}); err != nil {
				t.Fatal(err)
			}
			err := tc.list(e)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error = %v, want one mentioning %s", err, tc.want)
			}
			if _, shown := UserMessage(err); shown {
				t.Errorf("corrupt data reported as a user error: %v", err)
			}
		})
	}
}

func TestGrantWithoutRequest(t *testing.T) {
	// grants.request_id may be NULL (e.g. a future import); such a grant
	// still lists, expires and ends with empty request data.
	e := newEnv(t)
	if err := e.store.Update(context.Background(), func(tx *audit.Tx) error {
		_, err := tx.Exec(`INSERT INTO grants (user, role, tenant, starts_at, expires_at)
			VALUES ('alice', 'prod-root', 'acme', '2026-11-29T09:00:00.000000Z', '2026-11-29T09:30:00.000000Z')`)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	e.run()
	e.clock.WaitArmed(t, t0.Add(25*time.Minute))
	e.clock.Set(t0.Add(30 * time.Minute))
	if end := e.nextEnd(); end.RequestID != 0 || end.EndReason != EndExpired {
		t.Errorf("ended %+v", end)
	}
	if evs := e.events(EventGrantExpired); len(evs) != 1 || evs[0].Data["reason"] != "" {
		t.Errorf("events %+v", evs)
	}
}
