package evidence

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// midnight: activity around 00:00 on 1 November, on a fake clock.
//
//	grant 1 (prod-root)    23:50 Oct 31 → revoked 00:20 Nov 1
//	session mid            23:58 Oct 31 → 00:10 Nov 1 under grant 1
//	grant 2 (break-glass)  23:55 Oct 31 → expires 00:55 Nov 1, first used 00:05
//	session bgmid          00:05 Nov 1 → 00:15 under grant 2; rotation 00:56
//	grant 3 (break-glass)  23:00 Oct 31 → expired 23:59; rotation 00:01 Nov 1
//	session oct, nov       wholly inside one month each
func midnight(t *testing.T) *world {
	w := newWorld(t, at("2026-10-31T23:00:00Z"))
	w.request(1, "alice", "prod-root", "acme", "approved", "2026-10-31T23:45:00Z", "2026-10-31T23:50:00Z")
	w.decide(1, "carol", "approved", "2026-10-31T23:50:00Z")
	w.grant(1, 1, "alice", "prod-root", "acme", "2026-10-31T23:50:00Z", "2026-11-01T00:50:00Z", "2026-11-01T00:20:00Z", "revoked")
	w.session("mid", "alice", "acme", 1, "2026-10-31T23:58:00Z", "2026-11-01T00:10:00Z", "before midnight", "after midnight")
	w.exec(`UPDATE commands SET ts = ? WHERE command = 'after midnight'`, stamp(t, "2026-11-01T00:01:00Z"))
	w.request(2, "dave", "break-glass", "acme", "approved", "2026-10-31T23:50:00Z", "2026-10-31T23:55:00Z")
	w.decide(2, "carol", "approved", "2026-10-31T23:54:00Z")
	w.decide(2, "erin", "approved", "2026-10-31T23:55:00Z")
	w.grant(2, 2, "dave", "break-glass", "acme", "2026-10-31T23:55:00Z", "2026-11-01T00:55:00Z", "2026-11-01T00:55:00Z", "expired")
	w.session("bgmid", "dave", "acme", 2, "2026-11-01T00:05:00Z", "2026-11-01T00:15:00Z", "systemctl restart db")
	w.event("2026-11-01T00:56:00Z", EventRotation, "grant:2", map[string]any{"ok": true})
	w.request(3, "dave", "break-glass", "acme", "approved", "2026-10-31T22:50:00Z", "2026-10-31T23:00:00Z")
	w.grant(3, 3, "dave", "break-glass", "acme", "2026-10-31T23:00:00Z", "2026-10-31T23:59:00Z", "2026-10-31T23:59:00Z", "expired")
	w.event("2026-11-01T00:01:00Z", EventRotation, "grant:3", map[string]any{"ok": false, "error": "host unreachable"})
	w.session("oct", "bob", "acme", 0, "2026-10-20T10:00:00Z", "2026-10-20T10:05:00Z", "ls")
	w.session("nov", "bob", "acme", 0, "2026-11-20T10:00:00Z", "2026-11-20T10:05:00Z", "ls")
	w.clk.Set(at("2026-12-02T00:00:00Z"))
	return w
}

type monthPacket struct {
	dir string
	pk  *Packet
}

func (w *world) month(t *testing.T, month string) monthPacket {
	t.Helper()
	dir := filepath.Join(t.TempDir(), month)
	pk, err := Build(w.ctx, Options{DataDir: w.dir, Tenant: "acme", Month: at(month + "-01T00:00:00Z"), Out: dir,
		Policy: w.cfg, Now: w.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return monthPacket{dir, pk}
}

// rows indexes a data file of the packet by a key column.
func (m monthPacket) rows(t *testing.T, file, key string) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for _, r := range readJSON(t, filepath.Join(m.dir, file)) {
		out[toText(r[key])] = r
	}
	return out
}

func toText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case float64:
		return itoa(int64(x))
	}
	return ""
}

