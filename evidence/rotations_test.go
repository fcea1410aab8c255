package evidence

import (
	"path/filepath"
	"strings"
	"testing"
)

// TestOwedRotationIsOverdueInEveryPacketUntilDone: a break-glass grant
// ended on 30 October and its key is rotated only on 3 December. The
// packets of October and November list the owed rotation (once, however
// many attempts failed), December's does not, and rebuilding October
// after the rotation gives the same verdict.
func TestOwedRotationIsOverdueInEveryPacketUntilDone(t *testing.T) {
	w := newWorld(t, at("2026-10-30T10:00:00Z"))
	w.request(1, "bob", "break-glass", "acme", "approved", "2026-10-30T09:00:00Z", "2026-10-30T09:05:00Z")
	w.grant(1, 1, "bob", "break-glass", "acme", "2026-10-30T09:05:00Z", "2026-10-30T10:05:00Z", "2026-10-30T09:50:00Z", "relinquished")
	w.exec(`INSERT INTO rotations (grant_id, tenant, role, kv_path, host, login, state, attempts, last_error,
		next_attempt_at, created_at, updated_at) VALUES (1, 'acme', 'break-glass', 'secret/data/breakglass/acme',
		'web01', 'root', 'failed', 2, 'sources: planted', ?, ?, ?)`,
		stamp(t, "2026-10-30T10:00:00Z"), stamp(t, "2026-10-30T09:05:00Z"), stamp(t, "2026-10-30T10:00:00Z"))
	for _, ts := range []string{"2026-10-30T09:51:00Z", "2026-10-30T09:53:00Z"} {
		w.event(ts, EventRotation, "grant:1", map[string]any{"grant_id": 1, "tenant": "acme", "role": "break-glass",
			"ok": false, "error": "sources: planted"})
	}
	// Another tenant's owed rotation never shows in acme's packet.
	w.grant(2, nil, "zed", "bg", "beta", "2026-10-30T09:05:00Z", "2026-10-30T10:05:00Z", "2026-10-30T09:50:00Z", "expired")
	w.exec(`INSERT INTO rotations (grant_id, tenant, role, kv_path, host, login, state, next_attempt_at, created_at, updated_at)
		VALUES (2, 'beta', 'bg', 'secret/data/bg', 'db01', 'root', 'owed', ?, ?, ?)`,
		stamp(t, "2026-10-30T10:00:00Z"), stamp(t, "2026-10-30T09:05:00Z"), stamp(t, "2026-10-30T10:00:00Z"))

	build := func(month string) Summary {
		t.Helper()
		pk, err := Build(w.ctx, Options{DataDir: w.dir, Tenant: "acme", Month: at(month), Out: filepath.Join(t.TempDir(), "p"),
			Policy: w.cfg, Now: w.clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		return pk.Summary
	}
	owed := func(s Summary) []OverdueItem {
		var out []OverdueItem
		for _, o := range s.Overdue {
			if o.Kind == OverdueRotationOwed || o.Kind == OverdueRotation {
				out = append(out, o)
			}
		}
		return out
	}
	w.clk.Set(at("2026-12-02T00:00:00Z"))
	oct := build("2026-10-01T00:00:00Z")
	for _, s := range []Summary{oct, build("2026-11-01T00:00:00Z")} {
		items := owed(s)
		if len(items) != 1 || items[0].Kind != OverdueRotationOwed || items[0].Subject != "grant 1" ||
			!strings.Contains(items[0].Detail, "root@web01") || strings.Contains(items[0].Detail, "db01") {
			t.Errorf("%s: rotation items %+v, want one owed item for grant 1", s.Month, items)
		}
	}

	w.exec(`UPDATE rotations SET state = 'done', done_at = ? WHERE grant_id = 1`, stamp(t, "2026-12-03T08:00:00Z"))
	w.event("2026-12-03T08:00:00Z", EventRotation, "grant:1", map[string]any{"grant_id": 1, "ok": true})
	w.clk.Set(at("2026-12-04T00:00:00Z"))
	if items := owed(build("2026-12-01T00:00:00Z")); len(items) != 0 {
		t.Errorf("December, after the rotation: %+v", items)
	}
	again := build("2026-10-01T00:00:00Z")
	if a, b := owed(again), owed(oct); len(a) != 1 || a[0] != b[0] {
		t.Errorf("October rebuilt after the rotation: %+v, first build %+v", a, b)
	}
}

// TestPacketOfADatabaseWithoutRotations: a database last opened by an
// older gateway (no rotations table) still gives a packet.
func TestPacketOfADatabaseWithoutRotations(t *testing.T) {
	w := newWorld(t, at("2026-10-30T10:00:00Z"))
	// As an older gateway left it: no table, and schema_migrations
	// never recorded 0004 (what the packet asks).
	w.exec(`DROP TABLE rotations`)
	w.exec(`DELETE FROM schema_migrations WHERE version >= 4`)
	w.clk.Set(at("2026-11-02T00:00:00Z"))
	if _, err := Build(w.ctx, Options{DataDir: w.dir, Tenant: "acme", Month: at("2026-10-01T00:00:00Z"),
		Out: filepath.Join(t.TempDir(), "p"), Policy: w.cfg, Now: w.clk.Now}); err != nil {
		t.Fatal(err)
	}
}
