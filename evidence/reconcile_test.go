package evidence

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/exceptions"
)

// drift seeds grants that the policy of testPolicy explains or not, and
// sets the clock to 2026-11-15.
func drift(t *testing.T) *world {
	w := newWorld(t, at("2026-06-01T00:00:00Z"))
	// Activations: alice 75 days ago, dave 137 days ago (and again below),
	// gina never.
	w.grant(1, nil, "alice", "prod-root", "acme", "2026-09-01T00:00:00Z", "2026-09-01T01:00:00Z", "2026-09-01T01:00:00Z", "expired")
	w.grant(2, nil, "dave", "prod-root", "acme", "2026-07-01T00:00:00Z", "2026-07-01T01:00:00Z", "2026-07-01T01:00:00Z", "expired")
	// Active at 2026-11-15T12:00: one explained (dave activates again),
	// five not.
	w.grant(10, nil, "dave", "break-glass", "acme", "2026-11-15T11:00:00Z", "2026-11-15T13:00:00Z", "", "")
	w.grant(11, nil, "zoe", "old-role", "acme", "2026-11-15T11:00:00Z", "2026-11-15T13:00:00Z", "", "")
	w.grant(12, nil, "bob", "prod-root", "beta", "2026-11-15T11:00:00Z", "2026-11-15T13:00:00Z", "", "")
	w.grant(13, nil, "bob", "web-deploy", "acme", "2026-11-15T11:00:00Z", "2026-11-15T13:00:00Z", "", "")
	w.grant(14, nil, "zoe", "prod-root", "acme", "2026-11-15T11:00:00Z", "2026-11-15T13:00:00Z", "", "")
	w.grant(15, nil, "bob", "prod-root", "acme", "2026-11-15T11:00:00Z", "2026-11-15T13:00:00Z", "", "")
	// Not active: ended, past its expiry, or not yet started.
	w.grant(16, nil, "zoe", "old-role", "acme", "2026-11-15T10:00:00Z", "2026-11-15T13:00:00Z", "2026-11-15T11:00:00Z", "revoked")
	w.grant(17, nil, "zoe", "old-role", "acme", "2026-11-15T09:00:00Z", "2026-11-15T10:00:00Z", "", "")
	w.grant(18, nil, "zoe", "old-role", "acme", "2026-11-15T12:30:00Z", "2026-11-15T13:00:00Z", "", "")
	w.clk.Set(at("2026-11-15T12:00:00Z"))
	return w
}

func staleNames(r *Reconciliation) []string {
	var out []string
	for _, s := range r.Stale {
		out = append(out, s.Tenant+"/"+s.User)
	}
	return out
}

