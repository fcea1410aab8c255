package gateway_test

import (
	"bufio"
	"context"
	"errors"
	"html"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/internal/optest"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/sso"
	"github.com/warden-gw/warden/web"
)

// ssoBed is the testbed with single sign-on against a real OpenID
// Provider (testdata/testop): its users alice (a YAML user with a key of
// her own), dana (a YAML user without keys) and mallory (no Warden user).
type ssoBed struct {
	*testbed
	op  *optest.OP
	svc *sso.Service
}

func newSSOBed(t *testing.T) *ssoBed {
	t.Helper()
	sb := &ssoBed{}
	opt := bedOptions{extraUsers: "  - name: dana\n    groups: [sysadmins]\n"}
	withSSO(t, &opt, sb,
		optest.User{Username: "alice", Password: "alice-pw", Groups: []string{"sysadmins"}},
		optest.User{Username: "dana", Password: "dana-pw"},
		optest.User{Username: "mallory", Password: "mallory-pw"})
	sb.testbed = newTestbed(t, opt)
	return sb
}

// withSSO adds single sign-on against a real OpenID Provider with users
// to opt, filling sb's op and svc; the caller builds the testbed. Sign-in
// maps the IdP's name to a user of the gateway's policy: the YAML file
// merged with the directory users, as warden serve does.
func withSSO(t *testing.T, opt *bedOptions, sb *ssoBed, users ...optest.User) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	op := optest.Start(t, "http://"+ln.Addr().String()+"/oidc/callback", users...)
	sb.op = op
	opt.configure = func(b *testbed, o *gateway.Options) {
		secret := filepath.Join(b.dir, "oidc-secret")
		if err := os.WriteFile(secret, []byte(op.ClientSecret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		w := web.New(web.Options{Listen: ln.Addr().String()})
		svc, err := sso.New(sso.Options{Store: b.store, BaseURL: w.BaseURL,
			Users: sso.PolicyUsers(func() *policy.Config {
				if b.gw != nil {
					return b.gw.Policy()
				}
				return b.cfg
			}),
			OIDC: &policy.OIDC{Issuer: op.Issuer, ClientID: op.ClientID, ClientSecretFile: secret,
				UsernameClaim: "preferred_username", GroupsClaim: "groups", KeyTTL: policy.Duration(12 * time.Hour)}})
		if err != nil {
			t.Fatal(err)
		}
		svc.Mount(w)
		serveWeb(t, w, ln)
		o.SignOn, sb.svc = svc, svc
	}
}

// serveWeb serves w on ln until the test ends, and returns once w knows
// its base URL.
func serveWeb(t *testing.T, w *web.Server, ln net.Listener) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("web: %v", err)
		}
	})
	for i := 0; w.BaseURL("") == "" && i < 1000; i++ {
		time.Sleep(time.Millisecond)
	}
}

// pendingLogin is a running `ssh gw login`.
type pendingLogin struct {
	cmd       *exec.Cmd
	url, code string
	mu        sync.Mutex
	stdout    strings.Builder
	stderr    strings.Builder
	done      chan error
}

var (
	linkRe = regexp.MustCompile(`(?m)^    (http://\S+/oidc/start\?id=\S+)$`)
	codeRe = regexp.MustCompile(`type this code there:  ([A-Z]{4}-[A-Z]{4})`)
)

// signIn binds c's key to user by single sign-on: `ssh GATEWAY login`,
// completed in a browser with the IdP's password, until the command has
// said so.
func (sb *ssoBed) signIn(t *testing.T, c *sshtest.Client, user, password string) {
	t.Helper()
	pl := sb.startLogin(c)
	br := optest.NewBrowser(t)
	if final := br.LogIn(confirm(t, br, pl.url, pl.code), user, password); !strings.Contains(final.Body, "Signed in as "+user) {
		t.Fatalf("sign-in as %s: %s", user, final)
	}
	if code, out, errOut := pl.wait(t); code != 0 || !strings.Contains(out, "signed in as "+user+" until ") {
		t.Fatalf("ssh login as %s: exit %d %q %q", user, code, out, errOut)
	}
}

