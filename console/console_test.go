package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestPagesParse(t *testing.T) {
	tc := newTestConsole(t)
	if _, ok := tc.c.pages["error"]; !ok {
		t.Fatalf("pages %v", tc.c.pages)
	}
}

// TestActionNeedsCSRF: a state-changing request from a signed-in browser
// without its session's CSRF token, or with another session's, is 403.
func TestActionNeedsCSRF(t *testing.T) {
	tc := newTestConsole(t)
	mux := http.NewServeMux()
	called := 0
	mux.Handle("POST /x", tc.c.action(func(w http.ResponseWriter, r *http.Request, v *Viewer) { called++ }))
	tc.srv.Config.Handler = mux
	cl, csrf := tc.signIn(t, "ann")
	_, other := tc.signIn(t, "ann")
	for _, tok := range []string{"", other, csrf + "x"} {
		resp, err := cl.PostForm(tc.srv.URL+"/x", url.Values{"csrf": {tok}})
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("token %q: status %d, want 403", tok, resp.StatusCode)
		}
	}
	resp, err := cl.PostForm(tc.srv.URL+"/x", url.Values{"csrf": {csrf}})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || called != 1 {
		t.Fatalf("with the token: status %d, called %d", resp.StatusCode, called)
	}
}

// TestRemovedUserLosesTheConsole: a user taken out of the policy is
// signed out at their next click.
func TestRemovedUserLosesTheConsole(t *testing.T) {
	tc := newTestConsole(t)
	cl, _ := tc.signIn(t, "dan")
	resp, err := cl.Get(tc.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/sessions" {
		t.Fatalf("signed in: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	tc.pol.Store(twoTenants(t, "dan"))
	resp, err = cl.Get(tc.srv.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/signin" {
		t.Fatalf("removed: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
}

func TestClean(t *testing.T) {
	got := Clean("web\x1b[31m01\u202e\u0085ok\t")
	if want := `web\x1b[31m01\u202e\x85ok` + "\t"; got != want {
		t.Fatalf("Clean = %q, want %q", got, want)
	}
	if strings.ContainsAny(got, "\x1b\u202e") {
		t.Fatal("controls left")
	}
}

func TestStaticHasNoListing(t *testing.T) {
	tc := newTestConsole(t)
	for path, want := range map[string]int{"/static/": 404, "/static/warden.css": 200, "/static/warden.js": 200} {
		resp, err := http.Get(tc.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, want)
		}
	}
}
