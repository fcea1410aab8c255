package console

import (
	"context"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
)

// fleet seeds sessions of both tenants that differ in one filter each.
type fleet struct {
	annWeb, bobWeb, globex, dropper, live, transfer string
}

func seedFleet(t *testing.T, tc *testConsole) fleet {
	t.Helper()
	day := time.Date(2026, 11, 20, 10, 0, 0, 0, time.UTC)
	ev, cm := shell(0.5, [2]string{"uptime", "up 3 days"}, [2]string{"ls /srv", "app data"})
	var f fleet
	f.annWeb = tc.seed(t, seeded{User: "dan", Host: "web01", Tenant: "acme", Role: "acme-root", Started: day, Events: ev, Commands: cm})
	ev2, cm2 := shell(0.5, [2]string{"cat /etc/hostname", "web01"})
	f.bobWeb = tc.seed(t, seeded{User: "ann", Host: "web01", Tenant: "acme", Started: day.AddDate(0, 0, 2), Events: ev2, Commands: cm2, EndReason: "killed"})
	ev3, cm3 := shell(0.5, [2]string{"psql -c 'select 1'", "globex secret ledger"})
	f.globex = tc.seed(t, seeded{User: "dan", Host: "app01", Tenant: "globex", Role: "globex-root", Started: day.AddDate(0, 0, 1), Events: ev3, Commands: cm3})
	ev4, cm4 := shell(0.5, [2]string{"psql", "ERROR:  cannot DROP TABLE accounts"})
	f.dropper = tc.seed(t, seeded{User: "dan", Host: "web01", Tenant: "acme", Role: "acme-root", Started: day.AddDate(0, 0, 3), Events: ev4, Commands: cm4})
	ev5, cm5 := shell(0.5, [2]string{"top", "load"})
	f.live = tc.seed(t, seeded{User: "dan", Host: "web01", Tenant: "acme", Started: day.AddDate(0, 0, 4), Events: ev5, Commands: cm5, Open: true})
	f.transfer = tc.seed(t, seeded{User: "ann", Host: "web01", Tenant: "acme", Started: day.AddDate(0, 0, 5), NoRecording: true,
		Commands: []seededCmd{{Source: audit.SourceSFTP, Command: "put /srv/app.tar"}, {Source: audit.SourceSFTP, Command: "remove /tmp/x"}}})
	tc.c.d.LiveIDs = func() []string { return []string{f.live, "notasession"} }
	return f
}

// TestSessionsListFilters: each filter of the list, as an auditor of every
// tenant uses it, selects exactly the sessions it names.
func TestSessionsListFilters(t *testing.T) {
	tc := newTestConsole(t)
	f := seedFleet(t, tc)
	cl, _ := tc.signIn(t, "eve")
	all := []string{f.transfer, f.live, f.dropper, f.bobWeb, f.globex, f.annWeb}
	for _, c := range []struct {
		name, query string
		want        []string
	}{
		{"all, newest first", "", all},
		{"user", "user=ann", []string{f.transfer, f.bobWeb}},
		{"host", "host=app01", []string{f.globex}},
		{"tenant/host", "host=acme/web01", []string{f.transfer, f.live, f.dropper, f.bobWeb, f.annWeb}},
		{"tenant", "tenant=globex", []string{f.globex}},
		{"role", "role=acme-root", []string{f.dropper, f.annWeb}},
		{"since", "since=2026-11-23", []string{f.transfer, f.live, f.dropper}},
		{"until (a whole day)", "until=2026-11-21", []string{f.globex, f.annWeb}},
		{"since..until", "since=2026-11-21&until=2026-11-22", []string{f.bobWeb, f.globex}},
		{"end reason", "end_reason=killed", []string{f.bobWeb}},
		{"live only", "live=1", []string{f.live}},
		{"command contains", "command=hostname", []string{f.bobWeb}},
		{"command contains, file operation", "command=app.tar", []string{f.transfer}},
		{"output contains", "output=DROP+TABLE", []string{f.dropper}},
		{"output, case and punctuation", "output=drop-table", []string{f.dropper}},
		{"output, part of a word", "output=DRO", nil},
		{"filters combine", "user=dan&tenant=acme&command=psql", []string{f.dropper}},
	} {
		status, got, body := listIDs(t, cl, tc.srv.URL+"/sessions?"+c.query)
		if status != 200 || !slices.Equal(got, c.want) {
			t.Errorf("%s (%s): status %d, got %v, want %v\n%s", c.name, c.query, status, got, c.want, body)
		}
	}
}

