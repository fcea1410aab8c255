package audit

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// searchFixture is a store holding sessions of two tenants, with commands
// and indexed screen text, at known start times.
type searchFixture struct {
	s   *Store
	dir string
}

// fixture sessions: id, user, host, tenant, role, end reason ("" = live),
// start minute, commands, screen text.
var fixtureSessions = []struct {
	id, user, host, tenant, role, end string
	minute                            int
	commands                          []string
	screen                            string
}{
	{"s1", "alice", "web01", "acme", "web-deploy", "exit", 1, []string{"ls -la", "uptime"}, "total 12\nload average 0.1"},
	{"s2", "bob", "db01", "acme", "prod-root", "killed", 2, []string{"psql -c 'DROP TABLE customers'"}, "psql> DROP TABLE customers;\nDROP TABLE"},
	{"s3", "alice", "db01", "globex", "globex-root", "exit", 3, []string{"cat /etc/passwd"}, "root:x:0:0:root:/root:/bin/bash"},
	{"s4", "carol", "web01", "globex", "globex-root", "grant expired", 4, []string{"100%_done"}, "drop  table\ncustomers"},
	{"s5", "alice", "web01", "acme", "prod-root", "", 5, []string{"vim /etc/hosts"}, ""},
}

func newSearchFixture(t *testing.T) *searchFixture {
	t.Helper()
	dir := t.TempDir()
	s := openStore(t, dir)
	ctx := context.Background()
	for _, f := range fixtureSessions {
		sess := Session{ID: f.id, User: f.user, Login: "root", Host: f.host, Tenant: f.tenant, Role: f.role,
			StartedAt: t0.Add(time.Duration(f.minute) * time.Minute)}
		mustStart(t, s, sess)
		for _, c := range f.commands {
			if err := s.LogCommand(ctx, Command{SessionID: f.id, User: f.user, Login: "root", Host: f.host,
				Tenant: f.tenant, Source: SourceShell, Command: c, Action: ActionAllowed}); err != nil {
				t.Fatal(err)
			}
		}
		if f.end == "" {
			continue
		}
		if err := s.EndSession(ctx, f.id, SessionEnd{Reason: f.end}); err != nil {
			t.Fatal(err)
		}
		if f.screen != "" {
			if err := s.writeOutput(ctx, f.id, []byte(f.screen), false, ""); err != nil {
				t.Fatal(err)
			}
		}
	}
	return &searchFixture{s: s, dir: dir}
}

func ids(p SessionPage) []string {
	out := []string{}
	for _, s := range p.Sessions {
		out = append(out, s.ID)
	}
	return out
}

func TestSearchSessionsFilters(t *testing.T) {
	fx := newSearchFixture(t)
	ctx := context.Background()
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	for _, tc := range []struct {
		name string
		q    SessionQuery
		want []string
	}{
		{"all, newest first", SessionQuery{}, []string{"s5", "s4", "s3", "s2", "s1"}},
		{"user", SessionQuery{User: "alice"}, []string{"s5", "s3", "s1"}},
		{"user is exact", SessionQuery{User: "ali"}, []string{}},
		{"host", SessionQuery{Host: "db01"}, []string{"s3", "s2"}},
		{"tenant/host", SessionQuery{Host: "globex/db01"}, []string{"s3"}},
		{"tenant", SessionQuery{Tenant: "acme"}, []string{"s5", "s2", "s1"}},
		{"role", SessionQuery{Role: "globex-root"}, []string{"s4", "s3"}},
		{"end reason", SessionQuery{EndReason: "grant expired"}, []string{"s4"}},
		{"since", SessionQuery{Since: at(3)}, []string{"s5", "s4", "s3"}},
		{"until is exclusive", SessionQuery{Until: at(3)}, []string{"s2", "s1"}},
		{"since and until", SessionQuery{Since: at(2), Until: at(4)}, []string{"s3", "s2"}},
		{"ids (live only)", SessionQuery{IDs: []string{"s5", "s1", "nosuch"}}, []string{"s5", "s1"}},
		{"empty ids: none", SessionQuery{IDs: []string{}}, []string{}},
		{"command contains, case-insensitive", SessionQuery{CommandContains: "drop table"}, []string{"s2"}},
		{"command contains a substring", SessionQuery{CommandContains: "etc/"}, []string{"s5", "s3"}},
		{"command contains: % is literal", SessionQuery{CommandContains: "0%"}, []string{"s4"}},
		{"command contains: _ is literal", SessionQuery{CommandContains: "%_d"}, []string{"s4"}},
		{"command contains: no match", SessionQuery{CommandContains: "rm -rf"}, []string{}},
		{"output phrase", SessionQuery{OutputContains: "DROP TABLE"}, []string{"s4", "s2"}},
		{"output phrase across a line break", SessionQuery{OutputContains: "table customers"}, []string{"s4", "s2"}},
		{"output phrase order matters", SessionQuery{OutputContains: "table drop"}, []string{}},
		{"output punctuation separates", SessionQuery{OutputContains: "root:x:0"}, []string{"s3"}},
		{"output words are whole", SessionQuery{OutputContains: "TABL"}, []string{}},
		{"combined", SessionQuery{User: "alice", Tenant: "acme", CommandContains: "ls"}, []string{"s1"}},
		{"combined with output", SessionQuery{Tenant: "acme", OutputContains: "drop table"}, []string{"s2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := fx.s.SearchSessions(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(p); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			if p.Next != "" {
				t.Errorf("Next = %q on a short page", p.Next)
			}
		})
	}
}

