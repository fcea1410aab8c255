package console

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestAuthPagesNeedNoUnsafeInline: the sign-in and account pages hold no
// inline script, event handler or style attribute, which the CSP
// (default-src 'self') would block; and nothing from another origin.
func TestAuthPagesNeedNoUnsafeInline(t *testing.T) {
	tc := newTestConsole(t)
	tc.c.d.BaseURL = func(string) string { return tc.srv.URL }
	tc.c.d.SignOn = boundKeys{"SHA256:x": "ann"}
	link, _, err := tc.c.IssueLink(context.Background(), "ann", "SHA256:x", "127.0.0.1:1", "")
	if err != nil {
		t.Fatal(err)
	}
	cl, _ := tc.signIn(t, "ann")
	bad := regexp.MustCompile(`(?i)\son[a-z]+=|\sstyle=|(?:src|href|action)="(?:https?:)?//`)
	script := regexp.MustCompile(`(?is)<script([^>]*)>(.*?)</script>`)
	for _, u := range []string{"/signin", link, "/account", "/signin/link?token=nope"} {
		if !strings.HasPrefix(u, "http") {
			u = tc.srv.URL + u
		}
		resp, err := cl.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if u == link && !strings.Contains(string(body), "data-warden-confirm") {
			t.Fatalf("no confirm page for %s: %s", u, body)
		}
		if m := bad.FindString(string(body)); m != "" {
			t.Errorf("%s: %q needs unsafe-inline or another origin", u, m)
		}
		for _, m := range script.FindAllStringSubmatch(string(body), -1) {
			if !strings.Contains(m[1], `src="/static/`) || strings.TrimSpace(m[2]) != "" {
				t.Errorf("%s: inline or foreign script %q", u, m[0])
			}
		}
		if strings.Count(string(body), "<script") != len(script.FindAllString(string(body), -1)) {
			t.Errorf("%s: unbalanced script tags", u)
		}
	}
}

// TestRefusalBudget: refusals beyond the minute's budget are counted, not
// written, and the next written one says how many were left out.
func TestRefusalBudget(t *testing.T) {
	var b refusalBudget
	now := time.Date(2026, 1, 1, 10, 0, 0, 0, time.UTC)
	for i := range refusalBurst {
		if !b.allow(now) {
			t.Fatalf("refusal %d not allowed", i)
		}
	}
	if b.allow(now) || b.allow(now.Add(59*time.Second)) {
		t.Fatal("over the budget")
	}
	if !b.allow(now.Add(time.Minute)) {
		t.Fatal("the next minute has a new budget")
	}
	if n := b.takeSuppressed(); n != 2 {
		t.Fatalf("suppressed %d, want 2", n)
	}
}

// TestCSRFDerivation: the CSRF token is the session token's HMAC, differs
// between sessions and is not the token.
func TestCSRFDerivation(t *testing.T) {
	a, b := strings.Repeat("a", 43), strings.Repeat("b", 43)
	if csrfFor(a) == csrfFor(b) || csrfFor(a) == a || csrfFor(a) != csrfFor(a) {
		t.Fatal("CSRF tokens must be per session and deterministic")
	}
}

// boundKeys is a SignOn whose bindings are a map of fingerprint to user.
type boundKeys map[string]string

func (b boundKeys) BoundUser(_ context.Context, fp string) (string, bool) {
	u, ok := b[fp]
	return u, ok
}

// TestSweepEndsIdleSessions: Sweep records sessions idle for more than 30
// minutes as ended (with their audit event) and leaves active ones.
func TestSweepEndsIdleSessions(t *testing.T) {
	tc := newTestConsole(t)
	now := time.Now()
	tc.c.d.Now = func() time.Time { return now }
	idle, _ := tc.signIn(t, "ann")
	now = now.Add(20 * time.Minute)
	active, _ := tc.signIn(t, "gus")
	now = now.Add(11 * time.Minute)
	if n := tc.c.Sweep(context.Background()); n != 1 {
		t.Fatalf("swept %d sessions, want 1", n)
	}
	status := func(cl *http.Client) int {
		resp, err := cl.Get(tc.srv.URL + "/account")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if idleCode, activeCode := status(idle), status(active); idleCode != http.StatusSeeOther || activeCode != http.StatusOK {
		t.Fatalf("after the sweep: idle %d (want 303), active %d (want 200)", idleCode, activeCode)
	}
	var reason string
	if err := tc.c.d.Store.DB().QueryRow(`SELECT end_reason FROM console_sessions WHERE user = 'ann'`).Scan(&reason); err != nil || reason != "idle" {
		t.Fatalf("ann's session: %q %v", reason, err)
	}
}