// TestSessionsTenantScope: an auditor of acme finds nothing of globex by
// any route: the list, a search by output or by command, the session page
// and its recording answer as if the session did not exist, and each
// refusal is audited.
func TestSessionsTenantScope(t *testing.T) {
	tc := newTestConsole(t)
	f := seedFleet(t, tc)
	cl, _ := tc.signIn(t, "tia") // audits acme
	for _, q := range []string{"", "output=globex+secret+ledger", "command=psql", "tenant=globex", "host=globex/app01", "user=dan"} {
		_, got, _ := listIDs(t, cl, tc.srv.URL+"/sessions?"+q)
		if slices.Contains(got, f.globex) {
			t.Errorf("list %q shows globex's session to acme's auditor", q)
		}
	}
	_, got, _ := listIDs(t, cl, tc.srv.URL+"/sessions?command=psql")
	if !slices.Equal(got, []string{f.dropper}) {
		t.Errorf("acme's own psql session: %v", got)
	}
	unknown := newID(t)
	st1, b1 := get(t, cl, tc.srv.URL+"/sessions/"+f.globex)
	st2, b2 := get(t, cl, tc.srv.URL+"/sessions/"+unknown)
	if st1 != 404 || st2 != 404 || strings.ReplaceAll(b1, f.globex, unknown) != b2 {
		t.Errorf("other tenant's page %d, unknown %d; bodies differ:\n%s\n%s", st1, st2, b1, b2)
	}
	if strings.Contains(b1, "globex") || strings.Contains(b1, "app01") {
		t.Errorf("the refusal names the other tenant:\n%s", b1)
	}
	st3, b3 := get(t, cl, tc.srv.URL+"/sessions/"+f.globex+".cast")
	st4, b4 := get(t, cl, tc.srv.URL+"/sessions/"+unknown+".cast")
	if st3 != 404 || st4 != 404 || strings.Contains(b3, "ledger") || strings.ReplaceAll(b3, f.globex, unknown) != b4 {
		t.Errorf("other tenant's cast %d, unknown %d:\n%s", st3, st4, b3)
	}
	// The same IDs open for an auditor of globex's tenant.
	gus, _ := tc.signIn(t, "gus")
	if st, body := get(t, gus, tc.srv.URL+"/sessions/"+f.globex+".cast"); st != 200 || !strings.Contains(body, "ledger") {
		t.Errorf("globex's approver: %d", st)
	}
	if st, _ := get(t, gus, tc.srv.URL+"/sessions/"+f.annWeb); st != 404 {
		t.Errorf("globex's approver opens acme's session: %d", st)
	}
	evs, err := tc.c.d.Store.Events(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	var reasons []string
	for _, e := range evs {
		if e.Type == "console.refused" && e.Actor == "tia" {
			reasons = append(reasons, e.Data["reason"].(string))
		}
	}
	if len(reasons) != 4 || !strings.Contains(reasons[0], "tenant globex") || !strings.Contains(reasons[1], "unknown session") {
		t.Errorf("refusals audited: %q", reasons)
	}
}

// TestSessionsNoOversight: an operator who oversees no tenant gets an
// empty list that says why, whatever they filter by.
func TestSessionsNoOversight(t *testing.T) {
	tc := newTestConsole(t)
	f := seedFleet(t, tc)
	cl, _ := tc.signIn(t, "dan")
	status, got, body := listIDs(t, cl, tc.srv.URL+"/sessions?user=dan&output=DROP+TABLE")
	if status != 200 || len(got) != 0 || !strings.Contains(body, "data-warden-noscope") {
		t.Fatalf("status %d, rows %v\n%s", status, got, body)
	}
	if st, _ := get(t, cl, tc.srv.URL+"/sessions/"+f.dropper); st != 404 {
		t.Fatalf("own session page for a non-overseer: %d", st)
	}
}

// TestSessionsBadInput: a forged cursor, a bad date or an oversized
// search is a 400 with one line, not a query.
func TestSessionsBadInput(t *testing.T) {
	tc := newTestConsole(t)
	seedFleet(t, tc)
	cl, _ := tc.signIn(t, "eve")
	for _, q := range []string{"after=v1garbage", "after=" + url.QueryEscape("' OR 1=1 --"), "since=yesterday",
		"until=2026-13-01", "since=2026-11-22&until=2026-11-21", "command=" + strings.Repeat("x", 1025),
		"output=" + strings.Repeat("w+", 40)} {
		status, got, body := listIDs(t, cl, tc.srv.URL+"/sessions?"+q)
		if status != 400 || len(got) != 0 || !strings.Contains(body, "data-warden-error") {
			t.Errorf("%.60s: status %d rows %v", q, status, got)
		}
	}
	// Each refusal is audited, with why; the oversized text is not copied
	// into the chain whole.
	n := countEvents(t, tc, func(e audit.Event) bool {
		if e.Type != EventRefused || e.Subject != "sessions" || e.Actor != "eve" {
			return false
		}
		if reason, _ := e.Data["reason"].(string); !strings.HasPrefix(reason, "bad search: ") || len(reason) > 300 {
			t.Errorf("refusal reason %.80q (%d bytes)", reason, len(reason))
		}
		return true
	})
	if n != 7 {
		t.Errorf("%d bad searches audited, want 7", n)
	}
}

// TestSessionsPaging: following Next links visits every session once, in
// order, and the filters ride along.
func TestSessionsPaging(t *testing.T) {
	tc := newTestConsole(t)
	base := time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)
	var want []string
	for i := range 120 {
		tenant, host := "acme", "web01"
		if i%4 == 0 {
			tenant, host = "globex", "app01"
		}
		id := tc.seed(t, seeded{User: "dan", Host: host, Tenant: tenant, Started: base.Add(time.Duration(i/2) * time.Minute), NoRecording: true})
		if tenant == "acme" {
			want = append(want, id)
		}
	}
	cl, _ := tc.signIn(t, "eve")
	next := tc.srv.URL + "/sessions?tenant=acme"
	var got []string
	pages := 0
	for next != "" {
		status, ids, body := listIDs(t, cl, next)
		if status != 200 {
			t.Fatalf("page %d: %d", pages, status)
		}
		got = append(got, ids...)
		pages++
		next = ""
		if m := nextRE.FindStringSubmatch(body); m != nil {
			next = tc.srv.URL + strings.ReplaceAll(m[1], "&amp;", "&")
			if !strings.Contains(next, "tenant=acme") {
				t.Fatalf("next link lost the filter: %s", next)
			}
		}
	}
	if pages != 2 || len(got) != 90 {
		t.Fatalf("%d pages, %d rows", pages, len(got))
	}
	seen := map[string]bool{}
	for _, id := range got {
		if seen[id] {
			t.Fatalf("%s twice", id)
		}
		seen[id] = true
	}
	sort.Strings(want)
	sorted := slices.Clone(got)
	sort.Strings(sorted)
	if !slices.Equal(sorted, want) {
		t.Fatal("pages do not cover acme's sessions")
	}
}
