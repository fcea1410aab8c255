package console

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/warden-gw/warden/audit"
)

// The review's attacks on a browser session's binding to the key that
// signed it in (review_attack_test.go has the rest).

// TestAttackLinkSessionEndsWithItsKey: a browser session signed in by a
// link lasts only while the link's key is still its user's. When the
// binding that made the key theirs ends (here `ssh gw login`'s; a key
// removed from the policy is the same check), the next request ends the
// session, even though the user is still in the policy.
func TestAttackLinkSessionEndsWithItsKey(t *testing.T) {
	tc := newTestConsole(t)
	bound := &syncBound{m: map[string]string{"SHA256:annkey": "ann"}}
	cl := signInByLink(t, tc, bound, "ann", "SHA256:annkey")
	kept := cl.Jar.Cookies(mustURL(tc.srv.URL))
	bound.set("SHA256:annkey", "") // the key is no longer ann's
	resp, err := cl.Get(tc.srv.URL + "/account")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 303 || resp.Header.Get("Location") != "/signin" {
		t.Fatalf("after the key left: %d", resp.StatusCode)
	}
	// The key coming back does not revive the session.
	bound.set("SHA256:annkey", "ann")
	replay := tc.client(t)
	replay.Jar.SetCookies(mustURL(tc.srv.URL), kept)
	if code, _ := get(t, replay, tc.srv.URL+"/account"); code != 303 {
		t.Fatalf("the ended session came back with its key: %d", code)
	}
	if n := countEvents(t, tc, func(e audit.Event) bool {
		return e.Type == EventSessionEnded && e.Actor == "ann" && e.Data["reason"] == "key"
	}); n != 1 {
		t.Fatalf("%d session_ended events for the key", n)
	}
	var ended string
	if err := tc.c.d.Store.DB().QueryRow(`SELECT COALESCE(end_reason, '') FROM console_sessions WHERE method = 'link'`).Scan(&ended); err != nil || ended != "key" {
		t.Fatalf("session row: %q %v", ended, err)
	}
}

// signInByLink signs user in on a new client through a real link bound
// to the key fp, which bound makes theirs (as `ssh gw login` would).
func signInByLink(t *testing.T, tc *testConsole, bound SignOn, user, fp string) *http.Client {
	t.Helper()
	tc.c.d.BaseURL = func(string) string { return tc.srv.URL }
	tc.c.d.SignOn = bound
	link, _, err := tc.c.IssueLink(context.Background(), user, fp, "127.0.0.1:1", "")
	if err != nil {
		t.Fatal(err)
	}
	cl := tc.client(t)
	code, page := get(t, cl, link)
	if code != 200 {
		t.Fatalf("link page: %d", code)
	}
	form := url.Values{}
	for _, m := range regexp.MustCompile(`name="(token|confirm)" value="([^"]*)"`).FindAllStringSubmatch(page, -1) {
		form.Set(m[1], html.UnescapeString(m[2]))
	}
	if code, _ := post(t, cl, tc.srv.URL+"/signin/link", form); code != 303 {
		t.Fatalf("redeem: %d", code)
	}
	if code, _ := get(t, cl, tc.srv.URL+"/account"); code != 200 {
		t.Fatalf("signed in: %d", code)
	}
	return cl
}

// TestAttackLiveSocketEndsWithTheLinksKey: an open live view of a browser
// signed in by a link ends within seconds of the link's key ceasing to be
// its user's, though the user stays an overseer in the policy.
func TestAttackLiveSocketEndsWithTheLinksKey(t *testing.T) {
	tc, fl := newLiveConsole(t)
	bound := &syncBound{m: map[string]string{"SHA256:annkey": "ann"}}
	ann := signInByLink(t, tc, bound, "ann", "SHA256:annkey")
	c, _, err := dialLive(t, tc, ann, liveID, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	readMsg(t, c)
	bound.set("SHA256:annkey", "")
	var last string
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		_, b, err := c.Read(ctx)
		cancel()
		if err != nil {
			if websocket.CloseStatus(err) != websocket.StatusNormalClosure {
				t.Fatalf("close: %v", err)
			}
			break
		}
		last = string(b)
	}
	if !strings.Contains(last, "signed out; watch ended") {
		t.Fatalf("last %q", last)
	}
	<-fl.ended
}

// syncBound is boundKeys that a test may change while requests read it.
type syncBound struct {
	mu sync.Mutex
	m  map[string]string
}

func (b *syncBound) BoundUser(_ context.Context, fp string) (string, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	u, ok := b.m[fp]
	return u, ok && u != ""
}

func (b *syncBound) set(fp, user string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.m[fp] = user
}
