package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/warden-gw/warden/console"
	"github.com/warden-gw/warden/internal/browsertest"
)

// TestConsoleSignInThroughLink: a real `ssh gw console` prints a link; a
// real Chromium opens it, confirms and is signed in as that user, with an
// HttpOnly, SameSite=Strict session cookie; the sign-in is audited with
// the key that asked for the link, and the token is in no audit event.
func TestConsoleSignInThroughLink(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{})
	ctx := cb.browser()
	link := cb.consoleLink(cb.alice)
	cb.openLinkBrowser(ctx, link)
	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.Navigate(cb.URL+"/account"), chromedp.WaitVisible(`[data-warden-current]`)); err != nil {
		t.Fatalf("not signed in: %v", err)
	}
	who, err := chromedp.Run(sctx, chromedp.Evaluate[string](`document.querySelector(".who").textContent`))
	if err != nil || !strings.Contains(who, "alice") {
		t.Fatalf("page header names %q (%v), want alice", who, err)
	}
	cookies, err := browserCookies(sctx, cb.URL)
	if err != nil {
		t.Fatal(err)
	}
	var session *network.Cookie
	for _, c := range cookies {
		if c.Name == "warden_console" {
			session = c
		}
	}
	if session == nil {
		t.Fatalf("no session cookie among %+v", cookies)
	}
	if !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict || session.Path != "/" {
		t.Fatalf("session cookie %+v: want HttpOnly, SameSite=Strict, Path=/", session)
	}
	e := cb.waitEvent(console.EventSignIn, "alice")
	if e.Data["method"] != "link" || e.Data["fingerprint"] != authorizedFingerprint(cb.alice) {
		t.Fatalf("sign-in event %+v", e)
	}
	token := link[strings.Index(link, "token=")+len("token="):]
	for _, e := range cb.events(console.EventLinkIssued) {
		if strings.Contains(e.Actor+e.Subject+strings.Join(flatten(e.Data), " "), token) {
			t.Fatalf("the link token is in the audit event %+v", e)
		}
	}
}

// TestConsoleLinkReplayRefused: a link that signed one browser in is
// refused in another, with the same page as an unknown link, and the
// refusal is audited as a replay.
func TestConsoleLinkReplayRefused(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{})
	link := cb.consoleLink(cb.bob)
	first := cb.browser()
	cb.openLinkBrowser(first, link)

	second := cb.browser()
	sctx, cancel := browsertest.Step(second, 0)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.Navigate(link), chromedp.WaitVisible(`[data-warden-error]`)); err != nil {
		t.Fatalf("replayed link: no refusal page: %v", err)
	}
	msg, err := chromedp.Run(sctx, chromedp.Evaluate[string](`document.querySelector("[data-warden-error]").textContent`))
	if err != nil || !strings.Contains(msg, "not valid") {
		t.Fatalf("refusal page says %q (%v)", msg, err)
	}
	if n, err := chromedp.Run(sctx, chromedp.Evaluate[int](`document.querySelectorAll("[data-warden-confirm]").length`)); err != nil || n != 0 {
		t.Fatalf("replayed link offers a confirm button (%d, %v)", n, err)
	}
	cb.waitEvent(console.EventSignInRefused, "replay")
	// The second browser is not signed in.
	if err := chromedp.Do(sctx, chromedp.Navigate(cb.URL+"/account"), chromedp.WaitVisible(`h1`)); err != nil {
		t.Fatal(err)
	}
	loc, err := chromedp.Run(sctx, chromedp.Evaluate[string](`location.pathname`))
	if err != nil || loc != "/signin" {
		t.Fatalf("second browser reached %q (%v), want /signin", loc, err)
	}

	// The same link posted straight to the form endpoint with a
	// well-formed confirm value is refused as well: the write decides.
	cl := cb.client()
	code, page := cb.get(cl, link)
	if code != http.StatusForbidden || !strings.Contains(page, "not valid") {
		t.Fatalf("replay over HTTP: %d %.200s", code, page)
	}
}

// TestConsolePostWithoutCSRFIs403: a signed-in browser's POST without its
// CSRF token is refused with 403 and changes nothing (the session it tried
// to revoke is still live); with the token it works.
func TestConsolePostWithoutCSRFIs403(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{})
	ctx := cb.browser()
	cb.signInBrowser(ctx, cb.carol)
	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	id, err := chromedp.Run(sctx, chromedp.Evaluate[string](`document.querySelector("[data-warden-current]").getAttribute("data-warden-session")`))
	if err != nil || id == "" {
		t.Fatalf("session id %q: %v", id, err)
	}
	js := `fetch("/account/revoke", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "session=` + id + `", redirect: "manual"}).then(r => r.status)`
	status, err := chromedp.Run(sctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise))
	if err != nil || status != http.StatusForbidden {
		t.Fatalf("POST without CSRF: status %d (%v), want 403", status, err)
	}
	js = `fetch("/account/revoke", {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded"}, body: "session=` + id + `&csrf=wrong", redirect: "manual"}).then(r => r.status)`
	if status, err = chromedp.Run(sctx, chromedp.Evaluate[int](js, chromedp.EvalAwaitPromise)); err != nil || status != http.StatusForbidden {
		t.Fatalf("POST with a wrong CSRF token: status %d (%v), want 403", status, err)
	}
	if err := chromedp.Do(sctx, chromedp.Navigate(cb.URL+"/account"), chromedp.WaitVisible(`[data-warden-current]`)); err != nil {
		t.Fatalf("the refused POST signed the browser out: %v", err)
	}
	if len(cb.events(console.EventSessionRevoked)) != 0 {
		t.Fatal("a POST without CSRF token revoked a session")
	}
	// The page's own form carries the token and works.
	if err := chromedp.Do(sctx, chromedp.Click(`[data-warden-revoke="`+id+`"]`), chromedp.WaitVisible(`h1`)); err != nil {
		t.Fatal(err)
	}
	cb.waitEvent(console.EventSessionRevoked, id)
}

// TestConsoleCommandRefusals: without the console (no http_listen) the
// command refuses with one line and an audit event; extra arguments are
// a usage error; a key nobody knows cannot ask for a link.
func TestConsoleCommandRefusals(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	_, errOut, code := b.run(b.alice, "gw", "console")
	if code != 1 || !strings.Contains(errOut, "warden: the browser console is not enabled") {
		t.Fatalf("no console: exit %d %q", code, errOut)
	}
	b.waitEvent("command.refused", "console")
	cb := newConsoleBed(t, consoleOptions{})
	if _, errOut, code := cb.run(cb.alice, "gw", "console", "--user", "carol"); code != 2 || !strings.Contains(errOut, "usage: console") {
		t.Fatalf("console with arguments: exit %d %q", code, errOut)
	}
	if out, _, code := cb.run(cb.stranger, "gw", "console"); code != 255 || strings.Contains(out, "/signin/link") {
		t.Fatalf("unknown key: exit %d %q", code, out)
	}
	if n := len(cb.events(console.EventLinkIssued)); n != 0 {
		t.Fatalf("%d links issued", n)
	}
}
