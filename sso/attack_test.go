package sso

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"testing"
	"time"
)

// TestAttackForgedConfirmIsAudited: a POST to /oidc/start that did not
// come from the sign-in page in this browser (a cross-site form posting
// the pending sign-in's id, i.e. an attempt to push a victim's browser
// through an attacker's SSH key sign-in, or a guessed CSRF token) is
// refused with 403 and leaves an audit event, as the console's forged
// confirm and every other refused sign-in here do: it is the refusal an
// investigator most needs to see.
func TestAttackForgedConfirmIsAudited(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	s, st := newService(t, t.TempDir(), clk)
	defer st.Close()
	ts, _ := serveFlow(t, s)
	p, err := s.Begin(context.Background(), testKey(t), "192.0.2.1:1", "")
	if err != nil {
		t.Fatal(err)
	}
	id, err := url.Parse(p.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	before, err := st.Events(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	// The victim's browser: it has the sso cookie from some earlier visit
	// of the sign-in page, but the form comes from another site, which
	// cannot know the CSRF token; and a browser without the cookie.
	jar, _ := cookiejar.New(nil)
	victim := &http.Client{Jar: jar}
	if code, _ := fetch(t, victim, "GET", p.URL, nil); code != 200 {
		t.Fatalf("start page: %d", code)
	}
	for name, c := range map[string]*http.Client{"wrong csrf, cookie present": victim, "no cookie": {}} {
		form := url.Values{"id": {id.Query().Get("id")}, "csrf": {"forged-csrf-token-AAAAAAAAAAAAAAAAAAAAAAAAAAAA"}, "code": {p.Code}}
		if code, _ := fetch(t, c, "POST", ts.URL+startPath, form); code != http.StatusForbidden {
			t.Fatalf("%s: forged confirm answered %d, want 403", name, code)
		}
	}
	after, err := st.Events(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var refused int
	for _, e := range after[len(before):] {
		if e.Type == EventRefused {
			refused++
		}
	}
	if refused == 0 {
		t.Fatalf("two forged confirm forms for the pending sign-in of key %s were refused (403), but the audit chain gained %d events and no %s event", p.Fingerprint, len(after)-len(before), EventRefused)
	}
}
