package evidence

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/warden-gw/warden/internal/pgtest"
	"time"

	"github.com/warden-gw/warden/audit"
)

// Sizes of the generated tenant-month.
const (
	scaleSessions = 1200
	scaleCommands = 20400 // 17 per session
	scaleRequests = 400
)

// scaleMonth fills October 2026 of tenant acme with scaleSessions sessions
// and scaleCommands commands (a twentieth of them denied), scaleRequests
// requests with their approvals and grants, exceptions, and noise in
// tenant beta and in the neighbouring months that the packet must ignore.
// Rows go in through a few large writer transactions.
func scaleMonth(t testing.TB) *world {
	w := newWorld(t, at("2026-10-01T00:00:00Z"))
	start := at("2026-10-01T00:00:00Z")
	ts := func(d time.Duration) string {
		s, err := audit.Time(start.Add(d))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	users := []string{"alice", "dave", "gina"}
	states := []string{"expired", "revoked", "relinquished", "denied", "pending"}
	err := w.st.Update(w.ctx, func(tx *audit.Tx) error {
		for i := 0; i < scaleRequests; i++ {
			created := time.Duration(i) * 100 * time.Minute // spread over ~28 days
			user, role, state := users[i%2], "prod-root", states[i%len(states)]
			reqState := state // as package jit stores it: approved stays approved
			if state != "denied" && state != "pending" {
				reqState = "approved"
			}
			if i%50 == 0 {
				user, role = "dave", "break-glass"
			}
			decided := any(ts(created + 5*time.Minute))
			if state == "pending" {
				decided = nil
			}
			// Each row with its events, as package jit writes them: the
			// packet compares them (audit.CheckRows), at this scale too.
			ev := func(d time.Duration, typ string, data map[string]any) error {
				subject := fmt.Sprintf("request:%d", i+1)
				if strings.HasPrefix(typ, "grant.") {
					subject = fmt.Sprintf("grant:%d", i+1)
				}
				return tx.Append(audit.Event{TS: start.Add(d), Type: typ, Actor: "warden", Subject: subject, Data: data})
			}
			req := map[string]any{"request_id": i + 1, "user": user, "role": role, "tenant": "acme", "reason": "INC", "duration": "1h0m0s"}
			if _, err := tx.Exec(`INSERT INTO requests (id, user, role, tenant, reason, ticket, duration, state, created_at, decided_at)
				VALUES (?, ?, ?, 'acme', 'INC', NULL, '1h0m0s', ?, ?, ?)`, i+1, user, role, reqState, ts(created), decided); err != nil {
				return err
			}
			if err := ev(created, "request.created", req); err != nil {
				return err
			}
			if state == "pending" {
				continue
			}
			decided5 := created + 5*time.Minute
			decision, typ := "approved", "approval.recorded"
			if state == "denied" {
				decision, typ = "denied", "request.denied"
			}
			if _, err := tx.Exec(`INSERT INTO approvals (request_id, approver, decision, ts) VALUES (?, 'carol', ?, ?)`,
				i+1, decision, ts(decided5)); err != nil {
				return err
			}
			if err := ev(decided5, typ, map[string]any{"request_id": i + 1, "approver": "carol"}); err != nil {
				return err
			}
			if role == "break-glass" {
				if _, err := tx.Exec(`INSERT INTO approvals (request_id, approver, decision, ts) VALUES (?, 'erin', 'approved', ?)`,
					i+1, ts(decided5)); err != nil {
					return err
				}
				if err := ev(decided5, "approval.recorded", map[string]any{"request_id": i + 1, "approver": "erin"}); err != nil {
					return err
				}
			}
			if state == "denied" {
				continue
			}
			life := time.Duration(10+i%110) * time.Minute
			if _, err := tx.Exec(`INSERT INTO grants (id, request_id, user, role, tenant, starts_at, expires_at, ended_at, end_reason)
				VALUES (?, ?, ?, ?, 'acme', ?, ?, ?, ?)`, i+1, i+1, user, role, ts(decided5),
				ts(decided5+2*time.Hour), ts(decided5+life), state); err != nil {
				return err
			}
			for _, e := range []struct {
				d    time.Duration
				typ  string
				data map[string]any
			}{
				{decided5, "request.approved", req},
				{decided5, "grant.started", map[string]any{"grant_id": i + 1, "request_id": i + 1, "user": user, "role": role, "tenant": "acme",
					"starts_at": ts(decided5), "expires_at": ts(decided5 + 2*time.Hour)}},
				{decided5 + life, "grant." + state, map[string]any{"grant_id": i + 1, "ended_at": ts(decided5 + life), "end_reason": state}},
			} {
				if err := ev(e.d, e.typ, e.data); err != nil {
					return err
				}
			}
		}
		for i := 0; i < scaleSessions; i++ {
			id := fmt.Sprintf("scale%05d", i)
			started := time.Duration(i) * 33 * time.Minute
			rel := "recordings/" + start.Add(started).Format(time.DateOnly) + "/" + id + ".cast"
			body := []byte(`{"version":2}` + "\n" + `[0.1,"o","` + id + `"]` + "\n")
			if err := os.MkdirAll(filepath.Join(w.dir, filepath.Dir(rel)), 0o700); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(w.dir, rel), body, 0o600); err != nil {
				return err
			}
			sum := sha256.Sum256(body)
			var grant any
			if i%3 != 0 { // two in three sessions run under a grant
				grant = (i % scaleRequests) + 1
				var n int
				if err := tx.QueryRow(`SELECT COUNT(*) FROM grants WHERE id = ?`, grant).Scan(&n); err != nil {
					return err
				}
				if n == 0 {
					grant = nil
				}
			}
			if _, err := tx.Exec(`INSERT INTO sessions (id, user, login, host, tenant, role, grant_id, client_addr, started_at,
				ended_at, end_reason, exit_status, recording_path, recording_sha256, bytes_in, bytes_out)
				VALUES (?, ?, 'root', 'web01', 'acme', 'prod-root', ?, '192.0.2.7:4000', ?, ?, 'exit', 0, ?, ?, 100, 2000)`,
				id, users[i%3], grant, ts(started), ts(started+time.Duration(1+i%29)*time.Minute), rel,
				hex.EncodeToString(sum[:])); err != nil {
				return err
			}
			for c := 0; c < scaleCommands/scaleSessions; c++ {
				action, rule := "allowed", any(nil)
				if (i*17+c)%20 == 0 {
					action, rule = "denied", "^rm -rf /"
				}
				if _, err := tx.Exec(`INSERT INTO commands (session_id, ts, user, login, host, tenant, source, command, action, rule)
					VALUES (?, ?, ?, 'root', 'web01', 'acme', 'shell', ?, ?, ?)`, id, ts(started+time.Duration(c)*time.Second),
					users[i%3], "systemctl status unit"+strconv.Itoa(c), action, rule); err != nil {
					return err
				}
			}
		}
		// Noise: another tenant, and the months around October.
		for _, n := range []struct{ id, tenant, ts string }{
			{"noise-beta", "beta", ts(24 * time.Hour)},
			{"noise-sep", "acme", "2026-09-30T23:59:59.999999Z"},
			{"noise-nov", "acme", "2026-11-01T00:00:00.000000Z"},
		} {
			if _, err := tx.Exec(`INSERT INTO sessions (id, user, login, host, tenant, started_at, ended_at, grant_id)
				VALUES (?, 'alice', 'root', 'web01', ?, ?, ?, 1)`, n.id, n.tenant, n.ts, n.ts); err != nil {
				return err
			}
			if _, err := tx.Exec(`INSERT INTO commands (session_id, ts, user, login, host, tenant, source, command, action)
				VALUES (?, ?, 'alice', 'root', 'web01', ?, 'exec', 'noise', 'denied')`, n.id, n.ts, n.tenant); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	w.exception("2026-10-02T00:00:00Z", "acme", "alice", "2026-10-09T00:00:00Z")
	w.exception("2026-10-03T00:00:00Z", "acme", "dave", "2027-01-01T00:00:00Z")
	w.clk.Set(at("2026-10-20T00:00:00Z"))
	if _, err := ApplyReconcile(w.ctx, w.st, w.cfg, ReconcileOptions{Tenant: "acme", Now: w.clk.Now}); err != nil {
		t.Fatal(err)
	}
	w.clk.Set(at("2026-11-03T00:00:00Z"))
	return w
}

// TestScalePacketMatchesSQL builds the packet of a large month and checks
// every headline number against SQL run here, then the signature with
// ssh-keygen and the manifest with sha256sum.
func TestScalePacketMatchesSQL(t *testing.T) {
	w := scaleMonth(t)
	dir := filepath.Join(t.TempDir(), "acme-2026-10")
	pk := w.build(dir)
	s := pk.Summary

	db := w.st.DB()
	const month = `tenant = 'acme' AND %[1]s >= '2026-10-01T00:00:00.000000Z' AND %[1]s < '2026-11-01T00:00:00.000000Z'`
	in := func(col string) string { return fmt.Sprintf(month, col) }
	count := func(q string) int {
		t.Helper()
		var n int
		if err := db.QueryRow(q).Scan(&n); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return n
	}
	groups := func(q string) map[string]int {
		t.Helper()
		rows, err := db.Query(q)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		m := map[string]int{}
		for rows.Next() {
			var k string
			var n int
			if err := rows.Scan(&k, &n); err != nil {
				t.Fatal(err)
			}
			m[k] = n
		}
		return m
	}
	secs := func(col string) string { return "CAST(strftime('%s', " + col + ") AS INTEGER)" }
	avg := "CAST(AVG(d) AS INTEGER)" // SQLite's CAST truncates
	if on, _ := pgtest.Postgres(); on {
		// The same figures in PostgreSQL's words (its CAST rounds).
		secs = func(col string) string { return "CAST(EXTRACT(EPOCH FROM CAST(" + col + " AS timestamptz)) AS BIGINT)" }
		avg = "CAST(FLOOR(AVG(d)) AS BIGINT)"
	}
	grantDur := secs("COALESCE(ended_at, expires_at)") + " - " + secs("starts_at")
	sessDur := secs("ended_at") + " - " + secs("started_at")
	nGrants := count(`SELECT COUNT(*) FROM grants WHERE ` + in("starts_at"))
	medianSQL := fmt.Sprintf(`SELECT %s FROM (SELECT %s AS d FROM grants WHERE %s ORDER BY d LIMIT %d OFFSET %d) m`,
		avg, grantDur, in("starts_at"), 2-nGrants%2, (nGrants-1)/2)
	reqStates := groups(`SELECT state, COUNT(*) FROM requests WHERE ` + in("created_at") + ` GROUP BY state`)
	byUser := []UserSessions{}
	rows, err := db.Query(`SELECT user, COUNT(*), SUM(` + sessDur + `) FROM sessions WHERE grant_id IS NOT NULL AND ` +
		in("started_at") + ` GROUP BY user ORDER BY COUNT(*) DESC, user`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var u UserSessions
		if err := rows.Scan(&u.User, &u.Sessions, &u.Seconds); err != nil {
			t.Fatal(err)
		}
		byUser = append(byUser, u)
	}
	rows.Close()
	var longestID string
	var longest int64
	if err := db.QueryRow(`SELECT id, `+sessDur+` AS d FROM sessions WHERE grant_id IS NOT NULL AND `+in("started_at")+
		` ORDER BY d DESC, started_at, id LIMIT 1`).Scan(&longestID, &longest); err != nil && err != sql.ErrNoRows {
		t.Fatal(err)
	}

	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"requests", s.Requests, count(`SELECT COUNT(*) FROM requests WHERE ` + in("created_at"))},
		{"requests by state", s.RequestsByState, reqStates},
		{"approvals", s.Approvals, count(`SELECT COUNT(*) FROM approvals a JOIN requests r ON r.id = a.request_id
			WHERE a.decision = 'approved' AND r.` + in("a.ts"))},
		{"denials", s.Denials, count(`SELECT COUNT(*) FROM approvals a JOIN requests r ON r.id = a.request_id
			WHERE a.decision = 'denied' AND r.` + in("a.ts"))},
		{"grants", s.Grants, nGrants},
		{"grants by state", s.GrantsByState, groups(`SELECT end_reason, COUNT(*) FROM grants WHERE ` + in("starts_at") + ` GROUP BY end_reason`)},
		{"grant median", s.GrantMedianSeconds, int64(count(medianSQL))},
		{"grant longest", s.GrantLongestSeconds, int64(count(`SELECT MAX(` + grantDur + `) FROM grants WHERE ` + in("starts_at")))},
		{"break-glass uses", len(s.BreakGlass), count(`SELECT COUNT(*) FROM grants WHERE role = 'break-glass' AND ` + in("starts_at"))},
		{"sessions", s.Sessions, count(`SELECT COUNT(*) FROM sessions WHERE ` + in("started_at"))},
		{"privileged sessions", s.PrivilegedSessions, count(`SELECT COUNT(*) FROM sessions WHERE grant_id IS NOT NULL AND ` + in("started_at"))},
		{"longest privileged", s.PrivilegedLongestSeconds, longest},
		{"longest privileged id", s.PrivilegedLongestID, longestID},
		{"privileged by user", s.PrivilegedByUser, byUser},
		{"commands", s.Commands, count(`SELECT COUNT(*) FROM commands WHERE ` + in("ts"))},
		{"commands allowed", s.CommandsAllowed, count(`SELECT COUNT(*) FROM commands WHERE action = 'allowed' AND ` + in("ts"))},
		{"commands denied", s.CommandsDenied, count(`SELECT COUNT(*) FROM commands WHERE action = 'denied' AND ` + in("ts"))},
		{"recordings", s.Recordings, count(`SELECT COUNT(*) FROM sessions WHERE recording_path IS NOT NULL AND ` + in("started_at"))},
		{"recording problems", s.RecordingProblems, 0},
		{"rows that disagree with the chain", s.OverdueByKind[OverdueTampered], 0},
		{"stale admins flagged", s.StaleAdminsFlagged, count(`SELECT COUNT(*) FROM audit_events WHERE type = 'reconcile.stale_admin'
			AND json_extract(data, '$.tenant') = 'acme' AND ts >= '2026-10-01' AND ts < '2026-11-01'`)},
		{"exceptions open", s.ExceptionsOpen, count(`SELECT COUNT(*) FROM exceptions WHERE tenant = 'acme' AND closed_at IS NULL
			AND expires_at >= '2026-11-01T00:00:00.000000Z'`)},
		{"exceptions expired", s.ExceptionsExpired, count(`SELECT COUNT(*) FROM exceptions WHERE tenant = 'acme' AND closed_at IS NULL
			AND expires_at < '2026-11-01T00:00:00.000000Z'`)},
		{"pending requests past TTL", s.OverdueByKind[OverdueRequest], count(`SELECT COUNT(*) FROM requests WHERE tenant = 'acme'
			AND state = 'pending' AND created_at < '2026-10-31T00:00:00.000000Z'`)},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s: packet says %v, SQL says %v", c.name, c.got, c.want)
		}
	}
	if s.Sessions < 1000 || s.Commands < 20000 {
		t.Fatalf("the month is too small: %d sessions, %d commands", s.Sessions, s.Commands)
	}
	checkTools(t, dir, true)
	for _, name := range []string{"commands.csv", "commands.json", "sessions.csv", "recordings.json", "summary.html"} {
		path := filepath.Join(dir, name)
		orig, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, i := range []int{0, len(orig) / 3, len(orig) - 1} {
			flipped := append([]byte(nil), orig...)
			flipped[i] ^= 0x20
			writeFile(t, path, flipped)
			checkToolsFor(t, dir, false, name, i)
		}
		writeFile(t, path, orig)
	}
	checkTools(t, dir, true)
}

// BenchmarkEvidencePacket reports the time to build the packet of the
// month that TestScalePacketMatchesSQL checks (1,200 sessions, 20,400
// commands, 400 requests): reading, re-hashing recordings, rendering,
// signing and writing.
func BenchmarkEvidencePacket(b *testing.B) {
	w := scaleMonth(b)
	out := b.TempDir()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := Build(w.ctx, Options{DataDir: w.dir, Tenant: "acme", Month: at("2026-10-01T00:00:00Z"),
			Out: filepath.Join(out, strconv.Itoa(i)), Policy: w.cfg, Now: w.clk.Now}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(scaleSessions), "sessions/packet")
	b.ReportMetric(float64(scaleCommands), "commands/packet")
}
