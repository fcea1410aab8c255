package gateway_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/console"
)

// refusedPage opens link with a fresh client and returns the status and
// page of the refusal; it fails the test when the link is not refused.
func (cb *consoleBed) refusedPage(link string) (int, string) {
	cb.t.Helper()
	cl := cb.client()
	code, page := cb.get(cl, link)
	if code == http.StatusOK {
		// The confirm page: the refusal comes at the form.
		resp, body := cb.post(cl, "/signin/link", formValues(page))
		code, page = resp.StatusCode, body
	}
	if code != http.StatusForbidden || !strings.Contains(page, "not valid") {
		cb.t.Fatalf("link %s not refused: %d %.300s", link, code, page)
	}
	if c, _ := cb.get(cl, "/account"); c != http.StatusSeeOther {
		cb.t.Fatalf("a refused link left a signed-in browser (/account: %d)", c)
	}
	return code, page
}

// TestConsoleLinkExpires: a link is refused once its five minutes have
// passed, on the console's clock, and the refusal is audited.
func TestConsoleLinkExpires(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{})
	link := cb.consoleLink(cb.alice)
	cb.clock.Advance(5*time.Minute + time.Second)
	cb.refusedPage(link)
	cb.waitEvent(console.EventSignInRefused, "link expired")
}

// TestConsoleLinkExpiresBetweenPageAndForm: the form decides, not the
// page: a link that expires while its confirm page is open is refused.
func TestConsoleLinkExpiresBetweenPageAndForm(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{})
	cl := cb.client()
	code, page := cb.get(cl, cb.consoleLink(cb.alice))
	if code != http.StatusOK {
		t.Fatalf("confirm page: %d", code)
	}
	cb.clock.Advance(6 * time.Minute)
	resp, body := cb.post(cl, "/signin/link", formValues(page))
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "not valid") {
		t.Fatalf("expired at the form: %d %.200s", resp.StatusCode, body)
	}
	cb.waitEvent(console.EventSignInRefused, "link expired")
}

// TestConsoleLinkOfLeaverRefused: a link issued to a user who is then
// removed from the policy is dead, and so is its key's.
func TestConsoleLinkOfLeaverRefused(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{})
	link := cb.consoleLink(cb.bob)
	cb.gw.SetPolicy(cb.withoutUser("bob"))
	cb.refusedPage(link)
	cb.waitEvent(console.EventSignInRefused, "no longer in the policy")
}

