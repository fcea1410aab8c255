package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
)

// govPolicy writes a policy whose data_dir is data: tenant acme with a
// privileged role that alice and gina may request; gina never does.
func govPolicy(t *testing.T, data string) string {
	t.Helper()
	key := func(seed byte) string {
		k, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, 32)).Public())
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
	}
	src := strings.NewReplacer("$DATA", data, "$H", key(9), "$A", key(1), "$B", key(2), "$C", key(3), "$G", key(4)).Replace(`
data_dir: "$DATA"
tenants:
  - name: acme
    hosts:
      - {name: web01, address: "127.0.0.1:22", host_key: "$H", labels: {env: prod}}
groups: [{name: sysadmins}, {name: security}, {name: helpdesk}]
users:
  - {name: alice, keys: ["$A"], groups: [sysadmins]}
  - {name: bob, keys: ["$B"], groups: [helpdesk]}
  - {name: carol, keys: ["$C"], groups: [security]}
  - {name: gina, keys: ["$G"], groups: [sysadmins]}
roles:
  - name: prod-root
    tenant: acme
    hosts: {labels: {env: prod}}
    logins: [root]
    privileged: true
    eligible: [sysadmins]
    approvers: [security]
`)
	path := filepath.Join(t.TempDir(), "warden.yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// govData seeds, in the month before the current one, an approved request
// with its grant and a privileged session, and an active grant of bob's
// that the policy does not explain. It returns the data directory, the
// policy path and the month.
func govData(t *testing.T) (data, cfg, month string) {
	t.Helper()
	data = t.TempDir()
	cfg = govPolicy(t, data)
	now := time.Now().UTC()
	first := time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC).AddDate(0, -1, 0)
	st, err := audit.Open(context.Background(), data, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ts := func(d time.Duration) string {
		s, err := audit.Time(first.Add(d))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	later, _ := audit.Time(now.Add(time.Hour))
	err = st.Update(context.Background(), func(tx *audit.Tx) error {
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO requests (id, user, role, tenant, reason, duration, state, created_at, decided_at)
				VALUES (1, 'alice', 'prod-root', 'acme', 'INC-1', '1h0m0s', 'approved', ?, ?)`, []any{ts(time.Hour), ts(2 * time.Hour)}},
			{`INSERT INTO approvals (request_id, approver, decision, ts) VALUES (1, 'carol', 'approved', ?)`, []any{ts(2 * time.Hour)}},
			{`INSERT INTO grants (id, request_id, user, role, tenant, starts_at, expires_at, ended_at, end_reason)
				VALUES (1, 1, 'alice', 'prod-root', 'acme', ?, ?, ?, 'expired')`, []any{ts(2 * time.Hour), ts(3 * time.Hour), ts(3 * time.Hour)}},
			{`INSERT INTO grants (id, user, role, tenant, starts_at, expires_at)
				VALUES (2, 'bob', 'prod-root', 'acme', ?, ?)`, []any{ts(4 * time.Hour), later}},
			{`INSERT INTO sessions (id, user, login, host, tenant, role, grant_id, started_at)
				VALUES ('sess1', 'alice', 'root', 'web01', 'acme', 'prod-root', 1, ?)`, []any{ts(2*time.Hour + time.Minute)}},
			{`INSERT INTO commands (session_id, ts, user, login, host, tenant, source, command, action, rule)
				VALUES ('sess1', ?, 'alice', 'root', 'web01', 'acme', 'shell', 'rm -rf /', 'denied', '^rm -rf /')`, []any{ts(2*time.Hour + 2*time.Minute)}},
		} {
			if _, err := tx.Exec(q.sql, q.args...); err != nil {
				return err
			}
		}
		// The rows' events, as package jit writes them: audit verify
		// checks every requests, approvals and grants row against them.
		req := map[string]any{"request_id": 1, "user": "alice", "role": "prod-root", "tenant": "acme", "reason": "INC-1", "duration": "1h0m0s"}
		for _, e := range []audit.Event{
			{TS: first.Add(time.Hour), Type: "request.created", Subject: "request:1", Data: req},
			{Type: "approval.recorded", Subject: "request:1", Data: map[string]any{"request_id": 1, "approver": "carol"}},
			{Type: "request.approved", Subject: "request:1", Data: req},
			{Type: "grant.started", Subject: "grant:1", Data: map[string]any{"grant_id": 1, "request_id": 1, "user": "alice", "role": "prod-root",
				"tenant": "acme", "starts_at": ts(2 * time.Hour), "expires_at": ts(3 * time.Hour)}},
			{Type: "grant.started", Subject: "grant:2", Data: map[string]any{"grant_id": 2, "user": "bob", "role": "prod-root",
				"tenant": "acme", "starts_at": ts(4 * time.Hour), "expires_at": later}},
			{Type: "grant.expired", Subject: "grant:1", Data: map[string]any{"grant_id": 1, "ended_at": ts(3 * time.Hour), "end_reason": "expired"}},
		} {
			if e.TS.IsZero() {
				e.TS = first.Add(2 * time.Hour)
			}
			e.Actor = "warden"
			if err := tx.Append(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Ended through the store, which seals the session.end event.
	if err := st.EndSession(context.Background(), "sess1", audit.SessionEnd{EndedAt: first.Add(2*time.Hour + 9*time.Minute), Reason: "exit"}); err != nil {
		t.Fatal(err)
	}
	return data, cfg, first.Format("2006-01")
}

func TestEvidenceWritesAVerifiablePacket(t *testing.T) {
	data, cfg, month := govData(t)
	out := filepath.Join(t.TempDir(), "acme-"+month)
	stdout, stderr, code := run("evidence", "-c", cfg, "--tenant", "acme", "--month", month, "--out", out)
	if code != 0 || !strings.Contains(stdout, "wrote "+out) || !strings.Contains(stdout, "evidence key SHA256:") {
		t.Fatalf("evidence: %d %q %q", code, stdout, stderr)
	}
	if st, err := os.Stat(filepath.Join(data, "evidence_ed25519")); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("evidence key: %v %v", st, err)
	}
	for _, args := range [][]string{
		{"sha256sum", "--quiet", "-c", "MANIFEST.sha256"},
		{"sh", "-c", "ssh-keygen -Y verify -f allowed_signers -I warden -n warden-evidence -s MANIFEST.sha256.sig < MANIFEST.sha256"},
	} {
		if _, err := exec.LookPath(args[0]); err != nil {
			t.Fatalf("%s is required: %v", args[0], err)
		}
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Dir = out
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, b)
		}
	}
	summary, err := os.ReadFile(filepath.Join(out, "summary.md"))
	if err != nil || !bytes.Contains(summary, []byte("1 (approved 1, denied 0, pending 0)")) ||
		!bytes.Contains(summary, []byte("0 run, 1 denied (of 1 logged)")) || !bytes.Contains(summary, []byte("user gina")) {
		t.Fatalf("summary.md:\n%s", summary)
	}
	stdout, _, code = run("evidence", "-c", cfg, "--tenant", "acme", "--month", month, "--out", out)
	if code != 0 || !strings.Contains(stdout, "already holds this packet") {
		t.Fatalf("second run: %d %q", code, stdout)
	}
}

func TestEvidenceRefusals(t *testing.T) {
	_, cfg, month := govData(t)
	out := filepath.Join(t.TempDir(), "p")
	if _, stderr, code := run("evidence", "-c", cfg, "--tenant", "acme", "--month", month, "--out", out); code != 0 {
		t.Fatal(stderr)
	}
	next := time.Now().UTC().AddDate(0, 2, 0).Format("2006-01")
	readOnly := t.TempDir()
	if os.Geteuid() == 0 {
		if err := exec.Command("chattr", "+i", readOnly).Run(); err != nil {
			t.Fatalf("chattr is required to make a directory read-only for root: %v", err)
		}
		t.Cleanup(func() { exec.Command("chattr", "-i", readOnly).Run() })
	} else if err := os.Chmod(readOnly, 0o500); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown tenant", []string{"--tenant", "gamma", "--month", month, "--out", filepath.Join(t.TempDir(), "x")}, 1, `unknown tenant "gamma"`},
		{"future month", []string{"--tenant", "acme", "--month", next, "--out", filepath.Join(t.TempDir(), "x")}, 1, "has not begun"},
		{"bad month", []string{"--tenant", "acme", "--month", "2026-13", "--out", filepath.Join(t.TempDir(), "x")}, 2, "want YYYY-MM"},
		{"different packet in out", []string{"--tenant", "acme", "--month", "2020-01", "--out", out}, 1, "already holds a different evidence packet"},
		{"read-only path", []string{"--tenant", "acme", "--month", month, "--out", filepath.Join(readOnly, "p")}, 1, "cannot write beside"},
		{"missing out", []string{"--tenant", "acme", "--month", month}, 2, "--out is required"},
		{"bad window", []string{"--tenant", "acme", "--month", month, "--out", "x", "--stale-after", "soon"}, 2, "--stale-after"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, stderr, code := run(append([]string{"evidence", "-c", cfg}, tc.args...)...)
			if code != tc.code || !strings.HasPrefix(stderr, "warden: ") || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q on one warden: line", code, stderr, tc.code, tc.want)
			}
		})
	}
}
