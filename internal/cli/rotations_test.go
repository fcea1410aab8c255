package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
)

// TestReconcileApplyLeavesTheRotationOwedAndGrantsListsIt: reconcile
// --apply ends a grant whose static credential is owed a rotation; the
// command runs no end-of-grant step, so the row stays owed, the output
// says who rotates it, and `warden grants` lists it until it is done.
// Host text in the last error is escaped.
func TestReconcileApplyLeavesTheRotationOwedAndGrantsListsIt(t *testing.T) {
	data, cfg, _ := govData(t)
	st, err := audit.Open(context.Background(), data, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now, _ := audit.Time(time.Now())
	err = st.Update(context.Background(), func(tx *audit.Tx) error {
		_, err := tx.Exec(`INSERT INTO rotations (grant_id, tenant, role, kv_path, host, login, state, last_error,
			next_attempt_at, created_at, updated_at) VALUES (2, 'acme', 'prod-root', 'secret/data/breakglass/acme', 'web01', 'root',
			'owed', ?, ?, ?, ?)`, "planted in /home/\u202eevil", now, now, now)
		return err
	})
	st.Close()
	if err != nil {
		t.Fatal(err)
	}
	out, _, code := run("grants", "--data", data)
	if code != 0 || strings.Contains(out, "Rotation owed") || !strings.Contains(out, "owed at end") {
		t.Fatalf("grants before the grant ended:\n%s", out)
	}

	out, errOut, code := run("reconcile", "-c", cfg, "--apply", "--by", "carol", "--json")
	var rec struct {
		Deprovisioned []int64 `json:"deprovisioned_grants"`
		RotationsOwed []int64 `json:"rotations_owed"`
	}
	if err := json.Unmarshal([]byte(out), &rec); err != nil || code != 0 || len(rec.RotationsOwed) != 1 || rec.RotationsOwed[0] != 2 {
		t.Fatalf("reconcile --apply --json: %d %v\n%s%s", code, err, out, errOut)
	}

	out, _, code = run("grants", "--data", data)
	if code != 0 || !strings.Contains(out, "Rotation owed (1)") || !strings.Contains(out, "OWED") ||
		!strings.Contains(out, "root@web01") || !strings.Contains(out, `\u202e`) || strings.Contains(out, "\u202e") {
		t.Fatalf("grants after reconcile:\n%s", out)
	}
	out, _, code = run("grants", "--data", data, "--json")
	var grants []struct {
		ID       int64 `json:"id"`
		Rotation *struct {
			State string `json:"state"`
			Host  string `json:"host"`
		} `json:"rotation"`
	}
	if err := json.Unmarshal([]byte(out), &grants); err != nil || code != 0 {
		t.Fatalf("grants --json: %v\n%s", err, out)
	}
	for _, g := range grants {
		if (g.ID == 2) != (g.Rotation != nil) || g.ID == 2 && (g.Rotation.State != "owed" || g.Rotation.Host != "web01") {
			t.Errorf("grant %d rotation %+v", g.ID, g.Rotation)
		}
	}
}