// TestConsoleLinkAttacks: a modified or made-up token gets the same answer
// as any unknown one; a link signs in only the user it was issued to,
// whatever the form says; a form posted from another browser (login CSRF)
// is refused and leaves the link unspent; and the token appears neither
// in any log line nor in the audit chain.
func TestConsoleLinkAttacks(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{})
	link := cb.consoleLink(cb.alice)
	token := link[strings.Index(link, "token=")+len("token="):]
	flip := "A"
	if token[10:11] == "A" {
		flip = "B"
	}
	modified := strings.Replace(link, token, token[:10]+flip+token[11:], 1)
	_, modPage := cb.refusedPage(modified)
	_, unknownPage := cb.refusedPage(cb.URL + "/signin/link?token=" + strings.Repeat("x", 43))
	_, shortPage := cb.refusedPage(cb.URL + "/signin/link?token=abc")
	if modPage != unknownPage || shortPage != unknownPage {
		t.Fatalf("a modified token's answer differs from an unknown one's:\n%s\n---\n%s", modPage, unknownPage)
	}

	// Login CSRF: the attacker's page posts alice's form from a browser
	// that never opened the confirm page (no confirm cookie), or with a
	// confirm cookie of its own.
	victim := cb.client()
	_, page := cb.get(cb.client(), link)
	form := formValues(page)
	resp, body := cb.post(victim, "/signin/link", form)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a form without this browser's confirm cookie: %d %.200s", resp.StatusCode, body)
	}
	cb.get(victim, link) // the victim's browser now has a confirm cookie, but not the one the form was made for
	if resp, _ = cb.post(victim, "/signin/link", form); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a form made for another browser's confirm cookie: %d", resp.StatusCode)
	}
	cb.waitEvent(console.EventSignInRefused, "confirm form not from this browser")

	// The link is still unspent, and it signs in alice and nobody else,
	// whatever extra fields the form carries.
	cl := cb.client()
	_, page = cb.get(cl, link)
	form = formValues(page)
	form.Set("user", "carol")
	resp, _ = cb.post(cl, "/signin/link", form)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("alice's own sign-in after the refused forms: %d", resp.StatusCode)
	}
	if _, acct := cb.get(cl, "/account"); !strings.Contains(acct, "<h1>Account: alice</h1>") {
		t.Fatalf("alice's link signed in someone else: %.300s", acct)
	}
	cb.refusedPage(link) // and it was spent

	for _, l := range strings.Split(cb.logs.String(), "\n") {
		if strings.Contains(l, token) {
			t.Fatalf("the link token is in the log: %s", l)
		}
	}
	all, err := cb.store.Events(t.Context(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range all {
		if strings.Contains(e.Actor+e.Subject+strings.Join(flatten(e.Data), " "), token) {
			t.Fatalf("the link token is in the audit event %+v", e)
		}
	}
}

// TestConsoleCookiesUnderTLS: over https the session cookie is
// __Host-warden_console with Secure, HttpOnly, SameSite=Strict and Path=/,
// and the link's confirm cookie is __Host- as well.
func TestConsoleCookiesUnderTLS(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{tls: true})
	if !strings.HasPrefix(cb.URL, "https://") {
		t.Fatalf("console URL %s", cb.URL)
	}
	link := cb.consoleLink(cb.erin)
	if !strings.HasPrefix(link, cb.URL+"/signin/link?token=") {
		t.Fatalf("link %s is not on %s", link, cb.URL)
	}
	cl := cb.client()
	resp, err := cl.Get(link)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	checkCookie(t, resp, "__Host-warden_link")
	code, page := cb.get(cl, link)
	if code != http.StatusOK {
		t.Fatalf("confirm page: %d", code)
	}
	post, _ := cb.post(cl, "/signin/link", formValues(page))
	if post.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in over https: %d", post.StatusCode)
	}
	checkCookie(t, post, "__Host-warden_console")
	if code, acct := cb.get(cl, "/account"); code != http.StatusOK || !strings.Contains(acct, "Account: erin") {
		t.Fatalf("/account over https: %d", code)
	}
	// The plain name is not accepted under TLS: a cookie planted without
	// the prefix is no session.
	u, _ := url.Parse(cb.URL)
	var tok string
	for _, c := range cl.Jar.Cookies(u) {
		if c.Name == "__Host-warden_console" {
			tok = c.Value
		}
	}
	planted := cb.client()
	planted.Jar.SetCookies(u, []*http.Cookie{{Name: "warden_console", Value: tok, Path: "/"}})
	if code, _ := cb.get(planted, "/account"); code != http.StatusSeeOther {
		t.Fatalf("a cookie without the __Host- prefix was accepted: %d", code)
	}
}

// checkCookie finds the Set-Cookie of name in resp and checks its
// attributes as sent on the wire.
func checkCookie(t *testing.T, resp *http.Response, name string) {
	t.Helper()
	for _, line := range resp.Header.Values("Set-Cookie") {
		if !strings.HasPrefix(line, name+"=") {
			continue
		}
		for _, want := range []string{"; Path=/", "; HttpOnly", "; Secure", "; SameSite=Strict"} {
			if !strings.Contains(line, want) {
				t.Fatalf("cookie %s lacks %q: %s", name, want, line)
			}
		}
		if strings.Contains(line, "Domain=") {
			t.Fatalf("cookie %s has a Domain: %s", name, line)
		}
		return
	}
	t.Fatalf("no cookie %s in %q", name, resp.Header.Values("Set-Cookie"))
}

