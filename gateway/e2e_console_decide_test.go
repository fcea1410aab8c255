package gateway_test

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/warden-gw/warden/internal/browsertest"
	"github.com/warden-gw/warden/internal/sshtest"
)

// The console's decide pages end to end: real OpenSSH clients, the real
// gateway and sshd, sign-in through a real `ssh gw console` link, and real
// Chromium. The testbed's users: bob may request prod-root (acme) and
// globex-root; carol approves prod-root (acme), dave globex-root (globex).

// newDecideBed is the console bed with a second tenant, globex, whose
// app01 is the same sshd and whose privileged role dave approves.
func newDecideBed(t *testing.T) *consoleBed {
	t.Helper()
	return newConsoleBed(t, consoleOptions{bed: bedOptions{
		tenants: func(h *sshtest.Host) string {
			return fmt.Sprintf("  - name: globex\n    hosts:\n      - name: app01\n        address: %q\n        host_key: %q\n",
				h.Addr, authorizedKey(h.HostKey))
		},
		extraRoles: `  - name: globex-root
    tenant: globex
    hosts: {names: [app01]}
    logins: [root]
    privileged: true
    eligible: [helpdesk]
    approvers: [management]
`,
	}})
}

// browserAs starts a real Chromium signed in as c's user.
func (cb *consoleBed) browserAs(c *sshtest.Client) context.Context {
	cb.t.Helper()
	ctx := cb.browser()
	cb.signInBrowser(ctx, c)
	return ctx
}

// text is the text of the first element sel matches.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

