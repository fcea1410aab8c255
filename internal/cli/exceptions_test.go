package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
)

func TestExceptionsAddListClose(t *testing.T) {
	data, cfg, _ := govData(t)
	expires := time.Now().UTC().AddDate(0, 1, 0).Format(time.DateOnly)
	add := []string{"exceptions", "add", "-c", cfg, "--tenant", "acme", "--owner", "alice", "--by", "carol",
		"--reason", "legacy backup agent logs in as root", "--controls", "IP allow-list; weekly review", "--expires", expires}
	out, errOut, code := run(add...)
	if code != 0 || out != "1\n" {
		t.Fatalf("add: %d %q %q", code, out, errOut)
	}
	// An entry past its expiry, as time would leave it.
	st, err := audit.Open(context.Background(), data, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	err = st.Update(context.Background(), func(tx *audit.Tx) error {
		_, err := tx.Exec(`INSERT INTO exceptions (tenant, owner, reason, controls, expires_at, created_by, created_at)
			VALUES ('acme', 'bob', 'old', 'none', '2020-01-01T00:00:00.000000Z', 'carol', '2019-12-01T00:00:00.000000Z')`)
		return err
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}

	out, _, code = run("exceptions", "--data", data)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 3 || !strings.Contains(lines[0], "EXPIRED") || strings.Contains(lines[1], "EXPIRED") ||
		!strings.Contains(lines[2], "EXPIRED") {
		t.Fatalf("list: %d\n%s", code, out)
	}
	out, _, _ = run("exceptions", "--data", data, "--expired", "--json")
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 || list[0]["id"] != 2.0 ||
		list[0]["expired"] != true || list[0]["status"] != "expired" {
		t.Fatalf("--expired --json: %v %s", err, out)
	}

	out, errOut, code = run("exceptions", "close", "1", "--note", "agent replaced", "--by", "carol", "--data", data)
	if code != 0 || !strings.HasPrefix(out, "exception 1 closed at ") {
		t.Fatalf("close: %d %q %q", code, out, errOut)
	}
	out, _, _ = run("exceptions", "--data", data, "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 1 {
		t.Fatalf("open list after close: %s", out)
	}
	out, _, _ = run("exceptions", "--data", data, "--json", "--all")
	if err := json.Unmarshal([]byte(out), &list); err != nil || len(list) != 2 || list[0]["closed_by"] != "carol" ||
		list[0]["close_note"] != "agent replaced" {
		t.Fatalf("--all: %s", out)
	}
	evs, err := auditEvents(t, data)
	if err != nil || !strings.Contains(evs, "exception.added") || !strings.Contains(evs, "exception.closed") {
		t.Fatalf("audit events %q, %v", evs, err)
	}
}

func TestExceptionsRefusals(t *testing.T) {
	data, cfg, _ := govData(t)
	expires := time.Now().UTC().AddDate(0, 1, 0).Format(time.DateOnly)
	base := func(extra ...string) []string {
		return append([]string{"exceptions", "add", "-c", cfg, "--by", "carol", "--tenant", "acme", "--owner", "alice",
			"--controls", "review", "--reason", "r", "--expires", expires}, extra...)
	}
	if _, errOut, code := run(base()...); code != 0 {
		t.Fatal(errOut)
	}
	if _, errOut, code := run("exceptions", "close", "1", "--note", "done", "--by", "carol", "--data", data); code != 0 {
		t.Fatal(errOut)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"missing reason", []string{"exceptions", "add", "-c", cfg, "--tenant", "acme", "--owner", "alice", "--controls", "c", "--expires", expires}, 2, "--reason is required"},
		{"bad date", base("--expires", "31.12.2026"), 2, "want a date YYYY-MM-DD"},
		{"past date", base("--expires", "2020-01-01"), 2, "not in the future"},
		{"unknown tenant", base("--tenant", "gamma"), 1, `unknown tenant "gamma"`},
		{"control character", base("--reason", "ok\x1b[2J"), 2, "unprintable"},
		{"overlong reason", base("--reason", strings.Repeat("x", 501)), 2, "at most 500"},
		{"owner with slash", base("--owner", "../x"), 2, "owner"},
		{"close twice", []string{"exceptions", "close", "1", "--note", "again", "--by", "carol", "--data", data}, 1, "already closed"},
		{"close unknown", []string{"exceptions", "close", "99", "--note", "x", "--by", "carol", "--data", data}, 1, "no exception with ID 99"},
		{"close bad ID", []string{"exceptions", "close", "-1", "--note", "x", "--data", data}, 2, ""},
		{"close without note", []string{"exceptions", "close", "1", "--data", data}, 2, "--note is required"},
		{"unknown subcommand", []string{"exceptions", "frob", "--data", data}, 2, "unknown subcommand"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := run(tc.args...)
			if code != tc.code || !strings.HasPrefix(errOut, "warden: ") || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q on one warden: line", code, errOut, tc.code, tc.want)
			}
		})
	}
}

// auditEvents returns the types of every audit event, space-separated.
func auditEvents(t *testing.T, data string) (string, error) {
	t.Helper()
	r, err := audit.OpenReadOnly(data)
	if err != nil {
		return "", err
	}
	defer r.Close()
	evs, err := r.Events(context.Background(), 0, 0)
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	return strings.Join(types, " "), err
}
