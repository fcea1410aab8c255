package console

import (
	"context"
	"crypto/ed25519"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// keyLine is a fresh ed25519 public key in authorized_keys form.
func keyLine(t testing.TB) string {
	pub, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// twoTenants is a policy with clients acme and globex: ann approves acme,
// gus approves globex, tia audits acme, eve audits all, dan is an operator.
// The users named in without are left out.
func twoTenants(t testing.TB, without ...string) *policy.Config {
	lines := []string{
		"tenants:",
		"  - {name: acme, hosts: [{name: web01, address: 10.0.0.1, host_key: '" + keyLine(t) + "'}]}",
		"  - {name: globex, hosts: [{name: app01, address: 10.0.0.2, host_key: '" + keyLine(t) + "'}]}",
		"users:",
		"  - {name: ann, groups: [acme-sec]}",
		"  - {name: gus, groups: [globex-sec]}",
		"  - {name: tia, groups: [acme-audit]}",
		"  - {name: eve, groups: [auditors]}",
		"  - {name: dan, groups: [ops]}",
		"roles:",
		"  - {name: acme-root, tenant: acme, hosts: {names: ['*']}, logins: [root], privileged: true, eligible: [ops], approvers: [acme-sec]}",
		"  - {name: globex-root, tenant: globex, hosts: {names: ['*']}, logins: [root], privileged: true, eligible: [ops], approvers: [globex-sec]}",
		"groups:",
		"  - {name: ops}",
		"  - {name: acme-sec}",
		"  - {name: globex-sec}",
		"  - {name: auditors}",
		"  - {name: acme-audit, audits: [acme]}",
	}
	var keep []string
next:
	for _, l := range lines {
		for _, u := range without {
			if strings.HasPrefix(l, "  - {name: "+u+",") {
				continue next
			}
		}
		keep = append(keep, l)
	}
	src := strings.Join(keep, "\n") + "\n"
	c, err := policy.Parse([]byte(src), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// testConsole is a Console on a fresh store and the twoTenants policy,
// served by an httptest server. pol may be swapped by the test.
type testConsole struct {
	c   *Console
	srv *httptest.Server
	pol atomic.Pointer[policy.Config]
}

func newTestConsole(t testing.TB) *testConsole {
	t.Helper()
	dir := t.TempDir()
	st, err := audit.Open(context.Background(), dir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	tc := &testConsole{}
	tc.pol.Store(twoTenants(t))
	c, err := New(Deps{Store: st, DataDir: dir, Policy: tc.pol.Load})
	if err != nil {
		t.Fatal(err)
	}
	tc.c = c
	mux := http.NewServeMux()
	c.Mount(mux)
	tc.srv = httptest.NewServer(mux)
	t.Cleanup(tc.srv.Close)
	return tc
}

// client returns an HTTP client with a cookie jar that does not follow
// redirects, so tests see each answer.
func (tc *testConsole) client(t testing.TB) *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// signIn signs user in on a new client, as a completed sign-in would, and
// returns the client and the session's CSRF token.
func (tc *testConsole) signIn(t testing.TB, user string) (*http.Client, string) {
	t.Helper()
	cl := tc.client(t)
	rec := httptest.NewRecorder()
	if err := tc.c.startSession(rec, user); err != nil {
		t.Fatal(err)
	}
	u, _ := http.NewRequest("GET", tc.srv.URL, nil)
	cl.Jar.SetCookies(u.URL, rec.Result().Cookies())
	req, _ := http.NewRequest("GET", tc.srv.URL+"/", nil)
	for _, ck := range rec.Result().Cookies() {
		req.AddCookie(ck)
	}
	v := tc.c.lookup(req)
	if v == nil {
		t.Fatalf("signIn %s: no viewer", user)
	}
	return cl, v.CSRF
}
