package cli

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// TestServeRecordsThePolicyItRuns: every start of the gateway stores the
// policy's bytes under its SHA-256 and says so in the audit chain, so that
// a packet rebuilt after an edit and a restart is judged by the policy
// that was in force (issue 13 item 3).
func TestServeRecordsThePolicyItRuns(t *testing.T) {
	data := t.TempDir()
	path := govPolicy(t, data)
	start := func() string {
		t.Helper()
		cfg, err := policy.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		r, err := openGateway(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
		if err != nil {
			t.Fatal(err)
		}
		r.close()
		return cfg.Version()
	}
	v1 := start()
	v1again := start() // a restart with the same file adds no version
	src, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(src), "name: prod-root", "name: prod-admin", 1)
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	v2 := start()
	if v1 != v1again || v1 == v2 {
		t.Fatalf("versions %s %s %s", v1, v1again, v2)
	}
	r, err := audit.OpenReadOnly(data)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	rows, err := r.DB().Query(`SELECT sha256, content FROM policy_versions ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for rows.Next() {
		var sha, content string
		if err := rows.Scan(&sha, &content); err != nil {
			t.Fatal(err)
		}
		got = append(got, sha)
		if sha == v2 && content != edited || sha == v1 && content != string(src) {
			t.Errorf("version %s holds other bytes", sha)
		}
	}
	rows.Close()
	if strings.Join(got, " ") != v1+" "+v2 {
		t.Errorf("policy_versions = %v, want %s %s", got, v1, v2)
	}
	// Joined here, in chain order, rather than by group_concat, which
	// PostgreSQL lacks (string_agg there).
	rows, err = r.DB().Query(`SELECT json_extract(data, '$.use') || ':' || substr(subject, 8, 8)
		FROM audit_events WHERE type = 'policy.loaded' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	var each []string
	for rows.Next() {
		var l string
		if err := rows.Scan(&l); err != nil {
			t.Fatal(err)
		}
		each = append(each, l)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	loads := strings.Join(each, " ")
	if want := "gateway:" + v1[:8] + " gateway:" + v1[:8] + " gateway:" + v2[:8]; loads != want {
		t.Errorf("policy.loaded events %q, want %q", loads, want)
	}
}