// startLogin runs `ssh GATEWAY login` with c's key and waits for the link
// and code it prints.
func (sb *ssoBed) startLogin(c *sshtest.Client) *pendingLogin {
	t := sb.t
	t.Helper()
	pl := &pendingLogin{cmd: c.SSH(testCtx(t), sb.port, "me", "login"), done: make(chan error, 1)}
	pl.cmd.Stderr = &lockedWriter{mu: &pl.mu, b: &pl.stderr}
	out, err := pl.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := pl.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan struct{}, 64)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			pl.mu.Lock()
			pl.stdout.WriteString(sc.Text() + "\n")
			pl.mu.Unlock()
			select {
			case lines <- struct{}{}:
			default:
			}
		}
		close(lines)
		pl.done <- pl.cmd.Wait()
	}()
	deadline := time.After(30 * time.Second)
	for {
		pl.mu.Lock()
		so := pl.stdout.String()
		pl.mu.Unlock()
		if m, c := linkRe.FindStringSubmatch(so), codeRe.FindStringSubmatch(so); m != nil && c != nil {
			pl.url, pl.code = m[1], c[1]
			return pl
		}
		select {
		case _, ok := <-lines:
			if !ok {
				err := <-pl.done
				t.Fatalf("ssh login ended (%v) before printing a link: stdout %q stderr %q", err, so, pl.errText())
			}
		case <-deadline:
			t.Fatalf("no link printed: %q", so)
		}
	}
}

// wait returns the login's exit code, stdout and stderr.
func (pl *pendingLogin) wait(t *testing.T) (int, string, string) {
	t.Helper()
	select {
	case err := <-pl.done:
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("ssh login: %v", err)
		}
		pl.mu.Lock()
		defer pl.mu.Unlock()
		return code, pl.stdout.String(), pl.stderr.String()
	case <-time.After(60 * time.Second):
		t.Fatal("ssh login did not end")
	}
	return 0, "", ""
}

// outText is what ssh printed on stdout so far; the reader goroutine may
// still be appending, hence the lock.
func (pl *pendingLogin) outText() string {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.stdout.String()
}

