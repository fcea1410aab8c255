package console

import (
	"context"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
)

// An attacker's review of the console (issue 10): every route, every
// refusal, every cookie. These are the fast tests, in package console with
// fakes for the gateway; gateway/e2e_console_review_test.go has the ones
// where the real gateway matters.

// routeMux records the patterns the console mounts, and serves them.
type routeMux struct {
	*http.ServeMux
	patterns []string
}

func (m *routeMux) Handle(p string, h http.Handler) {
	m.patterns = append(m.patterns, p)
	m.ServeMux.Handle(p, h)
}

// mountedRoutes mounts the console (the live view included) on a
// recording mux, serves it from tc.srv and returns its patterns.
func mountedRoutes(t *testing.T) (*testConsole, []string) {
	t.Helper()
	tc, _ := newLiveConsole(t)
	m := &routeMux{ServeMux: http.NewServeMux()}
	tc.c.Mount(m)
	tc.srv.Config.Handler = m
	return tc, m.patterns
}

// concrete turns a pattern's path into a request path: wildcards become 1.
func concrete(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = strings.TrimSuffix(path, "{$}")
	return method, regexp.MustCompile(`\{[a-z]+\.*\}`).ReplaceAllString(path, "1")
}

// preAuthPosts are the POST routes that run before there is a session to
// hold a CSRF token. Each has its own defence, tested with it: the link's
// confirm form is bound to a SameSite=Strict cookie of the confirm page
// (TestConsoleLinkAttacks), the IdP start only begins a sign-in the
// victim's IdP session would finish as the victim (auth_oidc.go). A new
// POST route must be added here deliberately, or use c.action.
var preAuthPosts = map[string]bool{"POST /signin/link": true, "POST /signin/oidc": true}

// publicGets are the GET routes open without a session.
var publicGets = map[string]bool{"GET /static/": true, "GET /signin": true, "GET /signin/link": true, "GET /oidc/callback": true}

// TestAttackEveryPostRouteNeedsCSRF enumerates the routes the console
// mounts: every POST but the sign-in's own must answer 401 without a
// session, and 403 with one but without the session's CSRF token (missing,
// another session's, or sent as a query parameter), leaving a
// console.refused event that names the route. A POST route added without
// c.action fails here.
func TestAttackEveryPostRouteNeedsCSRF(t *testing.T) {
	tc, routes := mountedRoutes(t)
	ann, _ := tc.signIn(t, "ann")
	_, otherCSRF := tc.signIn(t, "ann")
	anon := tc.client(t)
	posts := 0
	for _, p := range routes {
		method, path := concrete(p)
		if method != http.MethodPost || preAuthPosts[p] {
			continue
		}
		posts++
		if code, _ := post(t, anon, tc.srv.URL+path, url.Values{}); code != http.StatusUnauthorized {
			t.Errorf("%s without a session: %d, want 401", p, code)
		}
		for name, form := range map[string]url.Values{
			"no token":              {"reason": {"x"}, "session": {"1"}},
			"another session's one": {"csrf": {otherCSRF}, "reason": {"x"}},
			"empty token":           {"csrf": {""}},
		} {
			code, body := post(t, ann, tc.srv.URL+path, form)
			if code != http.StatusForbidden || !strings.Contains(body, "CSRF") {
				t.Errorf("%s with %s: %d %q, want 403", p, name, code, body)
			}
		}
		// The token in the URL is not the form's: a link cannot act.
		if code, _ := post(t, ann, tc.srv.URL+path+"?csrf="+url.QueryEscape(otherCSRF), url.Values{}); code != http.StatusForbidden {
			t.Errorf("%s with the token in the query: %d", p, code)
		}
		if n := countEvents(t, tc, func(e audit.Event) bool {
			return e.Type == EventRefused && e.Subject == "csrf" && e.Actor == "ann" && e.Data["route"] == p
		}); n != 4 {
			t.Errorf("%s: %d CSRF refusals audited, want 4", p, n)
		}
	}
	if n := countEvents(t, tc, func(e audit.Event) bool {
		return e.Type == EventRefused && e.Subject == "signin" && e.Actor == "" && e.Data["reason"] == "not signed in"
	}); n != posts {
		t.Errorf("%d POSTs without a session audited, want %d", n, posts)
	}
	if posts < 7 { // signout, account/revoke, approve, deny, grant revoke x2, kill
		t.Fatalf("only %d POST routes found in %q", posts, routes)
	}
}