// TestMonthBoundaryLosesNothing is issue 13 item 4: what spans midnight at
// the month's end is in both packets, its recording is re-hashed in the
// packet of the month it ended in, and events after midnight (a
// revocation, a break-glass use, a rotation) are in November's.
func TestMonthBoundaryLosesNothing(t *testing.T) {
	w := midnight(t)
	oct, nov := w.month(t, "2026-10"), w.month(t, "2026-11")

	osess, ns := oct.rows(t, "sessions.json", "id"), nov.rows(t, "sessions.json", "id")
	if osess["mid"] == nil || ns["mid"] == nil {
		t.Fatalf("session over midnight: in October %v, in November %v", osess["mid"] != nil, ns["mid"] != nil)
	}
	if osess["mid"]["ended_at"] != nil || ns["mid"]["ended_at"] != stamp(t, "2026-11-01T00:10:00Z") {
		t.Errorf("session over midnight ends %v in October, %v in November", osess["mid"]["ended_at"], ns["mid"]["ended_at"])
	}
	if osess["oct"] == nil || ns["oct"] != nil || osess["nov"] != nil || ns["nov"] == nil || ns["bgmid"] == nil || osess["bgmid"] != nil {
		t.Errorf("sessions: October %v, November %v", keys(osess), keys(ns))
	}
	orec, nrec := oct.rows(t, "recordings.json", "session_id"), nov.rows(t, "recordings.json", "session_id")
	if orec["mid"]["status"] != "unfinished" || nrec["mid"]["status"] != "ok" {
		t.Errorf("recording of the session over midnight: October %v, November %v", orec["mid"]["status"], nrec["mid"]["status"])
	}

	og, ng := oct.rows(t, "grants.json", "id"), nov.rows(t, "grants.json", "id")
	if og["1"]["state"] != "active" || ng["1"]["state"] != "revoked" || ng["1"]["ended_at"] != stamp(t, "2026-11-01T00:20:00Z") {
		t.Errorf("grant revoked after midnight: October %v, November %v", og["1"], ng["1"])
	}
	if og["3"] == nil || ng["3"] != nil {
		t.Errorf("grant 3 ended before midnight: in October %v, in November %v", og["3"] != nil, ng["3"] != nil)
	}
	bgIDs := func(s Summary) (ids []int64) {
		for _, b := range s.BreakGlass {
			ids = append(ids, b.GrantID)
		}
		return ids
	}
	if got := bgIDs(oct.pk.Summary); !slices.Equal(got, []int64{3, 2}) {
		t.Errorf("October break-glass uses %v, want [3 2]", got)
	}
	if got := bgIDs(nov.pk.Summary); !slices.Equal(got, []int64{2}) || nov.pk.Summary.BreakGlass[0].Rotation != rotationOK {
		t.Errorf("November break-glass uses %v (%+v), want grant 2 rotated", got, nov.pk.Summary.BreakGlass)
	}
	orot, nrot := oct.rows(t, "rotation_events.json", "grant_id"), nov.rows(t, "rotation_events.json", "grant_id")
	if len(orot) != 0 || nrot["3"]["outcome"] != rotationFailed || nrot["2"]["outcome"] != rotationOK {
		t.Errorf("rotation events: October %v, November %v", orot, nrot)
	}

	oc, nc := oct.rows(t, "commands.json", "command"), nov.rows(t, "commands.json", "command")
	if oc["before midnight"] == nil || oc["after midnight"] != nil || nc["after midnight"] == nil || nc["before midnight"] != nil {
		t.Errorf("commands: October %v, November %v", keys(oc), keys(nc))
	}

	for _, c := range []struct {
		name      string
		got, want int
	}{
		{"October sessions", oct.pk.Summary.Sessions, 2}, {"October sessions started", oct.pk.Summary.SessionsStarted, 2},
		{"November sessions", nov.pk.Summary.Sessions, 3}, {"November sessions started", nov.pk.Summary.SessionsStarted, 2},
		{"October grants", oct.pk.Summary.Grants, 3}, {"October grants started", oct.pk.Summary.GrantsStarted, 3},
		{"November grants", nov.pk.Summary.Grants, 2}, {"November grants started", nov.pk.Summary.GrantsStarted, 0},
		{"November requests created", nov.pk.Summary.RequestsCreated, 0},
	} {
		if c.got != c.want {
			t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
		}
	}

	// Nothing falls between the packets: every row is in one of them,
	// every command in exactly one.
	for _, c := range []struct{ table, file, key string }{
		{"sessions", "sessions.json", "id"}, {"grants", "grants.json", "id"}, {"requests", "requests.json", "id"},
	} {
		ids := dbIDs(t, w, c.table)
		for _, id := range ids {
			if oct.rows(t, c.file, c.key)[id] == nil && nov.rows(t, c.file, c.key)[id] == nil {
				t.Errorf("%s %s is in neither packet", c.table, id)
			}
		}
	}
	if n := len(dbIDs(t, w, "commands")); n != len(oc)+len(nc) {
		t.Errorf("%d commands, %d in October and %d in November", n, len(oc), len(nc))
	}

	// A later alteration of the recording is caught by the packet of the
	// month it ended in, November, rebuilt.
	p := filepath.Join(w.dir, "recordings", "2026-10-31", "mid.cast")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, p, append(b, "[1.0,\"o\",\"forged\"]\n"...))
	again := w.month(t, "2026-11")
	if r := again.rows(t, "recordings.json", "session_id")["mid"]; r["status"] != "mismatch" ||
		again.pk.Summary.OverdueByKind[OverdueRecording] != 1 {
		t.Errorf("altered recording of the session over midnight: %v, overdue %v", r["status"], again.pk.Summary.OverdueByKind)
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func dbIDs(t *testing.T, w *world, table string) []string {
	t.Helper()
	// The table name is one of the test's constants.
	rows, err := w.st.DB().Query(`SELECT CAST(id AS TEXT) FROM ` + table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}
