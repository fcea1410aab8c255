package console

import (
	"archive/zip"
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/evidence"
)

// fakeCommands answers RunCommand from a table keyed by "user: args" and
// records the calls. The real command interface is the gateway's, tested
// in package gateway and end to end; these tests are about the pages.
type fakeCommands struct {
	mu    sync.Mutex
	out   map[string]string
	errs  map[string]error
	calls []string
}

func (f *fakeCommands) RunCommand(_ context.Context, user string, args []string) ([]byte, error) {
	k := user + ": " + strings.Join(args, " ")
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, k)
	if err, ok := f.errs[k]; ok {
		return nil, err
	}
	if out, ok := f.out[k]; ok {
		return []byte(out), nil
	}
	return nil, &fakeRefusal{line: "warden: unexpected command " + k, status: 2}
}

func (f *fakeCommands) called() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

// fakeRefusal has the methods of gateway.CommandError the console reads.
type fakeRefusal struct {
	line     string
	status   int
	internal bool
}

func (e *fakeRefusal) Error() string   { return e.line }
func (e *fakeRefusal) ExitStatus() int { return e.status }
func (e *fakeRefusal) Internal() bool  { return e.internal }

func withCommands(tc *testConsole, f *fakeCommands) { tc.c.d.Commands = f }

func post(t *testing.T, cl *http.Client, u string, form url.Values) (int, string) {
	t.Helper()
	resp, err := cl.PostForm(u, form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const annRequests = `[
 {"id": 7, "user": "dan", "role": "acme-root", "tenant": "acme", "reason": "INC-9 <script>alert(1)</script>", "ticket": "INC-9",
  "duration": "1h30m0s", "state": "pending", "created_at": "2026-11-02T10:00:00Z", "approvals": []},
 {"id": 5, "user": "dan", "role": "acme-root", "tenant": "acme", "reason": "earlier \u202eevil", "duration": "30m0s",
  "state": "approved", "created_at": "2026-11-01T09:00:00Z", "decided_at": "2026-11-01T09:05:00Z",
  "approvals": [{"approver": "ann", "decision": "approved", "comment": "fine", "ts": "2026-11-01T09:05:00Z"}]},
 {"id": 3, "user": "dan", "role": "acme-root", "tenant": "acme", "reason": "first", "duration": "1h0m0s",
  "state": "denied", "created_at": "2026-10-01T09:00:00Z", "decided_at": "2026-10-01T09:05:00Z",
  "approvals": [{"approver": "zed", "decision": "denied", "comment": "no ticket", "ts": "2026-10-01T09:05:00Z"}]}
]`

// TestRequestsPageShowsWhatToDecide: the pending request of another user
// comes with everything to decide on, the requester's history drawn from
// the same listing, who decided the past ones, and the approve hook; what
// the requester typed is escaped.
func TestRequestsPageShowsWhatToDecide(t *testing.T) {
	tc := newTestConsole(t)
	f := &fakeCommands{out: map[string]string{"ann: requests --json": annRequests}}
	withCommands(tc, f)
	cl, _ := tc.signIn(t, "ann")
	code, body := get(t, cl, tc.srv.URL+"/requests")
	if code != 200 {
		t.Fatalf("status %d: %s", code, body)
	}
	for _, want := range []string{
		`data-warden-approve="7"`, `action="/requests/7/approve"`, `action="/requests/7/deny"`,
		"INC-9 &lt;script&gt;alert(1)&lt;/script&gt;", "1h30m00s", "acme-root", "acme",
		`data-warden-history="5"`, `data-warden-history="3"`, `earlier \u202eevil`,
		`approved by <b data-warden-approver>ann</b>`, `denied by <b data-warden-approver>zed</b>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if strings.Contains(body, "<script>alert") || strings.Contains(body, "\u202e") {
		t.Fatal("unescaped input on the page")
	}
	if strings.Contains(body, `data-warden-approve="5"`) || strings.Contains(body, `data-warden-approve="3"`) {
		t.Fatal("decided requests offer an approve button")
	}
	if got := f.called(); !reflect.DeepEqual(got, []string{"ann: requests --json"}) {
		t.Fatalf("calls %q", got)
	}
}

// TestOwnRequestHasNoButtons: the requester sees their own pending request
// under "Your requests", with no approve button to click.
func TestOwnRequestHasNoButtons(t *testing.T) {
	tc := newTestConsole(t)
	withCommands(tc, &fakeCommands{out: map[string]string{"dan: requests --json": annRequests}})
	cl, _ := tc.signIn(t, "dan")
	_, body := get(t, cl, tc.srv.URL+"/requests")
	if strings.Contains(body, `data-warden-approve="`) || !strings.Contains(body, "Nothing waits for your decision") {
		t.Fatalf("own request offered for approval:\n%s", body)
	}
}

// TestApproveRunsTheCommandAsTheViewer: the buttons run approve and deny
// as the signed-in viewer with the ID and text as given, and show the
// command's answer or its refusal line; without the CSRF token nothing
// runs.
func TestApproveRunsTheCommandAsTheViewer(t *testing.T) {
	tc := newTestConsole(t)
	f := &fakeCommands{
		out: map[string]string{
			"ann: requests --json":             annRequests,
			"ann: approve 7 --comment ok then": "request 7 approved: grant 4 for dan on acme-root until 2026-11-02T11:30:00Z\n",
		},
		errs: map[string]error{
			"ann: approve 9":                    &fakeRefusal{line: "warden: no request 9 that you can act on", status: 1},
			"ann: deny 7 --reason ":             &fakeRefusal{line: "warden: --reason TEXT is required to deny (usage: deny ID --reason TEXT)", status: 2},
			"ann: approve 8":                    &fakeRefusal{line: "warden: internal error; the session was refused and logged", status: 1, internal: true},
			"ann: approve 7 --comment <b>x</b>": &fakeRefusal{line: "warden: you already decided request 7", status: 1},
		},
	}
	withCommands(tc, f)
	cl, csrf := tc.signIn(t, "ann")

	code, _ := post(t, cl, tc.srv.URL+"/requests/7/approve", url.Values{"comment": {"ok then"}})
	if code != http.StatusForbidden || len(f.called()) != 0 {
		t.Fatalf("without CSRF: %d, calls %q", code, f.called())
	}
	code, body := post(t, cl, tc.srv.URL+"/requests/7/approve", url.Values{"csrf": {csrf}, "comment": {"ok then"}})
	if code != 200 || !strings.Contains(body, `data-warden-result="ok"`) || !strings.Contains(body, "request 7 approved: grant 4 for dan") {
		t.Fatalf("approve: %d\n%s", code, body)
	}
	for path, want := range map[string]struct {
		form url.Values
		code int
		line string
	}{
		"/requests/9/approve": {url.Values{}, 403, "warden: no request 9 that you can act on"},
		"/requests/7/deny":    {url.Values{"reason": {""}}, 400, "warden: --reason TEXT is required to deny"},
		"/requests/8/approve": {url.Values{}, 500, "internal error; it was logged"},
	} {
		want.form.Set("csrf", csrf)
		code, body := post(t, cl, tc.srv.URL+path, want.form)
		if code != want.code || !strings.Contains(body, `data-warden-result="refused"`) || !strings.Contains(body, want.line) {
			t.Errorf("%s: %d\n%s", path, code, body)
		}
	}
	if got := f.called(); !contains(got, "ann: approve 7 --comment ok then") || !contains(got, "ann: approve 9") {
		t.Fatalf("calls %q", got)
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// TestGrantsShowTimeLeft: time left comes from the console's clock when the
// page is drawn; the revoke button runs revoke as the viewer.
func TestGrantsShowTimeLeft(t *testing.T) {
	tc := newTestConsole(t)
	now := time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC)
	tc.c.d.Now = func() time.Time { return now }
	f := &fakeCommands{out: map[string]string{
		"dan: grants --json": `[{"id": 4, "request_id": 7, "user": "dan", "role": "acme-root", "tenant": "acme",
			"starts_at": "2026-11-02T09:00:00Z", "expires_at": "2026-11-02T11:02:05Z", "seconds_left": 1}]`,
		"dan: revoke 4": "grant 4 relinquished; 0 live session(s) closed\n",
	}}
	withCommands(tc, f)
	cl, csrf := tc.signIn(t, "dan")
	_, body := get(t, cl, tc.srv.URL+"/grants")
	if !strings.Contains(body, "<td data-warden-left>1h02m05s</td>") || !strings.Contains(body, `data-warden-revoke="4"`) {
		t.Fatalf("grants page:\n%s", body)
	}
	if strings.Contains(body, "data-warden-revoke-by-id") {
		t.Fatal("a user who approves nothing is offered revoke by ID")
	}
	code, body := post(t, cl, tc.srv.URL+"/grants/4/revoke", url.Values{"csrf": {csrf}})
	if code != 200 || !strings.Contains(body, "grant 4 relinquished") {
		t.Fatalf("revoke: %d\n%s", code, body)
	}
}

// TestExceptionsFlagExpired: expired entries are flagged; the toggles
// pass --expired and --all; anything else is a 400 that runs nothing.
func TestExceptionsFlagExpired(t *testing.T) {
	tc := newTestConsole(t)
	entry := `{"id": 2, "tenant": "acme", "owner": "ann", "reason": "legacy\u001b[2J box", "controls": "extra logging",
		"expires_at": "2026-10-01T00:00:00Z", "created_by": "ann", "created_at": "2026-09-01T00:00:00Z", "status": "expired", "expired": true}`
	f := &fakeCommands{out: map[string]string{
		"tia: exceptions --json":           "[" + entry + "]",
		"tia: exceptions --expired --json": "[" + entry + "]",
		"tia: exceptions --all --json":     "[]",
	}}
	withCommands(tc, f)
	cl, _ := tc.signIn(t, "tia")
	_, body := get(t, cl, tc.srv.URL+"/exceptions")
	if !strings.Contains(body, `data-warden-exception="2" class="expired" data-warden-expired`) || !strings.Contains(body, "EXPIRED") ||
		!strings.Contains(body, `legacy\x1b[2J box`) {
		t.Fatalf("page:\n%s", body)
	}
	get(t, cl, tc.srv.URL+"/exceptions?show=expired")
	_, body = get(t, cl, tc.srv.URL+"/exceptions?show=all")
	if !strings.Contains(body, "No entries") {
		t.Fatalf("all:\n%s", body)
	}
	n := len(f.called())
	if code, _ := get(t, cl, tc.srv.URL+"/exceptions?show=../../x"); code != 400 || len(f.called()) != n {
		t.Fatalf("bad toggle: %d", code)
	}
	// The refusal is audited, as every refusal is.
	if audited := countEvents(t, tc, func(e audit.Event) bool {
		return e.Type == EventRefused && e.Subject == "exceptions" && e.Actor == "tia"
	}); audited != 1 {
		t.Fatalf("%d bad toggles audited, want 1", audited)
	}
}

// TestDecidePagesNeedSignIn: every page and action wants a viewer.
func TestDecidePagesNeedSignIn(t *testing.T) {
	tc := newTestConsole(t)
	f := &fakeCommands{}
	withCommands(tc, f)
	cl := tc.client(t)
	for _, p := range []string{"/requests", "/grants", "/exceptions", "/evidence", "/evidence/acme/2026-10.zip"} {
		if code, _ := get(t, cl, tc.srv.URL+p); code != http.StatusSeeOther {
			t.Errorf("GET %s: %d", p, code)
		}
	}
	for _, p := range []string{"/requests/1/approve", "/requests/1/deny", "/grants/1/revoke", "/grants/revoke"} {
		if code, _ := post(t, cl, tc.srv.URL+p, url.Values{}); code != http.StatusUnauthorized {
			t.Errorf("POST %s: %d", p, code)
		}
	}
	if len(f.called()) != 0 {
		t.Fatalf("ran %q", f.called())
	}
}

// writePackets builds real signed packets for October 2026 of both
// tenants where the gateway's schedule puts them.
func writePackets(t *testing.T, tc *testConsole) {
	t.Helper()
	m, _ := evidence.ParseMonth("2026-10")
	for _, tenant := range []string{"acme", "globex"} {
		_, err := evidence.Build(context.Background(), evidence.Options{DataDir: tc.c.d.DataDir, Tenant: tenant, Month: m,
			Out: evidence.PacketDir(tc.c.d.DataDir, tenant, m), Policy: tc.pol.Load()})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestEvidenceScopedAndChecked: each viewer sees only the packets of the
// tenants they oversee, with a green check; a packet changed after
// signing is red with the reason; downloads are zips of the packet for
// those who see it, and one 404 for everything else.
func TestEvidenceScopedAndChecked(t *testing.T) {
	tc := newTestConsole(t)
	writePackets(t, tc)
	for user, want := range map[string][]string{"ann": {"acme"}, "tia": {"acme"}, "gus": {"globex"}, "eve": {"acme", "globex"}, "dan": nil} {
		cl, _ := tc.signIn(t, user)
		_, body := get(t, cl, tc.srv.URL+"/evidence")
		for _, tenant := range []string{"acme", "globex"} {
			has := strings.Contains(body, `data-warden-packet="`+tenant+`/2026-10"`)
			if has != contains(want, tenant) {
				t.Errorf("%s sees %s: %v", user, tenant, has)
			}
		}
		if len(want) > 0 && strings.Count(body, `data-warden-check="ok"`) != len(want) {
			t.Errorf("%s: checks not all green:\n%s", user, body)
		}
	}

	ann, _ := tc.signIn(t, "ann")
	resp, err := ann.Get(tc.srv.URL + "/evidence/acme/2026-10.zip")
	if err != nil {
		t.Fatal(err)
	}
	zb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("download: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	zr, err := zip.NewReader(bytes.NewReader(zb), int64(len(zb)))
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range zr.File {
		names[f.Name] = true
	}
	if !names["2026-10/"+evidence.ManifestName] || !names["2026-10/"+evidence.SignatureName] || !names["2026-10/summary.json"] {
		t.Fatalf("zip holds %v", names)
	}

	// Another tenant's packet, a missing one, and made-up paths: one 404.
	_, ref := get(t, ann, tc.srv.URL+"/evidence/nosuch/2026-10.zip")
	for _, p := range []string{"/evidence/globex/2026-10.zip", "/evidence/acme/2026-09.zip", "/evidence/acme/..%2f..%2fwarden.db",
		"/evidence/acme/..%2Fglobex%2F2026-10.zip", "/evidence/..%2fglobex/2026-10.zip", "/evidence/acme/2026-13.zip", "/evidence/acme/2026-10.tar"} {
		code, body := get(t, ann, tc.srv.URL+p)
		if code != 404 || body != ref {
			t.Errorf("%s: %d %q", p, code, body)
		}
	}
	for _, p := range []string{"/evidence/acme/../../warden.db", "/evidence/../warden.db"} {
		req, _ := http.NewRequest("GET", tc.srv.URL+p, nil)
		req.URL.Opaque = p // keep the dots: the client must not clean them away
		resp, err := ann.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 200 || bytes.Contains(b, []byte("SQLite")) {
			t.Errorf("%s: %d", p, resp.StatusCode)
		}
	}
	n := 0
	evs, err := tc.c.d.Store.Events(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Type == "console.refused" && e.Actor == "ann" {
			n++
		}
	}
	if n < 7 {
		t.Fatalf("%d refusals audited", n)
	}

	// Tamper with the acme packet: red, with the reason.
	sum := filepath.Join(evidence.PacketDir(tc.c.d.DataDir, "acme", time.Date(2026, 10, 1, 0, 0, 0, 0, time.UTC)), "summary.json")
	b, err := os.ReadFile(sum)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(sum, bytes.Replace(b, []byte("acme"), []byte("acmf"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	_, body := get(t, ann, tc.srv.URL+"/evidence")
	if !strings.Contains(body, `data-warden-check="bad"`) || !strings.Contains(body, "summary.json does not match the manifest") {
		t.Fatalf("tampered packet:\n%s", body)
	}
}

// TestApproverRevokesByID: an approver is offered revoke by grant ID, as
// `ssh gw revoke ID` allows them; the form runs revoke as them.
func TestApproverRevokesByID(t *testing.T) {
	tc := newTestConsole(t)
	f := &fakeCommands{
		out: map[string]string{"ann: grants --json": "[]", "ann: grants --all --json": "[]"},
		errs: map[string]error{"ann: revoke 12 --reason ended early": &fakeRefusal{
			line: "warden: no grant 12 that you can act on", status: 1}},
	}
	withCommands(tc, f)
	cl, csrf := tc.signIn(t, "ann")
	if _, body := get(t, cl, tc.srv.URL+"/grants"); !strings.Contains(body, "data-warden-revoke-by-id") {
		t.Fatalf("no revoke-by-ID form:\n%s", body)
	}
	code, body := post(t, cl, tc.srv.URL+"/grants/revoke", url.Values{"csrf": {csrf}, "grant": {"12"}, "reason": {"ended early"}})
	if code != 403 || !strings.Contains(body, "warden: no grant 12 that you can act on") {
		t.Fatalf("revoke: %d\n%s", code, body)
	}
}

// TestBreakGlassWaitsForAnotherApprover: a pending request the viewer has
// already approved (break-glass needs two) is listed as waiting, with no
// button to approve it again.
func TestBreakGlassWaitsForAnotherApprover(t *testing.T) {
	tc := newTestConsole(t)
	withCommands(tc, &fakeCommands{out: map[string]string{"ann: requests --json": `[{"id": 11, "user": "dan", "role": "acme-root",
		"tenant": "acme", "reason": "outage", "duration": "1h0m0s", "state": "pending", "created_at": "2026-11-02T10:00:00Z",
		"approvals": [{"approver": "ann", "decision": "approved", "ts": "2026-11-02T10:01:00Z"}]}]`}})
	cl, _ := tc.signIn(t, "ann")
	_, body := get(t, cl, tc.srv.URL+"/requests")
	if strings.Contains(body, `data-warden-approve="11"`) || !strings.Contains(body, "Waiting for another approver") ||
		!strings.Contains(body, `approved by <b data-warden-approver>ann</b>`) {
		t.Fatalf("page:\n%s", body)
	}
}