// A viewer scoped to one tenant never sees another's sessions, however
// the query is phrased, including through the command log and the output
// index, which hold other tenants' text.
func TestSearchSessionsTenantScope(t *testing.T) {
	fx := newSearchFixture(t)
	ctx := context.Background()
	scopeA := []string{"acme"}
	for _, tc := range []struct {
		name string
		q    SessionQuery
		want []string
	}{
		{"scope alone", SessionQuery{Tenants: scopeA}, []string{"s5", "s2", "s1"}},
		{"tenant B asked for", SessionQuery{Tenants: scopeA, Tenant: "globex"}, []string{}},
		{"host of B", SessionQuery{Tenants: scopeA, Host: "globex/db01"}, []string{}},
		{"role of B", SessionQuery{Tenants: scopeA, Role: "globex-root"}, []string{}},
		{"B's session id", SessionQuery{Tenants: scopeA, IDs: []string{"s3", "s4"}}, []string{}},
		{"B's command", SessionQuery{Tenants: scopeA, CommandContains: "passwd"}, []string{}},
		{"B's screen", SessionQuery{Tenants: scopeA, OutputContains: "root x 0"}, []string{}},
		{"phrase both have", SessionQuery{Tenants: scopeA, OutputContains: "drop table"}, []string{"s2"}},
		{"empty scope sees nothing", SessionQuery{Tenants: []string{}}, []string{}},
		{"empty scope, output search", SessionQuery{Tenants: []string{}, OutputContains: "drop"}, []string{}},
		{"two tenants", SessionQuery{Tenants: []string{"acme", "globex"}, User: "carol"}, []string{"s4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := fx.s.SearchSessions(ctx, tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(p); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
	// A cursor from an unscoped listing does not widen a scoped one.
	all, err := fx.s.SearchSessions(ctx, SessionQuery{Limit: 1})
	if err != nil {
		t.Fatal(err)
	}
	p, err := fx.s.SearchSessions(ctx, SessionQuery{Tenants: scopeA, After: all.Next})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Sessions {
		if s.Tenant != "acme" {
			t.Errorf("scoped page after a foreign cursor holds %s of %s", s.ID, s.Tenant)
		}
	}
}

// Paging visits every session exactly once, in order, even while new
// sessions start between pages and several share a start time.
func TestSearchSessionsPagingAcrossInserts(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	var want []string
	for i := 0; i < 23; i++ {
		id := fmt.Sprintf("p%02d", i)
		// Three sessions per start time: ties are settled by id.
		sess := testSession(id)
		sess.StartedAt = t0.Add(time.Duration(i/3) * time.Second)
		mustStart(t, s, sess)
		want = append(want, id)
	}
	sort.Slice(want, func(i, j int) bool {
		a, b := want[i], want[j]
		ai, bi := (int(a[1]-'0')*10+int(a[2]-'0'))/3, (int(b[1]-'0')*10+int(b[2]-'0'))/3
		if ai != bi {
			return ai > bi
		}
		return a > b
	})
	var got []string
	cursor := ""
	for page := 0; ; page++ {
		p, err := s.SearchSessions(ctx, SessionQuery{After: cursor, Limit: 5})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Sessions) > 5 {
			t.Fatalf("page of %d", len(p.Sessions))
		}
		got = append(got, ids(p)...)
		// Newer sessions start meanwhile: they belong before the first
		// page and must not shift the pages still to come.
		sess := testSession(fmt.Sprintf("new%d", page))
		sess.StartedAt = t0.Add(time.Hour + time.Duration(page)*time.Second)
		mustStart(t, s, sess)
		if p.Next == "" {
			break
		}
		cursor = p.Next
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paged\n got %v\nwant %v", got, want)
	}
	// A page that ends exactly at the last row says so.
	p, err := s.SearchSessions(ctx, SessionQuery{Limit: 23 + 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Sessions) != 28 || p.Next != "" {
		t.Errorf("full page: %d rows, Next %q", len(p.Sessions), p.Next)
	}
}

func TestSearchSessionsLimit(t *testing.T) {
	s := openStore(t, t.TempDir())
	ctx := context.Background()
	for i := 0; i < MaxPageSize+2; i++ {
		sess := testSession(fmt.Sprintf("l%03d", i))
		sess.StartedAt = t0.Add(time.Duration(i) * time.Millisecond)
		mustStart(t, s, sess)
	}
	for _, tc := range []struct{ limit, want int }{{0, DefaultPageSize}, {-3, DefaultPageSize}, {7, 7}, {10000, MaxPageSize}} {
		p, err := s.SearchSessions(ctx, SessionQuery{Limit: tc.limit})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Sessions) != tc.want || p.Next == "" {
			t.Errorf("Limit %d: %d rows (want %d), Next %q", tc.limit, len(p.Sessions), tc.want, p.Next)
		}
	}
}

// Every malformed cursor is a clear ErrInvalid, never an SQL error or a
// silently different page.
func TestSearchSessionsBadCursor(t *testing.T) {
	fx := newSearchFixture(t)
	ctx := context.Background()
	b64 := func(s string) string { return cursorVersion + base64.RawURLEncoding.EncodeToString([]byte(s)) }
	for _, c := range []string{
		"garbage",
		"1.",
		"1.!!!!",
		"2." + base64.RawURLEncoding.EncodeToString([]byte("2026-11-29T08:00:00.000000Zs1")),
		b64("2026-11-29T08:00:00.000000Z"),                 // no id
		b64("2026-11-29T08:00:00Z s1xxxxxxxxxxxxx"),        // not the stored time format
		b64("0000-01-01T00:00:00.000000Zs1"),               // year 0
		b64("2026-11-29T08:00:00.000000Zs1' OR '1'='1"),    // SQL in the id
		b64("2026-11-29T08:00:00.000000Z../../etc/passwd"), // a path
		cursorVersion + strings.Repeat("A", 600),
	} {
		_, err := fx.s.SearchSessions(ctx, SessionQuery{After: c})
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "bad page cursor") {
			t.Errorf("cursor %q: err = %v, want a bad page cursor error", c, err)
		}
	}
	// A well-formed cursor of a row that does not exist is just a position.
	p, err := fx.s.SearchSessions(ctx, SessionQuery{After: encodeCursor(t0.Add(3*time.Minute), "s3")})
	if err != nil {
		t.Fatal(err)
	}
	if got := ids(p); !reflect.DeepEqual(got, []string{"s2", "s1"}) {
		t.Errorf("after s3: %v", got)
	}
}

// What a person types into the output search cannot change the FTS query:
// operators, quotes and wildcards are treated as separators (or plain
// words), and input with no words is a clear error.
func TestSearchSessionsOutputQueryInjection(t *testing.T) {
	fx := newSearchFixture(t)
	ctx := context.Background()
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`"DROP TABLE"`, []string{"s4", "s2"}},
		{`drop" OR "root`, []string{}},          // would match s2, s3, s4 as an OR
		{`drop OR root`, []string{}},            // OR is a word of the phrase
		{`drop NEAR root`, []string{}},          // NEAR likewise
		{`drop NOT table`, []string{}},          // NOT likewise
		{`dro*`, []string{}},                    // no prefix search
		{`drop -table`, []string{"s4", "s2"}},   // '-' is a separator, not NOT
		{`(drop) AND (table)`, []string{}},      // AND is a word: no phrase "drop and table"
		{`text:drop`, []string{}},               // no column filter: the phrase "text drop"
		{`^drop table`, []string{"s4", "s2"}},   // no anchor
		{"drop\x00table", []string{"s4", "s2"}}, // NUL separates words
	} {
		p, err := fx.s.SearchSessions(ctx, SessionQuery{OutputContains: tc.in})
		if err != nil {
			t.Errorf("%q: %v", tc.in, err)
			continue
		}
		if got := ids(p); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
		}
	}
	for _, in := range []string{`"`, `***`, `" OR "`[1:2], `()`, strings.Repeat("a ", maxPhraseWords+1), strings.Repeat("x", maxContainsBytes+1)} {
		_, err := fx.s.SearchSessions(ctx, SessionQuery{OutputContains: in})
		if !errors.Is(err, ErrInvalid) {
			t.Errorf("%.40q: err = %v, want ErrInvalid", in, err)
		}
	}
	// The command search is a LIKE with every wildcard escaped.
	_, err := fx.s.SearchSessions(ctx, SessionQuery{CommandContains: strings.Repeat("x", maxContainsBytes+1)})
	if !errors.Is(err, ErrInvalid) {
		t.Errorf("long command search: err = %v", err)
	}
	for _, in := range []string{`%`, `_`, `\`, `'`, `"`, `\%`} {
		p, err := fx.s.SearchSessions(ctx, SessionQuery{CommandContains: in})
		if err != nil {
			t.Errorf("%q: %v", in, err)
			continue
		}
		for _, sess := range p.Sessions {
			cmds, _ := fx.s.Commands(ctx, CommandFilter{SessionID: sess.ID})
			found := false
			for _, c := range cmds {
				found = found || strings.Contains(strings.ToLower(c.Command), strings.ToLower(in))
			}
			if !found {
				t.Errorf("%q matched %s, whose commands do not contain it", in, sess.ID)
			}
		}
	}
}

