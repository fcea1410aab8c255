package gateway_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/warden-gw/warden/console"
	"github.com/warden-gw/warden/internal/browsertest"
	"github.com/warden-gw/warden/internal/optest"
)

// consoleIdPUsers are the test OP's accounts: dana is a YAML user without
// keys, mallory is no Warden user.
var consoleIdPUsers = []optest.User{
	{Username: "dana", Password: "dana-pw", Groups: []string{"sysadmins"}},
	{Username: "mallory", Password: "mallory-pw"},
}

// TestConsoleSignInThroughIdP: with identity.oidc, the console's "Sign in
// with" button runs the code flow against a real OP in real Chromium; a
// Warden user lands signed in (method oidc), a stranger is refused with a
// page and an audit event.
func TestConsoleSignInThroughIdP(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{idp: consoleIdPUsers,
		bed: bedOptions{extraUsers: "  - name: dana\n    groups: [sysadmins]\n"}})
	ctx := cb.browser()
	cb.signInIdP(ctx, "dana", "dana-pw")
	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	// The callback page's refresh reached the console with the cookie
	// (a SameSite=Strict cookie set on the IdP's cross-site redirect is
	// sent on that same-site navigation), not the sign-in page.
	if loc, err := chromedp.Run(sctx, chromedp.Evaluate[string](`location.pathname`)); err != nil || loc == "/signin" {
		t.Fatalf("after the IdP the browser is at %q (%v)", loc, err)
	}
	if err := chromedp.Do(sctx, chromedp.Navigate(cb.URL+"/account"), chromedp.WaitVisible(`[data-warden-current]`)); err != nil {
		t.Fatalf("not signed in after the IdP: %v", err)
	}
	who, err := chromedp.Run(sctx, chromedp.Evaluate[string](`document.querySelector("h1").textContent`))
	if err != nil || !strings.Contains(who, "dana") {
		t.Fatalf("account page %q (%v), want dana", who, err)
	}
	if e := cb.waitEvent(console.EventSignIn, "dana"); e.Data["method"] != "oidc" {
		t.Fatalf("sign-in event %+v", e)
	}

	other := cb.browser()
	cb.signInIdP(other, "mallory", "mallory-pw")
	octx, ocancel := browsertest.Step(other, 0)
	defer ocancel()
	msg, err := chromedp.Run(octx, chromedp.Evaluate[string](`(document.querySelector("[data-warden-error]") || {}).textContent || ""`))
	if err != nil || !strings.Contains(msg, "not a Warden user") {
		t.Fatalf("mallory: page says %q (%v)", msg, err)
	}
	cb.waitEvent(console.EventSignInRefused, "not a Warden user")
	if err := chromedp.Do(octx, chromedp.Navigate(cb.URL+"/account"), chromedp.WaitVisible(`h1`)); err != nil {
		t.Fatal(err)
	}
	if loc, _ := chromedp.Run(octx, chromedp.Evaluate[string](`location.pathname`)); loc != "/signin" {
		t.Fatalf("mallory reached %s", loc)
	}
}

// TestConsoleIdPCallbackOnlyInItsBrowser: login CSRF through the IdP. The
// attacker signs in at the IdP as themselves but stops before the callback
// and sends the victim that callback URL: the victim's browser is refused
// (it did not start the sign-in), and the URL is spent, so the attacker
// cannot use it either.
func TestConsoleIdPCallbackOnlyInItsBrowser(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{idp: consoleIdPUsers,
		bed: bedOptions{extraUsers: "  - name: dana\n    groups: [sysadmins]\n"}})
	attacker := optest.NewBrowser(t)
	var callback string
	attacker.C.CheckRedirect = func(r *http.Request, _ []*http.Request) error {
		if strings.HasPrefix(r.URL.String(), cb.URL+"/oidc/callback") {
			callback = r.URL.String()
			return http.ErrUseLastResponse
		}
		return nil
	}
	attacker.LogIn(attacker.Post(cb.URL+"/signin/oidc", nil), "dana", "dana-pw")
	if callback == "" {
		t.Fatal("the IdP did not redirect to the callback")
	}
	victim := cb.client()
	code, page := cb.get(victim, callback)
	if code != http.StatusForbidden || !strings.Contains(page, "another browser") {
		t.Fatalf("the victim's browser: %d %.300s", code, page)
	}
	if c, _ := cb.get(victim, "/account"); c != http.StatusSeeOther {
		t.Fatalf("the victim's browser was signed in: %d", c)
	}
	cb.waitEvent(console.EventSignInRefused, "another browser")
	attacker.C.CheckRedirect = nil
	if p := attacker.Get(callback); p.Status == http.StatusOK {
		t.Fatalf("the spent callback still signs in: %s", p)
	}
	if len(cb.events(console.EventSignIn)) != 0 {
		t.Fatal("a console session started")
	}
}