// evalIn runs js in the page and returns its value.
func evalIn[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

// postFrom POSTs to path from the page with fetch, with the page's CSRF
// token when csrf is set, and returns "STATUS LINE", LINE being the
// page's result or error line.
func postFrom(t *testing.T, ctx context.Context, path, body string, csrf bool) string {
	t.Helper()
	hdr := `{"Content-Type": "application/x-www-form-urlencoded"}`
	if csrf {
		hdr = `{"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": window.warden.csrf()}`
	}
	return evalIn[string](t, ctx, fmt.Sprintf(`fetch(%q, {method: "POST", headers: %s, body: %q}).then(r => r.text().then(x => {
		const m = new DOMParser().parseFromString(x, "text/html").querySelector("[data-warden-result], [data-warden-error]");
		return r.status + " " + (m ? m.textContent.trim() : x.trim());
	}))`, path, hdr, body))
}

// requestState is the stored state of request id.
func (b *testbed) requestState(id string) string {
	b.t.Helper()
	var s string
	if err := b.db().QueryRow(`SELECT state FROM requests WHERE id = ?`, id).Scan(&s); err != nil {
		b.t.Fatal(err)
	}
	return s
}

// TestConsoleApproveInBrowserThenLogInOverSSH: bob asks over real ssh,
// carol signs in with `ssh gw console`, opens /requests in Chromium and
// clicks the approve button; bob then logs in to the managed host under
// the new grant over real ssh, and the page names carol as the approver.
func TestConsoleApproveInBrowserThenLogInOverSSH(t *testing.T) {
	cb := newDecideBed(t)
	id := cb.openRequest("prod-root")
	if _, errOut, code := cb.run(cb.bob, "root@web01", "true"); code != 1 || !strings.Contains(errOut, "no active grant") {
		t.Fatalf("before approval: %d %q", code, errOut)
	}

	ctx := cb.browserAs(cb.carol)
	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	btn := `button[data-warden-approve="` + id + `"]`
	if err := chromedp.Do(sctx, chromedp.Navigate(cb.URL+"/requests"), chromedp.WaitVisible(btn)); err != nil {
		t.Fatal(err)
	}
	card := text(t, sctx, `section[data-warden-request="`+id+`"]`)
	for _, want := range []string{"bob", "prod-root", "acme", "INC-1", "30m00s"} {
		if !strings.Contains(card, want) {
			t.Errorf("request card lacks %q: %s", want, card)
		}
	}
	if err := chromedp.Do(sctx,
		chromedp.SendKeys(`section[data-warden-request="`+id+`"] input[name="comment"]`, "ok, go ahead"),
		chromedp.Click(btn),
		chromedp.WaitVisible(`[data-warden-result="ok"]`)); err != nil {
		t.Fatal(err)
	}
	if result := text(t, sctx, `[data-warden-result]`); !regexp.MustCompile(`^request ` + id + ` approved: grant \d+ for bob on prod-root until `).MatchString(result) {
		t.Fatalf("result %q", result)
	}
	if approver := text(t, sctx, `tr[data-warden-request="`+id+`"] [data-warden-approver]`); approver != "carol" {
		t.Fatalf("decision shows %q", approver)
	}
	out, errOut, code := cb.run(cb.bob, "root@web01", "echo", "granted")
	if code != 0 || out != "granted\n" {
		t.Fatalf("bob under the grant: %d %q %q", code, out, errOut)
	}
	if s := cb.lastSession("bob"); s.GrantID == 0 || s.Role != "prod-root" {
		t.Fatalf("session %+v", s)
	}
	var approver, comment string
	if err := cb.db().QueryRow(`SELECT approver, comment FROM approvals WHERE request_id = ?`, id).Scan(&approver, &comment); err != nil ||
		approver != "carol" || comment != "ok, go ahead" {
		t.Fatalf("approvals row %q %q %v", approver, comment, err)
	}
	if e := cb.waitEvent("request.approved", "carol"); e.Actor != "carol" {
		t.Fatalf("event %+v", e)
	}

	// bob's grant, with time left, on his own /grants page.
	bctx := cb.browserAs(cb.bob)
	bs, bcancel := browsertest.Step(bctx, 0)
	defer bcancel()
	if err := chromedp.Do(bs, chromedp.Navigate(cb.URL+"/grants"), chromedp.WaitVisible(`[data-warden-left]`)); err != nil {
		t.Fatal(err)
	}
	if left := text(t, bs, `[data-warden-left]`); !regexp.MustCompile(`^(29|30)m\d\ds$`).MatchString(left) {
		t.Fatalf("time left %q", left)
	}
}

// TestConsoleDecideAttacks: another tenant's approver sees nothing of acme
// and cannot approve or deny its request by ID (the same answer as an
// unknown ID, audited); the requester cannot approve their own request;
// an approval without the CSRF token is refused; none of it changes the
// request.
func TestConsoleDecideAttacks(t *testing.T) {
	cb := newDecideBed(t)
	id := cb.openRequest("prod-root")
	gid := cb.openRequest("globex-root")
	if _, errOut, code := cb.run(cb.carol, "gw", "exception", "add", "--tenant", "acme", "--owner", "carol", "--reason", "'legacy box'",
		"--controls", "'extra review'", "--expires", time.Now().AddDate(0, 1, 0).Format("2006-01-02")); code != 0 {
		t.Fatalf("exception add: %q", errOut)
	}

	dave := cb.browserAs(cb.dave)
	for _, page := range []string{"/requests", "/grants", "/exceptions?show=all", "/evidence"} {
		body := evalIn[string](t, dave, fmt.Sprintf(`fetch(%q).then(r => r.text())`, page))
		if strings.Contains(body, "prod-root") || strings.Contains(body, "acme") || strings.Contains(body, "legacy box") {
			t.Errorf("dave sees acme on %s", page)
		}
	}
	sctx, cancel := browsertest.Step(dave, 0)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.Navigate(cb.URL+"/requests"), chromedp.WaitVisible(`button[data-warden-approve="`+gid+`"]`)); err != nil {
		t.Fatalf("dave's own tenant's request: %v", err)
	}
	foreign := postFrom(t, dave, "/requests/"+id+"/approve", "", true)
	unknown := postFrom(t, dave, "/requests/999/approve", "", true)
	if foreign != "403 warden: no request "+id+" that you can act on" || unknown != "403 warden: no request 999 that you can act on" {
		t.Fatalf("foreign %q, unknown %q", foreign, unknown)
	}
	if got := postFrom(t, dave, "/requests/"+id+"/deny", "reason=mine+now", true); got != "403 warden: no request "+id+" that you can act on" {
		t.Fatalf("foreign deny %q", got)
	}
	n := 0
	for _, e := range cb.events("command.refused") {
		if e.Actor == "dave" && e.Data["via"] == "console" && e.Subject == "approve "+id {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("dave's approval of acme's request audited %d times", n)
	}

	bob := cb.browserAs(cb.bob)
	if n := evalIn[int](t, bob, `fetch("/requests").then(r => r.text()).then(x => new DOMParser().parseFromString(x, "text/html").querySelectorAll("[data-warden-approve]").length)`); n != 0 {
		t.Fatalf("bob is offered %d approve buttons", n)
	}
	if got := postFrom(t, bob, "/requests/"+id+"/approve", "", true); got != "403 warden: you cannot approve your own request" {
		t.Fatalf("own approval %q", got)
	}

	carol := cb.browserAs(cb.carol)
	if got := postFrom(t, carol, "/requests/"+id+"/approve", "", false); !strings.HasPrefix(got, "403 ") {
		t.Fatalf("without CSRF %q", got)
	}
	if s := cb.requestState(id); s != "pending" {
		t.Fatalf("after refused approvals: %s", s)
	}
	// carol sees acme's exception and request, and nothing of globex's.
	if body := evalIn[string](t, carol, `fetch("/exceptions").then(r => r.text())`); !strings.Contains(body, "legacy box") {
		t.Fatalf("carol's exceptions:\n%s", body)
	}
	if body := evalIn[string](t, carol, `fetch("/requests").then(r => r.text())`); strings.Contains(body, "globex") {
		t.Fatal("carol sees globex")
	}
}
