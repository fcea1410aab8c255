package gateway_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/warden-gw/warden/console"
	"github.com/warden-gw/warden/internal/optest"
)

// TestConsoleLinkOfSignedInKey: a key Warden knows only through `ssh gw
// login` gets console links for the user it is bound to; after `ssh gw
// logout` a link it got before is dead.
func TestConsoleLinkOfSignedInKey(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{idp: []optest.User{{Username: "alice", Password: "alice-pw"}}})
	sb := &ssoBed{testbed: cb.testbed, op: cb.op, svc: cb.sso}
	sb.signIn(t, cb.stranger, "alice", "alice-pw")
	cl, _ := cb.signInHTTP(cb.stranger)
	if _, acct := cb.get(cl, "/account"); !strings.Contains(acct, "<h1>Account: alice</h1>") {
		t.Fatalf("the bound key's link: %.300s", acct)
	}
	link := cb.consoleLink(cb.stranger)
	if _, errOut, code := cb.run(cb.stranger, "me", "logout"); code != 0 {
		t.Fatalf("logout: %d %q", code, errOut)
	}
	cb.refusedPage(link)
	cb.waitEvent(console.EventSignInRefused, "no longer in the policy")
}

// TestConsoleLinkRace: many browsers holding the confirm page of one link
// post at once; exactly one is signed in, the others are refused as
// replays (single use is decided in the store's one writer).
func TestConsoleLinkRace(t *testing.T) {
	cb := newConsoleBed(t, consoleOptions{})
	link := cb.consoleLink(cb.alice)
	const n = 8
	type browser struct {
		cl   *http.Client
		page string
	}
	var bs []browser
	for range n {
		cl := cb.client()
		code, page := cb.get(cl, link)
		if code != http.StatusOK {
			t.Fatalf("confirm page: %d", code)
		}
		bs = append(bs, browser{cl, page})
	}
	codes := make([]int, n)
	var wg sync.WaitGroup
	for i, b := range bs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := b.cl.PostForm(cb.URL+"/signin/link", formValues(b.page))
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			codes[i] = resp.StatusCode
		}()
	}
	wg.Wait()
	won := 0
	for _, c := range codes {
		switch c {
		case http.StatusSeeOther:
			won++
		case http.StatusForbidden:
		default:
			t.Fatalf("statuses %v", codes)
		}
	}
	if won != 1 {
		t.Fatalf("%d browsers signed in with one link (statuses %v)", won, codes)
	}
	if got := len(cb.events(console.EventSignIn)); got != 1 {
		t.Fatalf("%d sign-in events", got)
	}
	cb.waitEvent(console.EventSignInRefused, "replay")
}
