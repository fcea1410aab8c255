package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/warden-gw/warden/internal/storetest"
)

func TestReconcileListsThenApplies(t *testing.T) {
	data, cfg, _ := govData(t)
	before, _ := auditEvents(t, data)
	out, errOut, code := run("reconcile", "-c", cfg)
	if code != 0 || !strings.Contains(out, "no activation in 90d (1)") || !strings.Contains(out, "acme    gina") ||
		!strings.Contains(out, "user bob is no longer eligible for prod-root") || !strings.Contains(out, "run with --apply") {
		t.Fatalf("reconcile: %d\n%s%s", code, out, errOut)
	}
	if evs, _ := auditEvents(t, data); evs != before || !strings.HasSuffix(evs, "session.end") { // the fixture's events
		t.Fatalf("a dry run wrote events: %q", evs)
	}

	out, errOut, code = run("reconcile", "-c", cfg, "--apply", "--by", "carol", "--json")
	var rec struct {
		Applied       bool             `json:"applied"`
		Stale         []map[string]any `json:"stale_admins"`
		Unexplained   []map[string]any `json:"unexplained_grants"`
		Flagged       []int64          `json:"flagged_exceptions"`
		Deprovisioned []int64          `json:"deprovisioned_grants"`
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil || code != 0 || !rec.Applied || len(rec.Flagged) != 1 ||
		len(rec.Deprovisioned) != 1 || rec.Deprovisioned[0] != 2 || rec.Stale[0]["user"] != "gina" {
		t.Fatalf("--apply --json: %d %v\n%s%s", code, err, out, errOut)
	}
	out, _, _ = run("exceptions", "--data", data)
	if !strings.Contains(out, "stale admin: no activation in 90d") || !strings.Contains(out, "gina") {
		t.Fatalf("exceptions after apply:\n%s", out)
	}
	evs, _ := auditEvents(t, data)
	for _, want := range []string{"grant.deprovisioned", "exception.added", "reconcile.stale_admin"} {
		if !strings.Contains(evs, want) {
			t.Errorf("events %q lack %s", evs, want)
		}
	}

	// Again: gina is covered by her exception, nothing is left to end.
	out, _, code = run("reconcile", "-c", cfg, "--apply", "--by", "carol")
	if code != 0 || !strings.Contains(out, "applied: 0 grant(s)") || !strings.Contains(out, "0 stale admin(s) flagged") {
		t.Fatalf("second apply: %d\n%s", code, out)
	}
	if _, _, code := run("audit", "verify", "--data", data); code != 0 {
		t.Fatal("audit chain broken by reconcile --apply")
	}
}

func TestReconcileRefusals(t *testing.T) {
	_, cfg, _ := govData(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string
	}{
		{"no policy", []string{"reconcile", "--data", t.TempDir()}, 2, "pass -c warden.yaml"},
		{"bad window", []string{"reconcile", "-c", cfg, "--stale-after", "ninety"}, 2, "--stale-after"},
		{"zero window", []string{"reconcile", "-c", cfg, "--stale-after", "0d"}, 2, "more than 0"},
		{"unknown tenant", []string{"reconcile", "-c", cfg, "--tenant", "gamma"}, 1, `unknown tenant "gamma"`},
		{"no database", []string{"reconcile", "-c", cfg, "--data", t.TempDir(), "--apply"}, 1, storetest.NoDatabase()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errOut, code := run(tc.args...)
			if code != tc.code || !strings.HasPrefix(errOut, "warden: ") || strings.Count(errOut, "\n") != 1 || !strings.Contains(errOut, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q on one warden: line", code, errOut, tc.code, tc.want)
			}
		})
	}
}
