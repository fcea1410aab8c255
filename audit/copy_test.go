package audit

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// fillSQLite writes a little of every kind of row into a SQLite store.
func fillSQLite(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	err := s.Update(ctx, func(tx *Tx) error {
		for _, q := range []string{
			`INSERT INTO requests (user, role, tenant, reason, duration, state, created_at, decided_at) VALUES ('alice', 'prod-root', 'acme', 'fix it', '2h0m0s', 'approved', '2026-01-01T00:00:00Z', '2026-01-01T00:02:00Z')`,
			`INSERT INTO approvals (request_id, approver, decision, ts) VALUES (1, 'bob', 'approved', '2026-01-01T00:01:00Z')`,
			`INSERT INTO approvals (request_id, approver, decision, comment, ts) VALUES (1, 'carol', 'approved', 'ok', '2026-01-01T00:02:00Z')`,
			`INSERT INTO grants (request_id, user, role, tenant, starts_at, expires_at) VALUES (1, 'alice', 'prod-root', 'acme', '2026-01-01T00:02:00Z', '2026-01-01T02:02:00Z')`,
			`INSERT INTO exceptions (tenant, owner, reason, controls, expires_at, created_by, created_at) VALUES ('acme', 'dave', 'legacy', 'watch', '2026-02-01T00:00:00Z', 'admin', '2026-01-01T00:00:00Z')`,
			`INSERT INTO console_links (token_sha256, user, fingerprint, created_at, expires_at) VALUES ('aa', 'alice', 'SHA256:x', '2026-01-01T00:00:00Z', '2026-01-01T00:05:00Z')`,
			`INSERT INTO console_sessions (id, token_sha256, user, method, link_id, created_at, last_seen) VALUES ('cs1', 'bb', 'alice', 'link', 1, '2026-01-01T00:00:00Z', '2026-01-01T00:00:00Z')`,
		} {
			if _, err := tx.Exec(q); err != nil {
				return fmt.Errorf("%s: %w", q, err)
			}
		}
		// Verify checks the rows of requests, approvals and grants against
		// their events, as package jit writes them.
		req := map[string]any{"request_id": 1, "user": "alice", "role": "prod-root", "tenant": "acme", "reason": "fix it", "duration": "2h0m0s"}
		for _, e := range []Event{
			{TS: at("2026-01-01T00:00:00Z"), Type: "request.created", Actor: "alice", Subject: "request:1", Data: req},
			{TS: at("2026-01-01T00:01:00Z"), Type: "approval.recorded", Actor: "bob", Subject: "request:1", Data: map[string]any{"request_id": 1, "approver": "bob"}},
			{TS: at("2026-01-01T00:02:00Z"), Type: "approval.recorded", Actor: "carol", Subject: "request:1", Data: map[string]any{"request_id": 1, "approver": "carol", "comment": "ok"}},
			{TS: at("2026-01-01T00:02:00Z"), Type: "request.approved", Actor: "carol", Subject: "request:1", Data: req},
			{TS: at("2026-01-01T00:02:00Z"), Type: "grant.started", Actor: "carol", Subject: "grant:1", Data: map[string]any{"grant_id": 1, "request_id": 1,
				"user": "alice", "role": "prod-root", "tenant": "acme", "starts_at": "2026-01-01T00:02:00Z", "expires_at": "2026-01-01T02:02:00Z"}},
		} {
			if err := tx.Append(e); err != nil {
				return err
			}
		}
		return tx.Append(Event{Type: "grant.issued", Actor: "bob", Subject: "alice", Data: map[string]any{"grant": 1, "note": "é ünïcode"}})
	})
	if err != nil {
		t.Fatal(err)
	}
	sess := testSession("S1")
	sess.GrantID = 1
	mustStart(t, s, sess, testSession("S2"))
	for i := range 3 {
		if err := s.LogCommand(ctx, Command{SessionID: "S1", User: "alice", Login: "root", Host: "web01", Tenant: "acme",
			Source: SourceShell, Command: fmt.Sprintf("cmd%d", i), Action: ActionAllowed}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.EndSession(ctx, "S1", SessionEnd{Reason: "exit"}); err != nil {
		t.Fatal(err)
	}
}

// copyCounts returns every copied table's row count, and the chain head.
func copyCounts(t *testing.T, r *Reader) map[string]int64 {
	t.Helper()
	out := map[string]int64{}
	for _, tbl := range []string{"requests", "approvals", "grants", "exceptions", "console_links", "console_sessions", "sessions", "commands", "audit_events", "policy_versions"} {
		var n int64
		if err := r.DB().QueryRow(`SELECT COUNT(*) FROM ` + tbl).Scan(&n); err != nil {
			t.Fatalf("%s: %v", tbl, err)
		}
		out[tbl] = n
	}
	var h string
	if err := r.DB().QueryRow(`SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1`).Scan(&h); err != nil {
		t.Fatal(err)
	}
	out["head:"+h] = 1
	return out
}

func openCopySource(t *testing.T, dir string) *Reader {
	t.Helper()
	r, err := OpenReader(context.Background(), dir, Backend{Driver: DriverSQLite})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func pgReader(t *testing.T, dir string, b Backend) *Reader {
	t.Helper()
	r, err := OpenReader(context.Background(), dir, b)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func TestCopyToPostgresKeepsRowsAndChainAndIsIdempotent(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	lite := openSQLiteStore(t, dir)
	fillSQLite(t, lite)
	lite.Close()
	src := openCopySource(t, dir)
	want := copyCounts(t, src)

	b := Backend{Driver: DriverPostgres, DSN: pgServer.Database(t)}
	rep, err := CopyToPostgres(ctx, src, dir, b, Options{Now: (&clock{}).Now})
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	if len(rep.Verify.Problems) != 0 || rep.Verify.Events == 0 {
		t.Fatalf("verify after copy: %+v", rep.Verify)
	}
	pg := pgReader(t, dir, b)
	if got := copyCounts(t, pg); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("PostgreSQL rows %v, SQLite %v", got, want)
	}
	// The events are byte for byte the same.
	var ls, ps string
	for _, x := range []struct {
		r   *Reader
		out *string
	}{{src, &ls}, {pg, &ps}} {
		rows, err := x.r.DB().Query(`SELECT seq, ts, type, actor, subject, data, prev_hash, hash FROM audit_events ORDER BY seq`)
		if err != nil {
			t.Fatal(err)
		}
		var sb strings.Builder
		for rows.Next() {
			var seq int64
			var a, b2, c, d, e, f, g string
			if err := rows.Scan(&seq, &a, &b2, &c, &d, &e, &f, &g); err != nil {
				t.Fatal(err)
			}
			fmt.Fprintf(&sb, "%d|%s|%s|%s|%s|%s|%s|%s\n", seq, a, b2, c, d, e, f, g)
		}
		rows.Close()
		*x.out = sb.String()
	}
	if ls != ps {
		t.Fatalf("events differ:\nsqlite %s\npostgres %s", ls, ps)
	}

	// A second run copies nothing and changes nothing.
	rep2, err := CopyToPostgres(ctx, src, dir, b, Options{Now: (&clock{}).Now})
	if err != nil {
		t.Fatalf("second copy: %v", err)
	}
	for _, tc := range rep2.Tables {
		if tc.Copied != 0 {
			t.Errorf("second run copied %d rows of %s", tc.Copied, tc.Table)
		}
	}
	if got := copyCounts(t, pg); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("after a second run: %v, want %v", got, want)
	}

	// New rows on PostgreSQL continue the chain with fresh ids.
	s, err := Open(ctx, dir, Options{Now: (&clock{}).Now, Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.LogCommand(ctx, Command{SessionID: "S2", User: "alice", Login: "root", Host: "web01", Tenant: "acme",
		Source: SourceShell, Command: "after", Action: ActionAllowed}); err != nil {
		t.Fatalf("new command after copy (setval?): %v", err)
	}
	if err := s.Update(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(`INSERT INTO requests (user, role, tenant, duration, state, created_at) VALUES ('eve', 'r', 'acme', '1h0m0s', 'pending', '2026-01-02T00:00:00Z')`); err != nil {
			return err
		}
		return tx.Append(Event{TS: at("2026-01-02T00:00:00Z"), Type: "request.created", Actor: "eve", Subject: "request:2",
			Data: map[string]any{"request_id": 2, "user": "eve", "role": "r", "tenant": "acme", "duration": "1h0m0s"}})
	}); err != nil {
		t.Fatalf("new request after copy (setval?): %v", err)
	}
	var maxReq, maxCmd int64
	pg.DB().QueryRow(`SELECT MAX(id) FROM requests`).Scan(&maxReq)
	pg.DB().QueryRow(`SELECT MAX(id) FROM commands`).Scan(&maxCmd)
	if maxReq != want["requests"]+1 || maxCmd != want["commands"]+1 {
		t.Errorf("new ids: request %d, command %d; want %d, %d", maxReq, maxCmd, want["requests"]+1, want["commands"]+1)
	}
	v, err := pg.Verify(ctx, dir)
	if err != nil || len(v.Problems) != 0 || int64(v.Events) != want["audit_events"]+1 {
		t.Fatalf("verify after a new append: %+v %v", v, err)
	}

	// Now the target has an event the source lacks: refused.
	if _, err := CopyToPostgres(ctx, src, dir, b, Options{Now: (&clock{}).Now}); err == nil || !strings.Contains(err.Error(), "another chain") {
		t.Fatalf("copy onto a longer chain: %v", err)
	}
}

func TestCopyToPostgresConflictChangesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	lite := openSQLiteStore(t, dir)
	fillSQLite(t, lite)
	lite.Close()
	src := openCopySource(t, dir)
	b := Backend{Driver: DriverPostgres, DSN: pgServer.Database(t)}
	if _, err := CopyToPostgres(ctx, src, dir, b, Options{Now: (&clock{}).Now}); err != nil {
		t.Fatal(err)
	}
	// Edit one copied row in PostgreSQL, and add a row to SQLite.
	db, err := openPostgres(ctx, b, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE exceptions SET owner = 'mallory' WHERE id = 1`); err != nil {
		t.Fatal(err)
	}
	src.Close()
	lite = openSQLiteStore(t, dir)
	mustStart(t, lite, testSession("S3"))
	lite.Close()
	src = openCopySource(t, dir)
	_, err = CopyToPostgres(ctx, src, dir, b, Options{Now: (&clock{}).Now})
	if err == nil || !strings.Contains(err.Error(), `exceptions row id="1" is already in PostgreSQL with a different owner`) {
		t.Fatalf("conflict: %v", err)
	}
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM sessions WHERE id = 'S3'`).Scan(&n)
	if n != 0 {
		t.Fatal("a refused copy still copied S3")
	}
}

func TestCopyToPostgresRefusesNULByte(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	lite := openSQLiteStore(t, dir)
	fillSQLite(t, lite)
	if err := lite.Update(ctx, func(tx *Tx) error {
		_, err := tx.Exec(`INSERT INTO exceptions (tenant, owner, reason, controls, expires_at, created_by, created_at) VALUES ('acme', 'dave', ?, 'watch', '2026-02-01T00:00:00Z', 'admin', '2026-01-01T00:00:00Z')`, "bad\x00reason")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	lite.Close()
	src := openCopySource(t, dir)
	b := Backend{Driver: DriverPostgres, DSN: pgServer.Database(t)}
	_, err := CopyToPostgres(ctx, src, dir, b, Options{Now: (&clock{}).Now})
	if err == nil || !strings.Contains(err.Error(), `exceptions row id="2" column reason: holds a NUL byte`) {
		t.Fatalf("NUL byte: %v", err)
	}
	db, err := openPostgres(ctx, b, false)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	db.QueryRow(`SELECT COUNT(*) FROM audit_events`).Scan(&n)
	if n != 0 {
		t.Fatalf("a refused copy left %d events", n)
	}

	// Invalid UTF-8 likewise, once the NUL row is gone.
	src.Close()
	lite = openSQLiteStore(t, dir)
	if err := lite.Update(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(`DELETE FROM exceptions WHERE id = 2`); err != nil {
			return err
		}
		_, err := tx.Exec(`UPDATE console_sessions SET user_agent = ? WHERE id = 'cs1'`, "curl\xff\xfe")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	lite.Close()
	src = openCopySource(t, dir)
	_, err = CopyToPostgres(ctx, src, dir, b, Options{Now: (&clock{}).Now})
	if err == nil || !strings.Contains(err.Error(), `console_sessions row id="cs1" column user_agent: holds invalid UTF-8`) {
		t.Fatalf("invalid UTF-8: %v", err)
	}
	db.QueryRow(`SELECT COUNT(*) FROM audit_events`).Scan(&n)
	if n != 0 {
		t.Fatalf("a refused copy left %d events", n)
	}
}