// TestAttackEveryGetRouteNeedsSignIn: every GET route but the sign-in's
// and the static files sends a browser without a session to /signin (the
// fixed path: no redirect target comes from the request), HEAD included;
// and no route answers a method it was not made for.
func TestAttackEveryGetRouteNeedsSignIn(t *testing.T) {
	tc, routes := mountedRoutes(t)
	anon := tc.client(t)
	ann, csrf := tc.signIn(t, "ann")
	for _, p := range routes {
		method, path := concrete(p)
		switch {
		case method == http.MethodGet && !publicGets[p]:
			for _, m := range []string{"GET", "HEAD"} {
				req, _ := http.NewRequest(m, tc.srv.URL+path+"?next=https://evil.example/", nil)
				resp, err := anon.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
					t.Errorf("%s %s without a session: %d to %q", m, path, resp.StatusCode, resp.Header.Get("Location"))
				}
			}
			for _, m := range []string{"POST", "PUT", "DELETE", "PATCH"} {
				req, _ := http.NewRequest(m, tc.srv.URL+path, strings.NewReader("csrf="+url.QueryEscape(csrf)))
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				resp, err := ann.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusMethodNotAllowed {
					t.Errorf("%s %s: %d, want 405", m, path, resp.StatusCode)
				}
			}
		case method == http.MethodPost && !preAuthPosts[p]:
			// A GET (a link, an <img>) never acts.
			for _, m := range []string{"GET", "HEAD"} {
				req, _ := http.NewRequest(m, tc.srv.URL+path+"?csrf="+url.QueryEscape(csrf)+"&reason=x", nil)
				resp, err := ann.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusMethodNotAllowed {
					t.Errorf("%s %s: %d, want 405", m, path, resp.StatusCode)
				}
			}
		}
	}
}

// fakeClock is a settable clock.
type fakeClock struct{ t atomic.Int64 }

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.t.Load()) }
func (c *fakeClock) Advance(d time.Duration) { c.t.Add(int64(d)) }

