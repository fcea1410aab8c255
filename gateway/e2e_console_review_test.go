package gateway_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/warden-gw/warden/console"
	"github.com/warden-gw/warden/policy"
)

// An attacker's review of the console, end to end: real OpenSSH clients,
// the real gateway, `ssh gw console` links, the real web.Server (whose
// headers every page carries). The fast checks are in
// console/review_attack_test.go.

// grantOf returns the ID of user's active grant of role, from their own
// `ssh gw grants --json`.
func (cb *consoleBed) grantOf(who, role string, asJSON string) string {
	cb.t.Helper()
	var list []struct {
		ID   int64  `json:"id"`
		User string `json:"user"`
		Role string `json:"role"`
	}
	if err := json.Unmarshal([]byte(asJSON), &list); err != nil {
		cb.t.Fatalf("grants --json: %v: %q", err, asJSON)
	}
	for _, g := range list {
		if g.User == who && g.Role == role {
			return fmt.Sprint(g.ID)
		}
	}
	cb.t.Fatalf("no grant of %s for %s in %s", role, who, asJSON)
	return ""
}

// TestConsoleGrantsAllOverSSHAndPage: `ssh gw grants --all` shows
// approvers and auditors every active grant of the tenants they oversee,
// with time left, and nothing of other tenants; someone who oversees
// nothing is refused (audited). /grants shows the same list, with a revoke
// button only on grants of roles the viewer approves, and the revoke goes
// through `ssh gw revoke`'s rules.
func TestConsoleGrantsAllOverSSHAndPage(t *testing.T) {
	cb := newDecideBed(t)
	acmeReq := cb.openRequest("prod-root")
	if _, errOut, code := cb.run(cb.carol, "gw", "approve", acmeReq); code != 0 {
		t.Fatalf("carol approves: %q", errOut)
	}
	globexReq := cb.openRequest("globex-root")
	if _, errOut, code := cb.run(cb.dave, "gw", "approve", globexReq); code != 0 {
		t.Fatalf("dave approves: %q", errOut)
	}
	own, _, _ := cb.run(cb.bob, "gw", "grants", "--json")
	acme, globex := cb.grantOf("bob", "prod-root", own), cb.grantOf("bob", "globex-root", own)

	// Over SSH.
	out, errOut, code := cb.run(cb.carol, "gw", "grants", "--all")
	if code != 0 || !regexp.MustCompile(`(?m)^`+acme+`\s+bob\s+prod-root\s+acme\s+\S+\s+\d+m\d+s$`).MatchString(out) ||
		strings.Contains(out, "globex") {
		t.Fatalf("carol's grants --all: %d %q %q", code, out, errOut)
	}
	out, _, code = cb.run(cb.dave, "gw", "grants", "--all", "--json")
	if code != 0 || !strings.Contains(out, `"id": `+globex+`,`) || strings.Contains(out, `"acme"`) || !strings.Contains(out, `"seconds_left":`) {
		t.Fatalf("dave's grants --all --json: %d %q", code, out)
	}
	out, _, code = cb.run(cb.erin, "gw", "grants", "--all", "--json")
	if code != 0 || !strings.Contains(out, `"id": `+globex+`,`) || !strings.Contains(out, `"id": `+acme+`,`) {
		t.Fatalf("erin (auditor of all) grants --all: %d %q", code, out)
	}
	for _, c := range []struct {
		name string
		code int
	}{{"bob", 1}, {"alice", 1}} {
		client := cb.bob
		if c.name == "alice" {
			client = cb.alice
		}
		out, errOut, code := cb.run(client, "gw", "grants", "--all")
		if code != c.code || out != "" || errOut != "warden: only approvers and auditors may list other users' grants\n" {
			t.Fatalf("%s's grants --all: %d %q %q", c.name, code, out, errOut)
		}
		cb.waitEvent("command.refused", c.name+"grants --all")
	}
	if _, errOut, code := cb.run(cb.carol, "gw", "grants", "--all", "extra"); code != 2 || errOut == "" {
		t.Fatalf("grants --all extra: %d %q", code, errOut)
	}

	// In the console.
	carol, carolCSRF := cb.signInHTTP(cb.carol)
	_, page := cb.get(carol, "/grants")
	if !strings.Contains(page, `data-warden-overseen-grant="`+acme+`"`) || !strings.Contains(page, `data-warden-revoke-grant="`+acme+`"`) ||
		strings.Contains(page, `data-warden-overseen-grant="`+globex+`"`) || strings.Contains(page, "globex") {
		t.Fatalf("carol's /grants:\n%s", page)
	}
	erin, _ := cb.signInHTTP(cb.erin)
	_, page = cb.get(erin, "/grants")
	if !strings.Contains(page, `data-warden-overseen-grant="`+acme+`"`) || !strings.Contains(page, `data-warden-overseen-grant="`+globex+`"`) ||
		strings.Contains(page, "data-warden-revoke-grant") {
		t.Fatalf("erin's /grants (sees both, approves neither):\n%s", page)
	}
	bob, _ := cb.signInHTTP(cb.bob)
	if _, page := cb.get(bob, "/grants"); strings.Contains(page, "data-warden-overseen") || !strings.Contains(page, `data-warden-grant="`+acme+`"`) {
		t.Fatalf("bob's /grants:\n%s", page)
	}
	// carol cannot revoke globex's grant (same line as an unknown ID), and
	// it stays active; she revokes acme's.
	resp, body := cb.post(carol, "/grants/"+globex+"/revoke", url.Values{"csrf": {carolCSRF}, "reason": {"not mine"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "warden: no grant "+globex+" that you can act on") {
		t.Fatalf("carol revokes globex's grant: %d\n%s", resp.StatusCode, body)
	}
	resp, body = cb.post(carol, "/grants/"+acme+"/revoke", url.Values{"csrf": {carolCSRF}, "reason": {"incident closed"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "grant "+acme+" revoked") || strings.Contains(body, `data-warden-overseen-grant="`+acme+`"`) {
		t.Fatalf("carol revokes acme's grant: %d\n%s", resp.StatusCode, body)
	}
	if out, _, _ := cb.run(cb.bob, "gw", "grants", "--json"); strings.Contains(out, `"id": `+acme+`,`) || !strings.Contains(out, `"id": `+globex+`,`) {
		t.Fatalf("bob's grants after: %q", out)
	}
}

// withKeyOf returns the testbed's policy with user's key replaced by
// other's: the user stays, the key that signed them in is no longer
// theirs.
func (cb *consoleBed) withKeyOf(user, key string) *policy.Config {
	cb.t.Helper()
	raw, err := os.ReadFile(filepath.Join(cb.dir, "warden.yaml"))
	if err != nil {
		cb.t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^(  - name: ` + regexp.QuoteMeta(user) + `\n    keys: ).*\n`)
	src := re.ReplaceAllString(string(raw), "${1}["+fmt.Sprintf("%q", key)+"]\n")
	if src == string(raw) {
		cb.t.Fatalf("user %s not found", user)
	}
	path := filepath.Join(cb.dir, "warden-newkey-"+user+".yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		cb.t.Fatal(err)
	}
	cfg, err := policy.Load(path)
	if err != nil {
		cb.t.Fatal(err)
	}
	return cfg
}

// consolePages are the GET pages of a signed-in viewer.
var consolePages = []string{"/", "/sessions", "/requests", "/grants", "/exceptions", "/evidence", "/account"}

// TestConsoleLinkSessionEndsWithKeyOrUser: a browser signed in by a link
// loses every page, and every action, at the next request once the key
// that ran `ssh gw console` is no longer its user's (the user still
// exists: the decision is to fail closed, as the link itself would be
// refused), and likewise once the user leaves the policy. The session is
// recorded as ended, with why.
func TestConsoleLinkSessionEndsWithKeyOrUser(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{})
	carol, carolCSRF := cb.signInHTTP(cb.carol)
	alice, aliceCSRF := cb.signInHTTP(cb.alice)
	for _, p := range consolePages {
		if code, _ := cb.get(carol, p); code != http.StatusOK && code != http.StatusSeeOther {
			t.Fatalf("carol before: %s %d", p, code)
		}
	}

	check := func(name string, cl *http.Client, csrf string) {
		for _, p := range consolePages {
			if code, _ := cb.get(cl, p); code != http.StatusSeeOther {
				t.Errorf("%s: GET %s: %d, want the way to /signin", name, p, code)
			}
		}
		if resp, _ := cb.post(cl, "/grants/1/revoke", url.Values{"csrf": {csrf}}); resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s: POST: %d, want 401", name, resp.StatusCode)
		}
	}
	cb.gw.SetPolicy(cb.withKeyOf("carol", authorizedKey(cb.stranger.PublicKey)))
	check("carol (key replaced)", carol, carolCSRF)
	if code, _ := cb.get(alice, "/account"); code != http.StatusOK {
		t.Fatalf("alice lost her session with carol's key: %d", code)
	}
	// The next policy has carol's key back, and no alice.
	cb.gw.SetPolicy(cb.withoutUser("alice"))
	check("alice (left)", alice, aliceCSRF)
	e := cb.waitEvent(console.EventSessionEnded, "")
	reasons := map[string]string{}
	for _, e := range cb.events(console.EventSessionEnded) {
		reasons[e.Actor] = fmt.Sprint(e.Data["reason"])
	}
	if reasons["carol"] != "key" || reasons["alice"] != "left" {
		t.Fatalf("session_ended reasons %v (first %+v)", reasons, e)
	}
	// carol's key coming back did not bring the browser session back.
	if code, _ := cb.get(carol, "/account"); code != http.StatusSeeOther {
		t.Fatalf("carol's ended session revived: %d", code)
	}
}

// TestConsoleSessionFixation: a session cookie planted in the browser
// before sign-in (by a sibling site under plain HTTP, say) is never the
// one the sign-in gives: the server mints a new token, and the planted
// value signs nobody in.
func TestConsoleSessionFixation(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{})
	cl := cb.client()
	base, _ := url.Parse(cb.URL)
	planted := strings.Repeat("A", 43)
	cl.Jar.SetCookies(base, []*http.Cookie{{Name: "warden_console", Value: planted, Path: "/"}})
	resp, body := cb.openLink(cl, cb.consoleLink(cb.carol))
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d %s", resp.StatusCode, body)
	}
	var got string
	for _, ck := range cl.Jar.Cookies(base) {
		if ck.Name == "warden_console" {
			got = ck.Value
		}
	}
	if got == "" || got == planted {
		t.Fatalf("the session cookie after sign-in is %q (planted %q)", got, planted)
	}
	fixed := cb.client()
	fixed.Jar.SetCookies(base, []*http.Cookie{{Name: "warden_console", Value: planted, Path: "/"}})
	if code, _ := cb.get(fixed, "/account"); code != http.StatusSeeOther {
		t.Fatalf("the planted cookie reaches /account: %d", code)
	}
}

// TestConsoleHeadersOnEveryPage: every answer of the console, through the
// real web.Server, carries a CSP with default-src 'self', no
// 'unsafe-inline' or 'unsafe-eval' and nothing from another origin,
// frame-ancestors 'none', nosniff, and no-store on everything but the
// static files; the recording is served as asciicast, not HTML.
func TestConsoleHeadersOnEveryPage(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{})
	if _, errOut, code := cb.run(cb.alice, "root@web01", "echo", "hello"); code != 0 {
		t.Fatalf("alice's session: %q", errOut)
	}
	s := cb.lastSession("alice")
	cb.waitSessionEnded(s.ID)
	erin, _ := cb.signInHTTP(cb.erin)
	pages := append([]string{"/sessions/" + s.ID, "/sessions/" + s.ID + ".cast", "/sessions/nope", "/evidence/acme/2026-01.zip",
		"/signin/link?token=x", "/static/warden.css", "/static/warden.js"}, consolePages...)
	for _, p := range pages {
		resp, err := erin.Get(cb.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		h := resp.Header
		csp := h.Get("Content-Security-Policy")
		switch {
		case !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'"):
			t.Errorf("%s: CSP %q", p, csp)
		case strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "'unsafe-eval'") || regexp.MustCompile(`(script|style|connect|img|default)-src[^;]*(https?:|\*)`).MatchString(csp):
			t.Errorf("%s: CSP allows inline or foreign content: %q", p, csp)
		case h.Get("X-Content-Type-Options") != "nosniff":
			t.Errorf("%s: no nosniff", p)
		case !strings.HasPrefix(p, "/static/") && h.Get("Cache-Control") != "no-store":
			t.Errorf("%s: Cache-Control %q", p, h.Get("Cache-Control"))
		}
		if strings.HasSuffix(p, ".cast") && h.Get("Content-Type") != "application/x-asciicast" {
			t.Errorf("%s: Content-Type %q", p, h.Get("Content-Type"))
		}
	}
}