func (pl *pendingLogin) errText() string {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return pl.stderr.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// confirm opens the link in br, types code and returns where the browser
// ended (the OP's login form, when all went well).
func confirm(t *testing.T, br *optest.Browser, link, code string) optest.Page {
	t.Helper()
	start := br.Get(link)
	if start.Status != 200 {
		t.Fatalf("start page: %s", start)
	}
	h := start.Hidden()
	h.Set("code", strings.ToLower(code)) // people type in any case
	action, _, _ := strings.Cut(link, "?")
	return br.Post(action, h)
}

// TestE2ESSOLoginBindsKey is the whole story through the real ssh client
// and a real OP: an unknown key signs in as alice, reaches a host as
// alice, shows in whoami, and logout ends it.
func TestE2ESSOLoginBindsKey(t *testing.T) {
	sb := newSSOBed(t)
	if _, _, code := sb.run(sb.stranger, "root@web01", "true"); code != 255 {
		t.Fatalf("unknown key reached a host before sign-in: exit %d", code)
	}
	pl := sb.startLogin(sb.stranger)
	if out := pl.outText(); !strings.Contains(out, gossh.FingerprintSHA256(sb.stranger.PublicKey)) {
		t.Errorf("login does not show the key: %q", out)
	}
	br := optest.NewBrowser(t)
	start := br.Get(pl.url)
	if !strings.Contains(html.UnescapeString(start.Body), gossh.FingerprintSHA256(sb.stranger.PublicKey)) || strings.Contains(start.Body, pl.code) {
		t.Fatalf("start page must show the fingerprint and must not show the code: %s", start)
	}
	login := confirm(t, br, pl.url, pl.code)
	final := br.LogIn(login, "alice", "alice-pw")
	if final.Status != 200 || !strings.Contains(final.Body, "Signed in as alice") {
		t.Fatalf("callback page: %s", final)
	}
	code, out, errOut := pl.wait(t)
	if code != 0 || !regexp.MustCompile(`(?m)^signed in as alice until \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`).MatchString(out) {
		t.Fatalf("login: exit %d stdout %q stderr %q", code, out, errOut)
	}
	sb.waitEvent(sso.EventBound, "alice")

	out, errOut, code = sb.run(sb.stranger, "root@web01", "whoami")
	if code != 0 || out != "root\n" {
		t.Fatalf("bound key on web01: exit %d out %q err %q", code, out, errOut)
	}
	if s := sb.lastSession("alice"); s.Host != "web01" {
		t.Errorf("session recorded as %+v, want alice on web01", s)
	}
	out, _, code = sb.run(sb.stranger, "me", "whoami")
	if code != 0 || !strings.Contains(out, "user:        alice") || !strings.Contains(out, "signed in:   "+gossh.FingerprintSHA256(sb.stranger.PublicKey)+" until ") {
		t.Fatalf("whoami: exit %d %q", code, out)
	}

	// Signing in again with the bound key (the login command of a known
	// user) renews it, here as someone else: the old binding is replaced.
	pl = sb.startLogin(sb.stranger)
	if final := br.LogIn(confirm(t, br, pl.url, pl.code), "dana", "dana-pw"); !strings.Contains(final.Body, "Signed in as dana") {
		t.Fatalf("second sign-in: %s", final)
	}
	if code, out, errOut := pl.wait(t); code != 0 || !strings.Contains(out, "signed in as dana until ") {
		t.Fatalf("second login: exit %d %q %q", code, out, errOut)
	}
	sb.waitEvent(sso.EventEnded, "replaced")
	if out, _, _ := sb.run(sb.stranger, "me", "whoami"); !strings.Contains(out, "user:        dana") {
		t.Fatalf("whoami after the second sign-in: %q", out)
	}
	// A policy key needs no sign-in.
	if _, errOut, code := sb.run(sb.alice, "me", "login"); code != 1 || !strings.Contains(errOut, "your key is in the policy as alice") {
		t.Errorf("policy key login: exit %d %q", code, errOut)
	}

	out, errOut, code = sb.run(sb.stranger, "me", "logout")
	if code != 0 || !strings.Contains(out, "signed out: key SHA256:") {
		t.Fatalf("logout: exit %d out %q err %q", code, out, errOut)
	}
	if _, _, code := sb.run(sb.stranger, "root@web01", "true"); code != 255 {
		t.Fatalf("key still reaches a host after logout: exit %d", code)
	}
	_, errOut, code = sb.run(sb.stranger, "me", "whoami")
	if code != 1 || !strings.Contains(errOut, "warden: this key is not known to Warden; sign in first") {
		t.Fatalf("whoami after logout: exit %d %q", code, errOut)
	}
	sb.waitEvent(sso.EventEnded, "logout")
	// alice's own policy key cannot log out or sign in: it needs neither.
	_, errOut, code = sb.run(sb.alice, "me", "logout")
	if code != 1 || !strings.Contains(errOut, "not signed in") {
		t.Errorf("policy key logout: exit %d %q", code, errOut)
	}
}

// TestE2ESSOUnmatchedUserRefused: an IdP user who is no Warden user gets
// one clear line, and nothing is bound.
func TestE2ESSOUnmatchedUserRefused(t *testing.T) {
	sb := newSSOBed(t)
	pl := sb.startLogin(sb.stranger)
	br := optest.NewBrowser(t)
	final := br.LogIn(confirm(t, br, pl.url, pl.code), "mallory", "mallory-pw")
	if final.Status != http.StatusForbidden || !strings.Contains(final.Body, "not a Warden user") {
		t.Fatalf("callback page: %s", final)
	}
	code, _, errOut := pl.wait(t)
	want := "warden: sign-in refused: mallory (from the identity provider) is not a Warden user; ask an administrator to add you\n"
	if code != 1 || errOut != want {
		t.Fatalf("exit %d stderr %q, want %q", code, errOut, want)
	}
	sb.waitEvent(sso.EventRefused, "no such user")
	var n int
	if err := sb.db().QueryRow(`SELECT count(*) FROM sso_bindings`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("bindings: %d (%v)", n, err)
	}
}

// callbackURL completes the IdP login in br but stops before the browser
// follows the IdP's redirect to Warden's callback, and returns that URL.
func callbackURL(t *testing.T, br *optest.Browser, login optest.Page, user, pw string) string {
	t.Helper()
	var cb string
	br.C.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if req.URL.Path == "/oidc/callback" {
			cb = req.URL.String()
			return http.ErrUseLastResponse
		}
		return nil
	}
	defer func() { br.C.CheckRedirect = nil }()
	br.LogIn(login, user, pw)
	if cb == "" {
		t.Fatal("the OP did not redirect to the callback")
	}
	return cb
}