// The command search answers the same whichever plan it takes: the probe
// of the newest sessions (a common text) or the scan of the command log
// (a rare one), paged to the end, under other filters too.
func TestSearchSessionsCommandPlansAgree(t *testing.T) {
	s := openStore(t, t.TempDir())
	seedSearch(t, s, 3*probeWindow)
	ctx := context.Background()
	// The expected answer, the slow way.
	rows, err := s.db.Query(`SELECT s.id, s.user, c.command FROM sessions s JOIN commands c ON c.session_id = s.id
		ORDER BY s.started_at DESC, s.id DESC`)
	if err != nil {
		t.Fatal(err)
	}
	type row struct{ id, user, cmd string }
	var all []row
	for rows.Next() {
		var r row
		rows.Scan(&r.id, &r.user, &r.cmd)
		all = append(all, r)
	}
	rows.Close()
	for _, tc := range []struct{ text, user string }{
		{"nginx", ""}, {"DROP TABLE", ""}, {"no such command", ""}, {"/VAR/", ""},
		{"nginx", "u042"}, {"drop table", "u007"},
	} {
		var want []string
		seen := map[string]bool{}
		for _, r := range all {
			if !seen[r.id] && (tc.user == "" || r.user == tc.user) && strings.Contains(strings.ToLower(r.cmd), strings.ToLower(tc.text)) {
				seen[r.id] = true
				want = append(want, r.id)
			}
		}
		var got []string
		q := SessionQuery{CommandContains: tc.text, User: tc.user, Limit: 40}
		for {
			p, err := s.SearchSessions(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, ids(p)...)
			if p.Next == "" {
				break
			}
			q.After = p.Next
		}
		if !reflect.DeepEqual(got, want) && !(len(got) == 0 && len(want) == 0) {
			t.Errorf("%q user %q: %d sessions, want %d", tc.text, tc.user, len(got), len(want))
		}
	}
}

