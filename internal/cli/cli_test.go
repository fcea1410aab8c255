package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/storetest"
	"github.com/warden-gw/warden/recorder"
)

// run runs the CLI and returns stdout, stderr and the exit status.
func run(args ...string) (string, string, int) {
	var out, errb bytes.Buffer
	code := Run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestUsageErrorsExitTwo(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"frobnicate"},
		{"sessions", "--nope"},
		{"sessions", "--since", "yesterday-ish"},
		{"commands", "--grep", "("},
		{"play"},
		{"play", "--speed", "0", "x.cast"},
		{"policy"},
		{"vault"},
		{"audit"},
	} {
		_, errOut, code := run(args...)
		if code != 2 {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", args, code, errOut)
		}
		if len(args) > 0 && (!strings.HasPrefix(errOut, "warden: ") || strings.Count(errOut, "\n") != 1) {
			t.Errorf("%q: stderr %q, want one warden: line", args, errOut)
		}
	}
}

func TestHelpForEveryCommand(t *testing.T) {
	for name := range subcommands() {
		out, errOut, code := run(name, "--help")
		if code != 0 || !strings.Contains(out, "Usage: warden "+name) {
			t.Errorf("%s --help: code %d out %q err %q", name, code, out, errOut)
		}
	}
}

func TestPolicyCheck(t *testing.T) {
	out, errOut, code := run("policy", "check", "-c", "../../testdata/policy/valid.yaml")
	if code != 0 || !strings.Contains(out, "ok") {
		t.Fatalf("valid: code %d out %q err %q", code, out, errOut)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	os.WriteFile(bad, []byte("listen: \":2222\"\nbogus: 1\nusers:\n  - name: alice\n    groups: [nosuch]\n"), 0o600)
	_, errOut, code = run("policy", "check", "-c", bad)
	if code != 2 {
		t.Fatalf("invalid: code %d", code)
	}
	if !strings.Contains(errOut, bad+":2:") || !strings.Contains(errOut, bad+":5:") {
		t.Fatalf("errors lack file:line: %q", errOut)
	}
}

// TestPolicyCheckExplainsNamesAndLabels: a selector with names and labels
// picks the hosts that match both; policy check says so and lists them when
// the policy is valid, and its hint says so when nothing is left.
func TestPolicyCheckExplainsNamesAndLabels(t *testing.T) {
	src, err := os.ReadFile("../../testdata/policy/valid.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const from = "hosts: {labels: {tier: web}}"
	if !bytes.Contains(src, []byte(from)) {
		t.Fatalf("valid.yaml no longer has %q", from)
	}
	dir := t.TempDir()
	known, err := os.ReadFile("../../testdata/policy/known_hosts") // valid.yaml names it
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "known_hosts"), known, 0o600); err != nil {
		t.Fatal(err)
	}
	write := func(sel string) string {
		p := filepath.Join(dir, "w.yaml")
		if err := os.WriteFile(p, bytes.Replace(src, []byte(from), []byte(sel), 1), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	out, errOut, code := run("policy", "check", "-c", write(`hosts: {names: ["*"], labels: {tier: web}}`))
	if code != 0 || !strings.Contains(out, "note: role web-deploy: a host must match both names and labels; it selects web01\n") {
		t.Fatalf("both given: code %d out %q err %q", code, out, errOut)
	}
	p := write(`hosts: {names: [db01], labels: {tier: web}}`)
	_, errOut, code = run("policy", "check", "-c", p)
	if code != 2 || !strings.Contains(errOut, `role "web-deploy" matches no host in tenant "acme" (hint: a host must match both names and labels; names alone match db01, labels alone match web01)`) {
		t.Fatalf("disjoint: code %d err %q", code, errOut)
	}
	out, _, code = run("policy", "check", "-c", "../../testdata/policy/valid.yaml")
	if code != 0 || strings.Contains(out, "note:") {
		t.Fatalf("selectors without both parts got a note: %q", out)
	}
}

// seed writes one finished session with a recording and two commands.
func seed(t *testing.T) (string, string) {
	t.Helper()
	data := t.TempDir()
	ctx := context.Background()
	now := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	st, err := audit.Open(ctx, data, audit.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	id := "abcdefghijklmnopqrstuvwxyz"
	w, err := recorder.Create(data, recorder.Header{Width: 80, Height: 24, Warden: recorder.Meta{SessionID: id, User: "alice"}},
		recorder.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	w.Output([]byte("hello from the recording\r\n"))
	sum, err := w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.StartSession(ctx, audit.Session{ID: id, User: "alice", Login: "root", Host: "web01", Tenant: "acme", Role: "web-admin", StartedAt: now, RecordingPath: w.RelPath()}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []string{"uptime", "rm -rf /tmp/x\x1b[31m"} {
		if err := st.LogCommand(ctx, audit.Command{SessionID: id, TS: now, User: "alice", Login: "root", Host: "web01", Tenant: "acme", Source: "shell", Command: c, Action: "allowed"}); err != nil {
			t.Fatal(err)
		}
	}
	zero := 0
	if err := st.EndSession(ctx, id, audit.SessionEnd{EndedAt: now.Add(time.Minute), Reason: "exit", ExitStatus: &zero, RecordingPath: w.RelPath(), RecordingSHA256: sum}); err != nil {
		t.Fatal(err)
	}
	return data, id
}

func TestSessionsAndCommandsJSONAreStable(t *testing.T) {
	data, id := seed(t)
	out, errOut, code := run("sessions", "--data", data, "--json")
	if code != 0 {
		t.Fatalf("sessions: %d %s", code, errOut)
	}
	var sessions []map[string]any
	if err := json.Unmarshal([]byte(out), &sessions); err != nil || len(sessions) != 1 {
		t.Fatalf("sessions json %v: %s", err, out)
	}
	want := map[string]any{"id": id, "user": "alice", "login": "root", "host": "web01", "tenant": "acme",
		"role": "web-admin", "started_at": "2026-11-29T10:00:00Z", "ended_at": "2026-11-29T10:01:00Z",
		"end_reason": "exit", "exit_status": float64(0), "grant_id": nil}
	for k, v := range want {
		if sessions[0][k] != v {
			t.Errorf("sessions[0][%q] = %v, want %v", k, sessions[0][k], v)
		}
	}
	out, _, code = run("sessions", "--data", data, "--user", "bob", "--json")
	if code != 0 || strings.TrimSpace(out) != "[]" {
		t.Fatalf("filtered sessions: %q", out)
	}
	out, _, code = run("commands", "--data", data, "--grep", "^upt", "--json")
	var cmds []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &cmds) != nil || len(cmds) != 1 || cmds[0]["command"] != "uptime" || cmds[0]["source"] != "shell" {
		t.Fatalf("commands json: %s", out)
	}
	// The table view never hands an escape sequence to the auditor's terminal.
	out, _, _ = run("commands", "--data", data, "--session", id)
	if strings.Contains(out, "\x1b") || !strings.Contains(out, `\x1b[31m`) {
		t.Fatalf("control characters not escaped: %q", out)
	}
}

func TestPlayBySessionIDAndFile(t *testing.T) {
	data, id := seed(t)
	out, errOut, code := run("play", "--data", data, "--speed", "1000", id)
	if code != 0 || out != "hello from the recording\r\n" {
		t.Fatalf("play id: %d %q %q", code, out, errOut)
	}
	files, _ := filepath.Glob(filepath.Join(data, "recordings", "*", "*.cast"))
	out, _, code = run("play", "--idle-limit", "0.1", files[0])
	if code != 0 || out != "hello from the recording\r\n" {
		t.Fatalf("play file: %d %q", code, out)
	}
	_, errOut, code = run("play", "--data", data, "zzzzzzzzzzzzzzzzzzzzzzzzzz")
	if code != 1 || !strings.HasPrefix(errOut, "warden: session zzzz") {
		t.Fatalf("unknown session: %d %q", code, errOut)
	}
}

func TestAuditVerify(t *testing.T) {
	data, _ := seed(t)
	out, errOut, code := run("audit", "verify", "--data", data)
	if code != 0 || !strings.HasPrefix(out, "ok: ") {
		t.Fatalf("verify: %d %q %q", code, out, errOut)
	}
	files, _ := filepath.Glob(filepath.Join(data, "recordings", "*", "*.cast"))
	raw, _ := os.ReadFile(files[0])
	raw[len(raw)-3] ^= 1
	os.WriteFile(files[0], raw, 0o600)
	_, errOut, code = run("audit", "verify", "--data", data)
	if code != 1 || !strings.Contains(errOut, ".cast") {
		t.Fatalf("tampered: %d %q", code, errOut)
	}
}

func TestMissingDatabaseIsOneLine(t *testing.T) {
	_, errOut, code := run("sessions", "--data", filepath.Join(t.TempDir(), "nope"))
	if code != 1 || !strings.HasPrefix(errOut, "warden: audit: "+storetest.NoDatabase()) {
		t.Fatalf("%d %q", code, errOut)
	}
}
