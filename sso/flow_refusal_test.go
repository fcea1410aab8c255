package sso

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
)

// Refusals of the sign-in pages that used to leave no audit event. The
// README promises that every refusal of a sign-in is a chained audit event
// (sso.refused), and CONTRACT §1's rule is the same for all bad input.

// refusedSince returns the sso.refused events appended after the first n.
func refusedSince(t *testing.T, st *audit.Store, n int) []audit.Event {
	t.Helper()
	all, err := st.Events(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	var out []audit.Event
	for _, e := range all[n:] {
		if e.Type == EventRefused {
			out = append(out, e)
		}
	}
	return out
}

func eventCount(t *testing.T, st *audit.Store) int {
	t.Helper()
	all, err := st.Events(context.Background(), 0, 100000)
	if err != nil {
		t.Fatal(err)
	}
	return len(all)
}

// TestRefusalSignInPagesAreAudited: an unknown sign-in link, a confirm
// form for an unknown sign-in, a wrong code, a second confirmation of a
// sign-in that a browser already confirmed, an unreadable form and a
// callback with an unknown state are each refused and each leaves an
// sso.refused event that says why.
func TestRefusalSignInPagesAreAudited(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	s, st := newService(t, t.TempDir(), clk)
	defer st.Close()
	ts, c := serveFlow(t, s)
	p, err := s.Begin(context.Background(), testKey(t), "192.0.2.1:1", "")
	if err != nil {
		t.Fatal(err)
	}
	code, body := fetch(t, c, "GET", p.URL, nil)
	if code != 200 {
		t.Fatalf("start page: %d", code)
	}
	form := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(body, -1) {
		form.Set(m[1], m[2])
	}
	wrong := "ZZZZ-ZZZZ"
	if p.Code == wrong {
		wrong = "BBBB-BBBB"
	}

	steps := []struct {
		name   string
		do     func() int
		status int
		reason string
	}{
		{"unknown link", func() int {
			code, _ := fetch(t, c, "GET", ts.URL+startPath+"?id=made-up-id", nil)
			return code
		}, http.StatusNotFound, "unknown"},
		{"confirm of unknown sign-in", func() int {
			code, _ := fetch(t, c, "POST", ts.URL+startPath, url.Values{"id": {"made-up-id"}, "csrf": {"x"}, "code": {"x"}})
			return code
		}, http.StatusNotFound, "unknown"},
		{"wrong code", func() int {
			f := url.Values{"id": {form.Get("id")}, "csrf": {form.Get("csrf")}, "code": {wrong}}
			code, _ := fetch(t, c, "POST", ts.URL+startPath, f)
			return code
		}, http.StatusForbidden, "wrong code"},
		{"second confirmation", func() int {
			s.mu.Lock()
			s.byID[form.Get("id")].confirmed = true // as after a confirm that reached the IdP
			s.mu.Unlock()
			f := url.Values{"id": {form.Get("id")}, "csrf": {form.Get("csrf")}, "code": {p.Code}}
			code, _ := fetch(t, c, "POST", ts.URL+startPath, f)
			return code
		}, http.StatusConflict, "already confirmed"},
		{"unreadable form", func() int {
			resp, err := c.Post(ts.URL+startPath, "application/x-www-form-urlencoded", strings.NewReader("id=%zz"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}, http.StatusBadRequest, "form"},
		{"unknown state", func() int {
			code, _ := fetch(t, c, "GET", ts.URL+callbackPath+"?state=made-up-state&code=x", nil)
			return code
		}, http.StatusBadRequest, "unknown"},
	}
	for _, st2 := range steps {
		n := eventCount(t, st)
		if got := st2.do(); got != st2.status {
			t.Fatalf("%s: status %d, want %d", st2.name, got, st2.status)
		}
		ev := refusedSince(t, st, n)
		if len(ev) != 1 || !strings.Contains(fmt.Sprint(ev[0].Data["reason"]), st2.reason) {
			t.Fatalf("%s: refused (%d) with sso.refused events %+v, want one whose reason says %q", st2.name, st2.status, ev, st2.reason)
		}
	}
}

// TestRefusalSignInPagesAreBounded: the pages are open to anyone, so their
// refusal events are bounded (refusalBurst a minute, the rest counted in
// the next event's suppressed_before): a flood of made-up links cannot
// grow the chain without limit.
func TestRefusalSignInPagesAreBounded(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	s, st := newService(t, t.TempDir(), clk)
	defer st.Close()
	ts, c := serveFlow(t, s)
	n := eventCount(t, st)
	for i := 0; i < refusalBurst+40; i++ {
		if code, _ := fetch(t, c, "GET", ts.URL+startPath+"?id=x"+fmt.Sprint(i), nil); code != http.StatusNotFound {
			t.Fatalf("made-up link %d: %d", i, code)
		}
	}
	if ev := refusedSince(t, st, n); len(ev) != refusalBurst {
		t.Fatalf("%d sso.refused events for %d made-up links in a minute, want %d", len(ev), refusalBurst+40, refusalBurst)
	}
	clk.add(time.Minute)
	n = eventCount(t, st)
	fetch(t, c, "GET", ts.URL+startPath+"?id=later", nil)
	ev := refusedSince(t, st, n)
	if len(ev) != 1 || fmt.Sprint(ev[0].Data["suppressed_before"]) != "40" {
		t.Fatalf("next minute's event %+v, want suppressed_before 40", ev)
	}
}