// Whatever a person types into the search boxes or sends as a cursor, the
// answer is a page or a clear ErrInvalid, never an SQL or FTS error.
func FuzzSearchSessionsInput(f *testing.F) {
	for _, s := range []string{`DROP TABLE`, `"`, `a OR b`, `x*`, `NEAR/3`, `^a`, `-a`, `(a)`, `a:b`, "\x00", `%_\`,
		encodeCursor(t0, "s1"), "1.", "1.AAAA"} {
		f.Add(s)
	}
	dir := f.TempDir()
	st, err := Open(context.Background(), dir, Options{Now: (&clock{}).Now})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { st.Close() })
	mustStartF := func(id string) {
		if err := st.StartSession(context.Background(), testSession(id)); err != nil {
			f.Fatal(err)
		}
		if err := st.EndSession(context.Background(), id, SessionEnd{Reason: "exit"}); err != nil {
			f.Fatal(err)
		}
		if err := st.writeOutput(context.Background(), id, []byte("DROP TABLE customers; a OR b"), false, ""); err != nil {
			f.Fatal(err)
		}
	}
	mustStartF("fuzz-s1")
	f.Fuzz(func(t *testing.T, in string) {
		for _, q := range []SessionQuery{{OutputContains: in}, {CommandContains: in}, {After: in}} {
			if _, err := st.SearchSessions(context.Background(), q); err != nil && !errors.Is(err, ErrInvalid) {
				t.Fatalf("%+v: %v", q, err)
			}
		}
	})
}