func countEvents(t *testing.T, tc *testConsole, f func(audit.Event) bool) int {
	t.Helper()
	evs, err := tc.c.d.Store.Events(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range evs {
		if f(e) {
			n++
		}
	}
	return n
}

// TestAttackRefusalFloodIsBounded: a signed-in browser spraying forged
// forms, made-up evidence packets and session IDs gets its refusals
// audited up to the budget (60 a minute, all kinds together); the rest
// are counted, and the next minute's first event says how many.
func TestAttackRefusalFloodIsBounded(t *testing.T) {
	tc := newTestConsole(t)
	clk := &fakeClock{}
	clk.t.Store(time.Date(2026, 11, 2, 10, 0, 0, 0, time.UTC).UnixNano())
	tc.c.d.Now = clk.Now
	ann, _ := tc.signIn(t, "ann")
	const each = 50
	for i := range each {
		if code, _ := post(t, ann, tc.srv.URL+"/signout", url.Values{"csrf": {"forged"}}); code != 403 {
			t.Fatalf("forged sign-out %d: %d", i, code)
		}
		if code, _ := get(t, ann, tc.srv.URL+"/evidence/acme/2026-0"+string(rune('1'+i%9))+".zip"); code != 404 {
			t.Fatalf("made-up packet: %d", code)
		}
		if code, _ := get(t, ann, tc.srv.URL+"/sessions/made-up-"+string(rune('a'+i%26))); code != 404 {
			t.Fatalf("made-up session: %d", code)
		}
	}
	refused := func(e audit.Event) bool { return e.Type == EventRefused }
	if n := countEvents(t, tc, refused); n != refusalBurst {
		t.Fatalf("%d refusals audited in the flood's minute, want %d", n, refusalBurst)
	}
	clk.Advance(time.Minute)
	if code, _ := post(t, ann, tc.srv.URL+"/signout", url.Values{}); code != 403 {
		t.Fatalf("next minute: %d", code)
	}
	var last audit.Event
	countEvents(t, tc, func(e audit.Event) bool {
		if refused(e) {
			last = e
		}
		return false
	})
	if got := fmt.Sprint(last.Data["suppressed_before"]); got != fmt.Sprint(3*each-refusalBurst) {
		t.Fatalf("next event: suppressed_before %v (%T), want %d: %+v", got, got, 3*each-refusalBurst, last)
	}
	// The session still works: refusals end nothing.
	if code, _ := get(t, ann, tc.srv.URL+"/account"); code != 200 {
		t.Fatalf("/account after the flood: %d", code)
	}
}

// TestAttackDeadCookieRefused: after sign-out, and after revocation from
// another browser, a kept copy of the old cookie signs nobody in: pages
// send it to /signin, POSTs get 401, the browser is told to drop it, and
// its use is audited.
func TestAttackDeadCookieRefused(t *testing.T) {
	tc := newTestConsole(t)
	u, _ := url.Parse(tc.srv.URL)
	for _, how := range []string{"signout", "revoked"} {
		victim, csrf := tc.signIn(t, "ann")
		kept := victim.Jar.Cookies(u)
		v := tc.c.lookup(reqWith(tc, kept))
		switch how {
		case "signout":
			if code, _ := post(t, victim, tc.srv.URL+"/signout", url.Values{"csrf": {csrf}}); code != 303 {
				t.Fatalf("sign-out: %d", code)
			}
		case "revoked":
			other, ocsrf := tc.signIn(t, "ann")
			if code, _ := post(t, other, tc.srv.URL+"/account/revoke", url.Values{"csrf": {ocsrf}, "session": {v.SessionID}}); code != 303 {
				t.Fatalf("revoke: %d", code)
			}
		}
		replay := tc.client(t)
		replay.Jar.SetCookies(u, kept)
		resp, err := replay.Get(tc.srv.URL + "/account")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 303 || resp.Header.Get("Location") != "/signin" {
			t.Fatalf("%s: old cookie on /account: %d", how, resp.StatusCode)
		}
		if !clearsCookie(resp) {
			t.Errorf("%s: the dead cookie is not cleared: %q", how, resp.Header.Values("Set-Cookie"))
		}
		replay.Jar.SetCookies(u, kept)
		if code, _ := post(t, replay, tc.srv.URL+"/signout", url.Values{"csrf": {csrf}}); code != 401 {
			t.Fatalf("%s: old cookie and its CSRF token on a POST: %d", how, code)
		}
		if n := countEvents(t, tc, func(e audit.Event) bool {
			return e.Type == EventRefused && e.Subject == "console_session" && strings.Contains(e.Data["reason"].(string), v.SessionID)
		}); n < 2 {
			t.Errorf("%s: %d uses of the dead cookie audited", how, n)
		}
	}
}

func reqWith(tc *testConsole, cks []*http.Cookie) *http.Request {
	req, _ := http.NewRequest("GET", tc.srv.URL+"/", nil)
	for _, ck := range cks {
		req.AddCookie(ck)
	}
	return req
}

func clearsCookie(resp *http.Response) bool {
	for _, ck := range resp.Cookies() {
		if ck.Name == cookieName && ck.MaxAge < 0 {
			return true
		}
	}
	return false
}

// TestAttackRevokeUnknownSessionAudited: revoking a session that is not
// the viewer's (another user's, made up, overlong, with markup) is the
// one 404, changes nothing, and is audited.
func TestAttackRevokeUnknownSessionAudited(t *testing.T) {
	tc := newTestConsole(t)
	gus, _ := tc.signIn(t, "gus")
	gv := tc.c.lookup(reqWith(tc, gus.Jar.Cookies(mustURL(tc.srv.URL))))
	ann, csrf := tc.signIn(t, "ann")
	for _, id := range []string{gv.SessionID, "nope", strings.Repeat("x", 5000), "<b>\u202e"} {
		code, body := post(t, ann, tc.srv.URL+"/account/revoke", url.Values{"csrf": {csrf}, "session": {id}})
		if code != 404 || !strings.Contains(body, "No such session of yours.") {
			t.Fatalf("revoke %.20q: %d", id, code)
		}
	}
	if code, _ := get(t, gus, tc.srv.URL+"/account"); code != 200 {
		t.Fatalf("gus was signed out by ann: %d", code)
	}
	n := countEvents(t, tc, func(e audit.Event) bool {
		r, _ := e.Data["reason"].(string)
		return e.Type == EventRefused && e.Actor == "ann" && strings.HasPrefix(r, "revoke:") && len(r) < 200 && !strings.Contains(r, "\u202e")
	})
	if n != 4 {
		t.Fatalf("%d refused revocations audited", n)
	}
}

func mustURL(s string) *url.URL { u, _ := url.Parse(s); return u }

// TestAttackHostileTextIsEscapedAndCleaned: a request's reason and
// ticket, a decision's comment, a grant's user, an exception's note, and a
// live session's title that carry markup, terminal escapes or bidi
// controls reach the page as text, with the controls made visible.
func TestAttackHostileTextIsEscapedAndCleaned(t *testing.T) {
	tc, _ := newLiveConsole(t)
	const evil = `<script>alert(1)</script><img src=x onerror=alert(2)>\u001b]52;c;cGF5bG9hZA==\u0007\u001b[2J\u202etxt.exe\u009b`
	withCommands(tc, &fakeCommands{out: map[string]string{
		"ann: requests --json": `[{"id": 7, "user": "dan", "role": "acme-root", "tenant": "acme", "reason": "` + evil + `", "ticket": "` + evil + `",
			"duration": "1h0m0s", "state": "pending", "created_at": "2026-11-02T10:00:00Z",
			"approvals": [{"approver": "ann2", "decision": "approved", "comment": "` + evil + `", "ts": "2026-11-02T10:01:00Z"}]}]`,
		"ann: grants --json":       `[]`,
		"ann: grants --all --json": `[{"id": 4, "request_id": 7, "user": "` + evil + `", "role": "acme-root", "tenant": "acme", "starts_at": "2026-11-02T10:00:00Z", "expires_at": "2099-11-02T10:00:00Z"}]`,
		"ann: exceptions --all --json": `[{"id": 3, "tenant": "acme", "owner": "ann", "reason": "` + evil + `", "controls": "` + evil + `",
			"expires_at": "2099-01-01", "created_by": "ann", "created_at": "2026-11-01", "closed_at": "2026-11-02", "closed_by": "ann", "close_note": "` + evil + `", "status": "closed"}]`,
	}})
	ann, _ := tc.signIn(t, "ann")
	for _, p := range []string{"/requests", "/grants", "/exceptions?show=all"} {
		code, body := get(t, ann, tc.srv.URL+p)
		if code != 200 {
			t.Fatalf("%s: %d\n%s", p, code, body)
		}
		for _, raw := range []string{"<script>alert", "<img", "\x1b", "\u202e", "\u009b", "\a"} {
			if strings.Contains(body, raw) {
				t.Errorf("%s carries %q raw", p, raw)
			}
		}
		if !strings.Contains(body, `&lt;script&gt;alert(1)&lt;/script&gt;`) || !strings.Contains(body, `\x1b]52;c;`) || !strings.Contains(body, `\u202etxt.exe`) {
			t.Errorf("%s does not show the text escaped and cleaned:\n%s", p, body)
		}
	}
}

// TestSigninNamesTheGateway: /signin prints the real `ssh` command when
// the gateway's address is known, the placeholder when not, and never a
// Host header that is not a plain host name.
func TestSigninNamesTheGateway(t *testing.T) {
	tc := newTestConsole(t)
	cases := []struct {
		listen, base, host, want string
	}{
		{"", "", "", "ssh -p PORT GATEWAY console"},
		{"gw.example.org:2222", "", "", "ssh -p 2222 gw.example.org console"},
		{":2222", "https://console.example.org", "", "ssh -p 2222 console.example.org console"},
		{"0.0.0.0:22", "http://10.1.2.3:8022", "", "ssh 10.1.2.3 console"},
		{":2222", "", "", "ssh -p 2222 GATEWAY console"},
		{":2222", "reached", "gw.internal:8022", "ssh -p 2222 gw.internal console"},
		{":2222", "reached", "evil_(x)!.example", "ssh -p 2222 GATEWAY console"},
		{"127.0.0.1:0", "", "", "ssh -p PORT 127.0.0.1 console"},
	}
	for _, c := range cases {
		l := c.listen
		tc.c.d.SSHAddr = func() string { return l }
		tc.c.d.BaseURL = nil
		switch c.base {
		case "":
		case "reached": // no public URL, a listener on every address: the host the browser reached
			tc.c.d.BaseURL = func(h string) string {
				if h == "" {
					return ""
				}
				return "http://" + h + ":8022"
			}
		default:
			b := c.base
			tc.c.d.BaseURL = func(string) string { return b }
		}
		req, _ := http.NewRequest("GET", tc.srv.URL+"/signin", nil)
		if c.host != "" {
			req.Host = c.host
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		m := regexp.MustCompile(`<pre data-warden-ssh>([^<]*)</pre>`).FindStringSubmatch(string(b))
		if m == nil || html.UnescapeString(m[1]) != c.want {
			t.Errorf("listen %q base %q host %q: got %q, want %q", c.listen, c.base, c.host, m, c.want)
		}
	}
}

// TestAttackOversizedFormActsOnNothing: a POST whose body is larger than
// any console form (here with the right token in the header, so only the
// size stops it) is a 400 that revokes nothing, and is audited.
func TestAttackOversizedFormActsOnNothing(t *testing.T) {
	tc := newTestConsole(t)
	f := &fakeCommands{out: map[string]string{}}
	withCommands(tc, f)
	ann, csrf := tc.signIn(t, "ann")
	body := "grant=12&reason=" + strings.Repeat("x", 1<<20)
	req, _ := http.NewRequest("POST", tc.srv.URL+"/grants/revoke", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-CSRF-Token", csrf)
	resp, err := ann.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || len(f.called()) != 0 {
		t.Fatalf("oversized form: %d, commands run %q", resp.StatusCode, f.called())
	}
	if n := countEvents(t, tc, func(e audit.Event) bool { return e.Type == EventRefused && e.Subject == "form" }); n != 1 {
		t.Fatalf("%d oversized forms audited", n)
	}
}

// TestAttackHostileIDsInPaths: IDs and names in every GET route's path
// that try to leave their directory, are overlong, or are Unicode look-
// alikes and controls get the one 404 (or 400), never a 500 or a file, and
// the refusal is audited with the controls escaped.
func TestAttackHostileIDsInPaths(t *testing.T) {
	tc, _ := newLiveConsole(t)
	ann, _ := tc.signIn(t, "ann")
	ids := []string{"..", "..%2f..%2fwarden.db", "%2e%2e%2fwarden.db", strings.Repeat("a", 10000), "ｓｅｓｓｉｏｎ",
		"%E2%80%AEtxt", "%1b%5b2J", "a%00b", liveID + "%2f..", "%C0%AE%C0%AE"}
	for _, id := range ids {
		for _, p := range []string{"/sessions/" + id, "/sessions/" + id + ".cast", "/sessions/" + id + "/watch", "/sessions/" + id + "/live",
			"/evidence/" + id + "/2026-01.zip", "/evidence/acme/" + id + ".zip", "/evidence/acme/" + id} {
			req, _ := http.NewRequest("GET", tc.srv.URL+p, nil)
			req.URL.Opaque = p // as sent, not cleaned by the client
			req.Header.Set("Origin", tc.srv.URL)
			resp, err := ann.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			switch {
			case resp.StatusCode != 404 && resp.StatusCode != 400 && resp.StatusCode != 301 && resp.StatusCode != 307:
				t.Errorf("%.80s: %d", p, resp.StatusCode)
			case strings.Contains(string(b), "SQLite") || strings.Contains(string(b), "\x1b") || strings.Contains(string(b), "\u202e"):
				t.Errorf("%.80s: answer carries what it should not: %.200q", p, b)
			}
		}
	}
	countEvents(t, tc, func(e audit.Event) bool {
		if e.Type == EventRefused {
			for _, v := range []string{fmt.Sprint(e.Data["path"]), fmt.Sprint(e.Data["reason"])} {
				if strings.ContainsAny(v, "\x1b\u202e\x00") || len(v) > 400 {
					t.Errorf("refusal event carries raw controls or is overlong: %.100q", v)
				}
			}
		}
		return false
	})
}

// TestAttackErrorPageCleansItsLine: the one-line error page shows lines
// that may echo what someone typed (a refused command's line, a kill's
// bad reason): controls and bidi characters are made visible there too.
func TestAttackErrorPageCleansItsLine(t *testing.T) {
	tc := newTestConsole(t)
	withCommands(tc, &fakeCommands{errs: map[string]error{
		"ann: revoke 5": &fakeRefusal{line: "warden: grant \x1b[2J\u202e<b>5</b> refused", status: 1}}})
	ann, csrf := tc.signIn(t, "ann")
	// The listing after the action fails too (the fake knows no
	// `grants`), so the action's own line is shown on the error page.
	code, body := post(t, ann, tc.srv.URL+"/grants/5/revoke", url.Values{"csrf": {csrf}})
	if code != 403 || strings.Contains(body, "\x1b") || strings.Contains(body, "\u202e") || strings.Contains(body, "<b>5") ||
		!strings.Contains(body, `\x1b[2J\u202e&lt;b&gt;5`) {
		t.Fatalf("error page: %d\n%s", code, body)
	}
}

// TestEvidenceHeadIsNoDownload: a HEAD on a packet (a link checker, a
// preview) answers like the GET without the body, and is not recorded as
// a download: evidence.downloaded means the packet left the gateway.
func TestEvidenceHeadIsNoDownload(t *testing.T) {
	tc := newTestConsole(t)
	writePackets(t, tc)
	ann, _ := tc.signIn(t, "ann")
	req, _ := http.NewRequest("HEAD", tc.srv.URL+"/evidence/acme/2026-10.zip", nil)
	resp, err := ann.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/zip" {
		t.Fatalf("HEAD: %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	downloads := func() int {
		return countEvents(t, tc, func(e audit.Event) bool { return e.Type == "evidence.downloaded" })
	}
	if n := downloads(); n != 0 {
		t.Fatalf("a HEAD was recorded as %d downloads", n)
	}
	if code, _ := get(t, ann, tc.srv.URL+"/evidence/acme/2026-10.zip"); code != 200 || downloads() != 1 {
		t.Fatalf("GET: %d, %d downloads", code, downloads())
	}
}
