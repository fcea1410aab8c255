package sso

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// serveFlow mounts s on a test server and returns it with a browser.
func serveFlow(t *testing.T, s *Service) (*httptest.Server, *http.Client) {
	mux := http.NewServeMux()
	s.Mount(mux)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	s.opt.BaseURL = func(string) string { return ts.URL }
	jar, _ := cookiejar.New(nil)
	return ts, &http.Client{Jar: jar}
}

var hiddenField = regexp.MustCompile(`name="(id|csrf)" value="([^"]*)"`)

func fetch(t *testing.T, c *http.Client, method, u string, form url.Values) (int, string) {
	t.Helper()
	var resp *http.Response
	var err error
	if method == "POST" {
		resp, err = c.PostForm(u, form)
	} else {
		resp, err = c.Get(u)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestWrongCodesEndSignIn: five wrong codes end the sign-in, and the
// waiting client hears why; the link is dead afterwards.
func TestWrongCodesEndSignIn(t *testing.T) {
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
		t.Fatalf("start: %d", code)
	}
	form := url.Values{}
	for _, m := range hiddenField.FindAllStringSubmatch(body, -1) {
		form.Set(m[1], m[2])
	}
	form.Set("code", "ZZZZ-ZZZZ")
	if p.Code == "ZZZZ-ZZZZ" {
		form.Set("code", "BBBB-BBBB")
	}
	for i := 1; i <= maxAttempts; i++ {
		code, body = fetch(t, c, "POST", ts.URL+startPath, form)
		if code != http.StatusForbidden {
			t.Fatalf("attempt %d: %d", i, code)
		}
	}
	if !strings.Contains(body, "Too many wrong codes") {
		t.Fatalf("last attempt: %s", body)
	}
	if r := p.Wait(context.Background()); r.Err == nil || r.Err.Error() != "sign-in refused: too many wrong codes were typed on the sign-in page" {
		t.Fatalf("result %+v", r)
	}
	form.Set("code", p.Code)
	if code, _ := fetch(t, c, "POST", ts.URL+startPath, form); code != http.StatusNotFound {
		t.Fatalf("right code after the sign-in ended: %d", code)
	}
}

// TestLinkExpires: after the pending TTL (injected clock) the link shows
// nothing, and the sweep tells the waiting client.
func TestLinkExpires(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	s, st := newService(t, t.TempDir(), clk)
	defer st.Close()
	_, c := serveFlow(t, s)
	p, err := s.Begin(context.Background(), testKey(t), "192.0.2.1:1", "")
	if err != nil {
		t.Fatal(err)
	}
	clk.add(defaultPendingTTL)
	if code, _ := fetch(t, c, "GET", p.URL, nil); code != http.StatusNotFound {
		t.Fatalf("expired link: %d", code)
	}
	s.Sweep(context.Background())
	if r := p.Wait(context.Background()); r.Err == nil || !strings.Contains(r.Err.Error(), "expired") {
		t.Fatalf("result %+v", r)
	}
}

// TestCookieAttributes: the browser cookie is HttpOnly and SameSite=Lax
// (the IdP's redirect is a cross-site navigation), and over https a
// __Host- cookie: Secure, host-only, Path=/, so no sibling subdomain can
// plant one.
func TestCookieAttributes(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	s, st := newService(t, t.TempDir(), clk)
	defer st.Close()
	ts, _ := serveFlow(t, s)
	for _, tc := range []struct{ base, want string }{
		{ts.URL, "warden_sso=; Path=/oidc/; HttpOnly; SameSite=Lax"},
		{"https://warden.example.com/gw", "__Host-warden_sso=; Path=/; HttpOnly; Secure; SameSite=Lax"},
	} {
		s.opt.BaseURL = func(string) string { return tc.base }
		p, err := s.Begin(context.Background(), testKey(t), "192.0.2.1:1", "")
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.Get(ts.URL + startPath + "?id=" + strings.TrimPrefix(p.URL, tc.base+startPath+"?id="))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		got := regexp.MustCompile(`=[A-Za-z0-9_-]{43};`).ReplaceAllString(resp.Header.Get("Set-Cookie"), "=;")
		if resp.StatusCode != 200 || got != tc.want {
			t.Errorf("base %s: %d Set-Cookie %q, want %q", tc.base, resp.StatusCode, got, tc.want)
		}
	}
}
