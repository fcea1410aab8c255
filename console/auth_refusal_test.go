package console

import (
	"context"
	"net/http"
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
