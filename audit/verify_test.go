package audit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"github.com/warden-gw/warden/internal/pgtest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const (
	recPath   = "recordings/2026-11-29/S1.cast"
	numEvents = 10 // appended after S1's session.end, which is seq 1
)

// verifyFixture writes, through a Store that it then closes, one finished
// session S1 with a recording and two command rows (ids 1 and 3), an open
// session S2 with one command row (id 2), and numEvents chained events
// after S1's session.end (seq 1).
func verifyFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	cast := []byte("{\"version\":2,\"width\":80,\"height\":24}\n[0.1,\"o\",\"$ \"]\n")
	if err := os.MkdirAll(filepath.Join(dir, "recordings/2026-11-29"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, recPath), cast, 0o600); err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(cast)
	sess := testSession("S1")
	sess.RecordingPath = recPath
	mustStart(t, s, sess, testSession("S2")) // S2 stays open: no digest, not checked
	for _, c := range []struct{ sid, cmd string }{{"S1", "uptime"}, {"S2", "id"}, {"S1", "rm -rf /tmp/x"}} {
		if err := s.LogCommand(ctx, Command{SessionID: c.sid, User: "alice", Login: "root", Host: "web01", Tenant: "acme",
			Source: SourceShell, Command: c.cmd, Action: ActionAllowed}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.EndSession(ctx, "S1", SessionEnd{Reason: "exit", RecordingSHA256: hex.EncodeToString(sum[:])}); err != nil {
		t.Fatal(err)
	}
	for i := range numEvents {
		if err := s.Append(ctx, Event{Type: "test.event", Actor: "alice", Subject: "S1", Data: map[string]any{"i": i}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestVerifyCleanData(t *testing.T) {
	dir := verifyFixture(t)
	rep, err := Verify(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Events != numEvents+1 || rep.Recordings != 1 || rep.Sessions != 1 || rep.Commands != 2 ||
		len(rep.Live) != 1 || rep.Live[0] != "S2" || len(rep.Problems) != 0 {
		t.Fatalf("report %+v, want %d events, 1 session with 1 recording and 2 commands, S2 live, no problems", rep, numEvents+1)
	}
	var head string
	if err := rawDB(t, dir).QueryRow(`SELECT hash FROM audit_events ORDER BY seq DESC LIMIT 1`).Scan(&head); err != nil || rep.Head != head {
		t.Fatalf("Head = %s, want %s (%v)", rep.Head, head, err)
	}
}

// tamperers edit the database the two ways an attacker with file access
// could: the sqlite3 shell, and SQL from a program.
// On PostgreSQL the shell is psql, and the script is the same SQL with
// the reserved column names quoted (pgSQL).
var tamperers = map[string]func(t *testing.T, dir, script string){
	"sqlite3 CLI": func(t *testing.T, dir, script string) {
		if onPostgres() {
			out, err := exec.Command(filepath.Join(pgtest.BinDir, "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
				"-d", pgBackendFor(dir).DSN, "-c", pgSQL(script)).CombinedOutput()
			if err != nil {
				t.Fatalf("psql: %v: %s", err, out)
			}
			return
		}
		out, err := exec.Command("sqlite3", filepath.Join(dir, DBName), script).CombinedOutput()
		if err != nil {
			t.Fatalf("sqlite3: %v: %s", err, out)
		}
	},
	"Go SQL": func(t *testing.T, dir, script string) {
		if _, err := rawDB(t, dir).Exec(script); err != nil {
			t.Fatalf("exec: %v", err)
		}
	},
}

// dropCommandsFK lets a row name no session: SQLite checks foreign keys
// only on connections that ask (the store's do, a tamperer's need not);
// PostgreSQL always does, so its tamperer, the tables' owner, drops the
// constraint first.
func dropCommandsFK() string {
	if onPostgres() {
		return `ALTER TABLE commands DROP CONSTRAINT commands_session_id_fkey; `
	}
	return ""
}

func dropTriggers() string {
	if onPostgres() {
		return `DROP TRIGGER audit_events_no_update ON audit_events; DROP TRIGGER audit_events_no_delete ON audit_events; `
	}
	return `DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete; `
}

func TestVerifyFindsTampering(t *testing.T) {
	if _, err := exec.LookPath("sqlite3"); err != nil {
		t.Fatalf("the sqlite3 CLI is required for this test: %v", err)
	}
	forged := strings.Repeat("ab", 32)
	for _, c := range []struct {
		name   string
		script string
		want   Problem // the first problem; Msg is matched as a substring
		count  int     // how many problems in all
	}{
		{"update of an event's data", dropTriggers() + `UPDATE audit_events SET data = '{"i":99}' WHERE seq = 5`,
			Problem{Seq: 5, Msg: "hash mismatch"}, 1},
		{"update of an event's time", dropTriggers() + `UPDATE audit_events SET ts = '2020-01-01T00:00:00.000000Z' WHERE seq = 3`,
			Problem{Seq: 3, Msg: "hash mismatch"}, 1},
		{"delete of a middle event", dropTriggers() + `DELETE FROM audit_events WHERE seq = 5`,
			Problem{Seq: 5, Msg: "missing"}, 2},
		{"insert after the head with a broken link", `INSERT INTO audit_events VALUES (12, '2026-11-29T09:00:00.000000Z', 'session.end', 'mallory', 'S1', '{}', '` + forged + `', '` + forged + `')`,
			Problem{Seq: 12, Msg: "prev_hash"}, 3}, // and: a second session.end for S1
		{"insert before the first event", `INSERT INTO audit_events VALUES (0, '2026-11-29T07:00:00.000000Z', 'x', 'mallory', '', '{}', '` + strings.Repeat("0", 64) + `', '` + forged + `')`,
			Problem{Seq: 0, Msg: "unexpected seq"}, 3},
		{"insert leaving a gap", `INSERT INTO audit_events VALUES (14, '2026-11-29T09:00:00.000000Z', 'x', 'mallory', '', '{}', '` + forged + `', '` + forged + `')`,
			Problem{Seq: 12, Msg: "missing"}, 3},
		{"update of a recording digest", `UPDATE sessions SET recording_sha256 = '` + forged + `' WHERE id = 'S1'`,
			Problem{Seq: 1, Session: "S1", Msg: "sessions.recording_sha256 differs from the chained digest"}, 1},
		{"recording path pointed outside the data directory", `UPDATE sessions SET recording_path = '../../etc/passwd' WHERE id = 'S1'`,
			Problem{Seq: 1, Session: "S1", Msg: "recording_path"}, 1},
		{"delete of a command row", `DELETE FROM commands WHERE id = 3`,
			Problem{Seq: 1, Session: "S1", Msg: "1 command row(s) missing"}, 1},
		{"edit of a command row", `UPDATE commands SET command = 'true' WHERE id = 3`,
			Problem{Seq: 1, Session: "S1", Msg: "differ from the chained digest"}, 1},
		{"edit of a command row's rule to NULL-looking text", `UPDATE commands SET rule = 'null' WHERE id = 1`,
			Problem{Seq: 1, Session: "S1", Msg: "differ from the chained digest"}, 1},
		{"command row moved to the live session", `UPDATE commands SET session_id = 'S2' WHERE id = 3`,
			Problem{Seq: 1, Session: "S1", Msg: "missing"}, 1},
		{"command row added to the ended session", `INSERT INTO commands (session_id, ts, user, login, host, tenant, source, command, action)
			VALUES ('S1', '2026-11-29T08:00:00.002000Z', 'alice', 'root', 'web01', 'acme', 'shell', 'echo alibi', 'allowed')`,
			Problem{Seq: 1, Session: "S1", Row: 4, Msg: "added after the session ended"}, 1},
		{"live session's command row moved into the ended one", `UPDATE commands SET session_id = 'S1' WHERE id = 2`,
			Problem{Seq: 1, Session: "S1", Msg: "1 command row(s) more than the chain recorded"}, 1},
		{"command row naming no session", dropCommandsFK() + `INSERT INTO commands (session_id, ts, user, login, host, tenant, source, command, action)
			VALUES ('nosuch', '2026-11-29T08:00:00.002000Z', 'alice', 'root', 'web01', 'acme', 'shell', 'id', 'allowed')`,
			Problem{Row: 4, Msg: "no session row"}, 1},
		{"session row deleted", `DELETE FROM commands WHERE session_id = 'S1'; DELETE FROM sessions WHERE id = 'S1'`,
			Problem{Seq: 1, Session: "S1", Msg: "session row is missing"}, 1},
		{"live session row marked ended", `UPDATE sessions SET ended_at = '2026-11-29T08:00:01.000000Z' WHERE id = 'S2'`,
			Problem{Session: "S2", Msg: "no session.end event"}, 1},
	} {
		for how, tamper := range tamperers {
			t.Run(c.name+" via "+how, func(t *testing.T) {
				dir := verifyFixture(t)
				tamper(t, dir, c.script)
				if n := assertFirstProblem(t, dir, c.want); n != c.count {
					t.Errorf("%d problems, want %d", n, c.count)
				}
			})
		}
	}
}

func TestVerifyFindsARehashedEditAtTheNextLink(t *testing.T) {
	dir := verifyFixture(t)
	db := rawDB(t, dir)
	// The attacker edits event 4 and recomputes its own hash correctly;
	// event 5 still names the old hash.
	var row eventRow
	var prev string
	if err := db.QueryRow(`SELECT ts, type, actor, subject, data, prev_hash FROM audit_events WHERE seq = 4`).Scan(
		&row.ts, &row.typ, &row.actor, &row.subject, &row.data, &prev); err != nil {
		t.Fatal(err)
	}
	row.actor = "mallory"
	prevSum, ok := decodeHash(prev)
	if !ok {
		t.Fatalf("stored prev_hash %q", prev)
	}
	sum := eventHash(prevSum, canonicalEvent(4, row))
	// PostgreSQL runs one statement per call with parameters.
	if _, err := db.Exec(dropTriggers()); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE audit_events SET actor = ?, hash = ? WHERE seq = 4`, row.actor, hex.EncodeToString(sum[:])); err != nil {
		t.Fatal(err)
	}
	if n := assertFirstProblem(t, dir, Problem{Seq: 5, Msg: "prev_hash"}); n != 1 {
		t.Errorf("%d problems, want 1", n)
	}
}

func TestVerifyWhileTheStoreIsOpen(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	for range 3 {
		if err := s.Append(context.Background(), Event{Type: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := Verify(context.Background(), dir)
	if err != nil || rep.Events != 3 || len(rep.Problems) != 0 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

func TestVerifyFindsAlteredRecordingFiles(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(t *testing.T, path string)
		msg  string
	}{
		{"flipped byte", func(t *testing.T, path string) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			b[len(b)/2] ^= 0x01
			if err := os.WriteFile(path, b, 0o600); err != nil {
				t.Fatal(err)
			}
		}, "sha256 differs from the chained digest"},
		{"deleted file", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, "recording missing"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := verifyFixture(t)
			c.edit(t, filepath.Join(dir, recPath))
			if n := assertFirstProblem(t, dir, Problem{Session: "S1", File: recPath, Msg: c.msg}); n != 1 {
				t.Errorf("%d problems, want 1", n)
			}
		})
	}
}

// assertFirstProblem runs Verify on dir, checks its first problem and
// returns how many it found.
func assertFirstProblem(t *testing.T, dir string, want Problem) int {
	t.Helper()
	rep, err := Verify(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Problems) == 0 {
		t.Fatalf("no problem found; report %+v", rep)
	}
	got := rep.Problems[0]
	if got.Seq != want.Seq || got.Session != want.Session || got.File != want.File || got.Row != want.Row ||
		!strings.Contains(got.Msg, want.Msg) {
		t.Fatalf("first problem %q, want %q (all: %v)", got, want, rep.Problems)
	}
	return len(rep.Problems)
}

func TestProblemString(t *testing.T) {
	if got := (Problem{Seq: 5, Msg: "hash mismatch"}).String(); got != "seq 5: hash mismatch" {
		t.Errorf("got %q", got)
	}
	for p, want := range map[Problem]string{
		{File: "recordings/a.cast", Msg: "recording missing"}:                "recordings/a.cast: recording missing",
		{Session: "S1", File: "recordings/a.cast", Msg: "recording missing"}: "session S1, recording recordings/a.cast: recording missing",
		{Seq: 1, Session: "S1", Row: 7, Msg: "added"}:                        "session S1, command row 7: added",
		{Seq: 1, Session: "S1", Msg: "row missing"}:                          "session S1: row missing",
		{Row: 7, Msg: "no session"}:                                          "command row 7: no session",
	} {
		if got := p.String(); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