// TestE2ESSOCallbackReplayRefused: the IdP's redirect works once; the same
// state and code again is refused and audited, and changes nothing.
func TestE2ESSOCallbackReplayRefused(t *testing.T) {
	sb := newSSOBed(t)
	pl := sb.startLogin(sb.stranger)
	br := optest.NewBrowser(t)
	cb := callbackURL(t, br, confirm(t, br, pl.url, pl.code), "dana", "dana-pw")
	if p := br.Get(cb); p.Status != 200 || !strings.Contains(p.Body, "Signed in as dana") {
		t.Fatalf("first callback: %s", p)
	}
	if code, out, _ := pl.wait(t); code != 0 || !strings.Contains(out, "signed in as dana until ") {
		t.Fatalf("login: exit %d %q", code, out)
	}
	if p := br.Get(cb); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "already used") {
		t.Fatalf("replayed callback: %s", p)
	}
	sb.waitEvent(sso.EventRefused, "state used twice")
	// A made-up state is refused too.
	u, _ := url.Parse(cb)
	q := u.Query()
	q.Set("state", "x"+q.Get("state"))
	u.RawQuery = q.Encode()
	if p := br.Get(u.String()); p.Status != http.StatusBadRequest {
		t.Fatalf("forged state: %s", p)
	}
	// The start link is single use as well.
	if p := br.Get(pl.url); p.Status != http.StatusNotFound {
		t.Fatalf("start link after use: %s", p)
	}
}

// TestE2ESSOConsentPhishingNeedsConfirm: mallory runs `ssh gw login` with
// her key and sends alice the link. Opening it does not take alice to the
// IdP; a form posted without the page's CSRF token, or with a wrong code,
// is refused. And when mallory confirms in her own browser and sends alice
// the IdP's sign-in page instead, alice's sign-in lands in a browser that
// did not confirm: refused, and nothing is bound to alice.
func TestE2ESSOConsentPhishingNeedsConfirm(t *testing.T) {
	sb := newSSOBed(t)
	pl := sb.startLogin(sb.stranger) // the stranger's key is mallory's
	victim := optest.NewBrowser(t)
	page := victim.Get(pl.url)
	link, _ := url.Parse(pl.url)
	if page.Status != 200 || page.URL.Host != link.Host || strings.Contains(page.Body, `name="password"`) {
		t.Fatalf("opening the link must only show Warden's confirm page: %s", page)
	}
	if !strings.Contains(html.UnescapeString(page.Body), gossh.FingerprintSHA256(sb.stranger.PublicKey)) || !strings.Contains(page.Body, "If someone sent you this link") {
		t.Errorf("confirm page does not show the key and the warning: %s", page)
	}
	action, _, _ := strings.Cut(pl.url, "?")
	id := page.Hidden().Get("id")
	// A cross-site form: no CSRF token (and no cookie in a fresh browser).
	if p := optest.NewBrowser(t).Post(action, url.Values{"id": {id}, "code": {pl.code}}); p.Status != http.StatusForbidden {
		t.Fatalf("post without CSRF: %s", p)
	}
	if p := victim.Post(action, url.Values{"id": {id}, "code": {pl.code}, "csrf": {"forged"}}); p.Status != http.StatusForbidden {
		t.Fatalf("post with a forged CSRF token: %s", p)
	}
	// The victim has no terminal, so no code: a guess is refused.
	h := page.Hidden()
	h.Set("code", "BBBB-BBBB")
	if p := victim.Post(action, h); p.Status != http.StatusForbidden || !strings.Contains(p.Body, "not right") {
		t.Fatalf("wrong code: %s", p)
	}

	// Mallory confirms herself and forwards the IdP's page.
	mallory := optest.NewBrowser(t)
	idpLogin := confirm(t, mallory, pl.url, pl.code)
	if !strings.Contains(idpLogin.Body, `name="password"`) {
		t.Fatalf("confirm did not lead to the IdP: %s", idpLogin)
	}
	forwarded := victim.Get(idpLogin.URL.String())
	final := victim.LogIn(forwarded, "alice", "alice-pw")
	if final.Status != http.StatusForbidden || !strings.Contains(final.Body, "confirmed in another browser") {
		t.Fatalf("callback in the victim's browser: %s", final)
	}
	code, out, errOut := pl.wait(t)
	if code != 1 || !strings.Contains(errOut, "warden: sign-in refused: the sign-in was completed in a browser other than the one that confirmed the code") {
		t.Fatalf("mallory's login: exit %d out %q err %q", code, out, errOut)
	}
	if _, _, code := sb.run(sb.stranger, "root@web01", "true"); code != 255 {
		t.Fatalf("mallory's key reaches a host: exit %d", code)
	}
	sb.waitEvent(sso.EventRefused, "another browser")
}
