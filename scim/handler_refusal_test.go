package scim_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/identity"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/scim"
)

// TestRefusalOfAClientThatLeftIsStillAudited: a refused SCIM request
// leaves its event (scim.unauthorized, scim.refused) even when the client
// has already gone: net/http cancels a request's context when its
// connection closes, and an event appended under that context was not
// written. A token guesser that sends its request and hangs up at once
// must not leave no trace.
func TestRefusalOfAClientThatLeftIsStillAudited(t *testing.T) {
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "tok"), []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := policy.Parse([]byte(fmt.Sprintf(`data_dir: %q
http_listen: "127.0.0.1:0"
groups: [{name: sysadmins}]
users: [{name: alice, groups: [sysadmins]}]
identity:
  directories: [{name: okta, token_file: %q}]
`, filepath.Join(d, "data"), filepath.Join(d, "tok"))), filepath.Join(d, "w.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := audit.Open(context.Background(), cfg.DataDir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	dir, err := identity.Open(context.Background(), identity.Options{Store: st, Policy: func() *policy.Config { return cfg }})
	if err != nil {
		t.Fatal(err)
	}
	h, err := scim.NewHandler(dir, scim.Options{Policy: func() *policy.Config { return cfg }, Store: st})
	if err != nil {
		t.Fatal(err)
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel() // the client closed its connection
	for _, c := range []struct{ tok, path string }{
		{"a-guessed-token-0123456789", "/scim/v2/Users"},
		{token, "/scim/v2/Users/no-such-id"},
	} {
		req := httptest.NewRequest(http.MethodGet, c.path, nil).WithContext(gone)
		req.Header.Set("Authorization", "Bearer "+c.tok)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusUnauthorized && rec.Code != http.StatusNotFound {
			t.Fatalf("%s: %d", c.path, rec.Code)
		}
	}
	evs, err := st.Events(context.Background(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, e := range evs {
		got[e.Type]++
	}
	if got["scim.unauthorized"] != 1 || got["scim.refused"] != 1 {
		t.Fatalf("events of refusals whose client left: %v, want one scim.unauthorized and one scim.refused", got)
	}
}