// TestConsoleIdleTimeout: a session used within 30 minutes stays; one
// left alone for more than 30 minutes is ended (audited) and the browser
// must sign in again.
func TestConsoleIdleTimeout(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{})
	cl, _ := cb.signInHTTP(cb.alice)
	cb.clock.Advance(29 * time.Minute)
	if code, _ := cb.get(cl, "/account"); code != http.StatusOK {
		t.Fatalf("after 29 idle minutes: %d", code)
	}
	cb.clock.Advance(29 * time.Minute) // 58 minutes since sign-in, 29 since the last click
	if code, _ := cb.get(cl, "/account"); code != http.StatusOK {
		t.Fatalf("29 minutes after the last click: %d", code)
	}
	cb.clock.Advance(31 * time.Minute)
	if code, _ := cb.get(cl, "/account"); code != http.StatusSeeOther {
		t.Fatalf("after 31 idle minutes: %d, want a redirect to /signin", code)
	}
	cb.waitEvent(console.EventSessionEnded, "idle")
	cb.clock.Advance(-91 * time.Minute) // back in time: an ended session stays ended
	if code, _ := cb.get(cl, "/account"); code != http.StatusSeeOther {
		t.Fatalf("an idle-ended session came back: %d", code)
	}
}

// TestConsoleRevokeAndSignOut: /account lists the user's own browser
// sessions; revoking another of them signs that browser out at its next
// request; another user's session cannot be revoked (404, as unknown);
// sign-out ends the current one. Each is audited.
func TestConsoleRevokeAndSignOut(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{})
	a1, csrf1 := cb.signInHTTP(cb.alice)
	a2, _ := cb.signInHTTP(cb.alice)
	c1, _ := cb.signInHTTP(cb.carol)
	_, acct := cb.get(a1, "/account")
	ids := sessionIDs(acct)
	if len(ids) != 2 || strings.Count(acct, "data-warden-current") != 1 {
		t.Fatalf("alice's /account lists %v: %.500s", ids, acct)
	}
	_, carolAcct := cb.get(c1, "/account")
	carolID := sessionIDs(carolAcct)[0]
	var other string
	for _, id := range ids {
		if !strings.Contains(acct, `data-warden-session="`+id+`" data-warden-current`) {
			other = id
		}
	}
	if resp, _ := cb.post(a1, "/account/revoke", url.Values{"csrf": {csrf1}, "session": {carolID}}); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("alice revoking carol's session: %d, want 404", resp.StatusCode)
	}
	if code, _ := cb.get(c1, "/account"); code != http.StatusOK {
		t.Fatalf("carol was signed out by alice: %d", code)
	}
	if resp, _ := cb.post(a1, "/account/revoke", url.Values{"csrf": {csrf1}, "session": {other}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if code, _ := cb.get(a2, "/account"); code != http.StatusSeeOther {
		t.Fatalf("the revoked browser still reaches /account: %d", code)
	}
	cb.waitEvent(console.EventSessionRevoked, other)
	if code, _ := cb.get(a1, "/account"); code != http.StatusOK {
		t.Fatalf("the revoking browser was signed out: %d", code)
	}
	if resp, _ := cb.post(a1, "/signout", url.Values{}); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("sign-out without CSRF: %d, want 403", resp.StatusCode)
	}
	if resp, _ := cb.post(a1, "/signout", url.Values{"csrf": {csrf1}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if code, _ := cb.get(a1, "/account"); code != http.StatusSeeOther {
		t.Fatalf("signed-out browser reaches /account: %d", code)
	}
	cb.waitEvent(console.EventSignOut, "alice")
}

// sessionIDs returns the session IDs an /account page lists.
func sessionIDs(page string) []string {
	var out []string
	for _, part := range strings.Split(page, `data-warden-session="`)[1:] {
		out = append(out, part[:strings.IndexByte(part, '"')])
	}
	return out
}