func TestReconcileFindsStaleAdminsAndUnexplainedGrants(t *testing.T) {
	w := drift(t)
	before := countRows(t, w)
	rec, err := Reconcile(w.ctx, w.st.DB(), w.cfg, ReconcileOptions{Now: w.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := staleNames(rec), []string{"acme/gina", "beta/alice", "beta/dave", "beta/gina"}; !reflect.DeepEqual(got, want) {
		t.Errorf("stale = %v, want %v", got, want)
	}
	if gina := rec.Stale[0]; !reflect.DeepEqual(gina.Roles, []string{"prod-root"}) || !gina.LastActivation.IsZero() {
		t.Errorf("gina = %+v", gina)
	}
	if dave := rec.Stale[2]; !reflect.DeepEqual(dave.Roles, []string{"beta-root"}) {
		t.Errorf("beta dave = %+v", dave)
	}
	why := map[int64]string{}
	for _, g := range rec.Unexplained {
		why[g.GrantID] = g.Why
	}
	want := map[int64]string{
		11: "role old-role is no longer in the policy",
		12: "role prod-root now belongs to tenant acme",
		13: "role web-deploy is no longer privileged",
		14: "user zoe is no longer in the policy",
		15: "user bob is no longer eligible for prod-root",
	}
	if !reflect.DeepEqual(why, want) {
		t.Errorf("unexplained = %v\nwant %v", why, want)
	}
	if after := countRows(t, w); !reflect.DeepEqual(after, before) {
		t.Fatalf("Reconcile wrote: %v -> %v", before, after)
	}
}

func TestReconcileWindowAndTenant(t *testing.T) {
	w := drift(t)
	rec, err := Reconcile(w.ctx, w.st.DB(), w.cfg, ReconcileOptions{Now: w.clk.Now, StaleAfter: 30 * 24 * time.Hour, Tenant: "acme"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := staleNames(rec), []string{"acme/alice", "acme/gina"}; !reflect.DeepEqual(got, want) {
		t.Errorf("stale with a 30d window = %v, want %v", got, want)
	}
	if alice := rec.Stale[0]; !alice.LastActivation.Equal(at("2026-09-01T00:00:00Z")) ||
		!reflect.DeepEqual(alice.Roles, []string{"prod-root"}) {
		t.Errorf("alice = %+v", alice)
	}
	for _, g := range rec.Unexplained {
		if g.Tenant != "acme" {
			t.Errorf("tenant filter let through grant %+v", g)
		}
	}
}

func TestApplyReconcileRecordsTheCleanUp(t *testing.T) {
	w := drift(t)
	var ended []int64
	opt := ReconcileOptions{Now: w.clk.Now, Actor: "carol", GrantEnded: func(id int64) { ended = append(ended, id) }}
	rec, err := ApplyReconcile(w.ctx, w.st, w.cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(rec.Deprovisioned, []int64{11, 12, 13, 14, 15}) || !reflect.DeepEqual(ended, rec.Deprovisioned) {
		t.Fatalf("deprovisioned %v, callback %v", rec.Deprovisioned, ended)
	}
	rows, err := w.st.DB().Query(`SELECT id, ended_at, end_reason FROM grants WHERE end_reason = 'deprovisioned' ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		var endedAt, reason string
		if err := rows.Scan(&id, &endedAt, &reason); err != nil {
			t.Fatal(err)
		}
		if endedAt != "2026-11-15T12:00:00.000000Z" {
			t.Errorf("grant %d ended_at %s", id, endedAt)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if !reflect.DeepEqual(ids, rec.Deprovisioned) {
		t.Fatalf("grants ended in the table: %v", ids)
	}

	reg := &exceptions.Register{DB: w.st.DB(), Now: w.clk.Now}
	list, err := reg.List(w.ctx, exceptions.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 4 || len(rec.Flagged) != 4 {
		t.Fatalf("exceptions %+v, flagged %v", list, rec.Flagged)
	}
	for _, e := range list {
		if e.Reason != "stale admin: no activation in 90d" || e.CreatedBy != "carol" ||
			!e.ExpiresAt.Equal(w.clk.Now().Add(30*24*time.Hour)) || !strings.Contains(e.Controls, "-root") {
			t.Errorf("exception %+v", e)
		}
	}
	types := eventTypes(t, w)
	if types[EventGrantDeprovision] != 5 || types[EventStaleAdmin] != 4 || types[exceptions.EventAdded] != 4 {
		t.Fatalf("events = %v", types)
	}
	rep, err := audit.Verify(w.ctx, w.dir)
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("audit chain after apply: %v %v", err, rep.Problems)
	}

	// Applying again changes nothing: the stale admins are covered.
	again, err := ApplyReconcile(w.ctx, w.st, w.cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.Flagged) != 0 || len(again.Deprovisioned) != 0 || len(again.Stale) != 4 || again.Stale[0].ExceptionID == 0 {
		t.Fatalf("second apply = %+v", again)
	}
	if types2 := eventTypes(t, w); !reflect.DeepEqual(types2, types) {
		t.Fatalf("second apply wrote events: %v -> %v", types, types2)
	}
}

func TestReconcileNeedsAPolicy(t *testing.T) {
	w := drift(t)
	if _, err := Reconcile(w.ctx, w.st.DB(), nil, ReconcileOptions{}); err == nil {
		t.Error("Reconcile without a policy succeeded")
	}
	if _, err := ApplyReconcile(w.ctx, w.st, nil, ReconcileOptions{}); err == nil {
		t.Error("ApplyReconcile without a policy succeeded")
	}
}

func eventTypes(t *testing.T, w *world) map[string]int {
	t.Helper()
	evs, err := w.st.Events(w.ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, e := range evs {
		m[e.Type]++
	}
	return m
}

// countRows counts every table's rows, to show that a read wrote nothing.
func countRows(t *testing.T, w *world) []int {
	t.Helper()
	var out []int
	for _, table := range []string{"grants", "exceptions", "audit_events"} {
		var n int
		if err := w.st.DB().QueryRow(`SELECT COUNT(*) FROM ` + table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	var ended int
	if err := w.st.DB().QueryRow(`SELECT COUNT(*) FROM grants WHERE ended_at IS NOT NULL`).Scan(&ended); err != nil {
		t.Fatal(err)
	}
	return append(out, ended)
}
