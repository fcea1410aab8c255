package gateway_test

import (
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
