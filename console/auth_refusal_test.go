package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestRefusalUnreadableLinkFormIsAudited: a POST to /signin/link whose
// form cannot be read (oversized, or malformed) is refused with 400 and,
// as every other refused sign-in link, leaves a console.signin_refused
// event (CONTRACT §1: every refusal leaves an audit event).
func TestRefusalUnreadableLinkFormIsAudited(t *testing.T) {
	tc := newTestConsole(t)
	cl := tc.client(t)
	ctx := context.Background()
	for name, body := range map[string]string{
		"oversized": "token=" + strings.Repeat("A", maxFormBytes+10),
		"malformed": "token=%zz",
	} {
		before, err := tc.c.d.Store.Events(ctx, 0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := cl.Post(tc.srv.URL+linkPath, "application/x-www-form-urlencoded", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("%s form: %d, want 400", name, resp.StatusCode)
		}
		after, err := tc.c.d.Store.Events(ctx, 0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, e := range after[len(before):] {
			if e.Type == EventSignInRefused {
				got = append(got, e.Data["reason"].(string))
			}
		}
		if len(got) != 1 || !strings.Contains(got[0], "form") {
			t.Fatalf("%s form refused (400) with sign-in refusal events %q, want one about the form", name, got)
		}
	}
}

// TestRefusalOfARedeemWhoseClientLeftIsAudited: a replayed or made-up
// link posted by a client that hangs up at once is still refused on the
// record. net/http cancels the request's context when the connection
// closes; the redeem transaction, which holds the refusal's event, ran
// under it and so was not written (and the answer was a 500).
func TestRefusalOfARedeemWhoseClientLeftIsAudited(t *testing.T) {
	tc := newTestConsole(t)
	tok := strings.Repeat("B", 43) // a well-formed token no link has
	ck := strings.Repeat("C", 43)
	body := "token=" + tok + "&confirm=" + confirmFor(ck, tokenHash(tok))
	gone, cancel := context.WithCancel(context.Background())
	cancel() // the client closed its connection
	req := httptest.NewRequest(http.MethodPost, linkPath, strings.NewReader(body)).WithContext(gone)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: linkCookie, Value: ck})
	rec := httptest.NewRecorder()
	tc.c.linkRedeem(rec, req)
	if rec.Code != http.StatusForbidden {
		t.Fatalf("made-up link from a client that left: %d, want 403", rec.Code)
	}
	evs, err := tc.c.d.Store.Events(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Type == EventSignInRefused && e.Data["reason"] == "unknown link" {
			return
		}
	}
	t.Fatalf("no %s event for the made-up link; events %+v", EventSignInRefused, evs)
}
