package gateway_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/console"
	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/internal/browsertest"
	"github.com/warden-gw/warden/internal/optest"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/sso"
	"github.com/warden-gw/warden/web"
)

// The console's end-to-end harness: the testbed's gateway (real sshd, real
// OpenSSH clients) with the browser console served by a real web.Server on
// the same store and policy, as `warden serve` wires them. A test signs a
// user in for real: `ssh GATEWAY console` with that user's OpenSSH client,
// then the printed link opened in headless Chromium (signInBrowser) or an
// http.Client with a cookie jar (signInHTTP).

// consoleBed is a testbed with the browser console.
type consoleBed struct {
	*testbed
	web     *web.Server
	console *console.Console
	URL     string        // the console's base URL, e.g. http://127.0.0.1:PORT
	clock   *consoleClock // the console's clock (links, idle timeout)
	roots   *x509.CertPool
	gwp     atomic.Pointer[gateway.Server]
	op      *optest.OP   // with consoleOptions.idp
	sso     *sso.Service // with consoleOptions.idp
	// logs holds what the gateway, the console and the web server logged
	// (shown when the test fails), so tests can check what never appears.
	logs *syncBuffer
}

// syncBuffer is a log sink safe for concurrent writers (the gateway's
// own tests define it; export_test.go lends it here).
type syncBuffer = gateway.SyncBuffer

// consoleOptions changes the consoleBed.
type consoleOptions struct {
	bed bedOptions // the testbed's options (its configure runs first)
	tls bool       // serve the console over https with a test certificate
	// deps adjusts the console's dependencies before console.New (for
	// example OIDC); the gateway's options are set by then.
	deps func(cb *consoleBed, o *gateway.Options, d *console.Deps)
	// idp, when set, starts a real OpenID Provider (testdata/testop) with
	// these users and configures identity.oidc: `ssh gw login` and the
	// console's "Sign in with" button, on the console's listener.
	idp []optest.User
}

// consoleClock is real time plus an offset a test may advance, so that
// expiry and idle tests need not wait.
type consoleClock struct{ off atomic.Int64 }

func (c *consoleClock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *consoleClock) Advance(d time.Duration) { c.off.Add(int64(d)) }

func newConsoleBed(t testing.TB, opt consoleOptions) *consoleBed {
	t.Helper()
	cb := &consoleBed{clock: &consoleClock{}, logs: &syncBuffer{}}
	logger := slog.New(slog.NewTextHandler(cb.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("logs:\n%s", cb.logs.String())
		}
	})
	bo := opt.bed
	inner := bo.configure
	bo.configure = func(b *testbed, o *gateway.Options) {
		if inner != nil {
			inner(b, o)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		o.Logger = logger
		wopt := web.Options{Listen: ln.Addr().String(), Logger: logger}
		if opt.tls {
			wopt.CertFile, wopt.KeyFile, cb.roots = testCert(t, b.dir)
		}
		cb.web = web.New(wopt)
		if len(opt.idp) > 0 {
			cb.startIdP(t, b, o, ln, opt)
		}
		d := console.Deps{Store: b.store, DataDir: b.data, Secure: opt.tls, BaseURL: cb.web.BaseURL, Now: cb.clock.Now, Logger: logger,
			Policy: func() *policy.Config {
				if gw := cb.gwp.Load(); gw != nil {
					return gw.Policy() // merged with directory users, as the gateway sees them
				}
				return b.cfg
			},
			Commands: gatewayCommands{cb}}
		if so, ok := any(o.SignOn).(console.SignOn); ok {
			d.SignOn = so
		}
		if cb.sso != nil {
			d.OIDC = cb.sso
		}
		if opt.deps != nil {
			opt.deps(cb, o, &d)
		}
		cb.console, err = console.New(d)
		if err != nil {
			t.Fatal(err)
		}
		cb.console.Mount(cb.web)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- cb.web.Serve(ctx, ln) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("web: %v", err)
			}
		})
		for i := 0; cb.web.BaseURL("") == "" && i < 1000; i++ {
			time.Sleep(time.Millisecond)
		}
		cb.URL = cb.web.BaseURL("")
		o.ConsoleLinks = cb.console
	}
	cb.testbed = newTestbed(t, bo)
	cb.gwp.Store(cb.gw)
	return cb
}

// startIdP starts the test OP, whose redirect URI is the listener's
// /oidc/callback, and single sign-on against it, as `warden serve` does
// with identity.oidc.
func (cb *consoleBed) startIdP(t testing.TB, b *testbed, o *gateway.Options, ln net.Listener, opt consoleOptions) {
	scheme := "http"
	if opt.tls {
		scheme = "https"
	}
	cb.op = optest.Start(t, scheme+"://"+ln.Addr().String()+"/oidc/callback", opt.idp...)
	secret := filepath.Join(b.dir, "oidc-secret")
	if err := os.WriteFile(secret, []byte(cb.op.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	svc, err := sso.New(sso.Options{Store: b.store, BaseURL: cb.web.BaseURL, Logger: o.Logger,
		Users: sso.PolicyUsers(func() *policy.Config {
			if gw := cb.gwp.Load(); gw != nil {
				return gw.Policy()
			}
			return b.cfg
		}),
		OIDC: &policy.OIDC{Issuer: cb.op.Issuer, ClientID: cb.op.ClientID, ClientSecretFile: secret,
			UsernameClaim: "preferred_username", GroupsClaim: "groups", KeyTTL: policy.Duration(12 * time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	svc.Mount(cb.web)
	cb.sso, o.SignOn = svc, svc
}

// gatewayCommands runs the SSH command interface for the console through
// the gateway, once the gateway offers it (gateway.Server.RunCommand);
// until then every command is refused.
type gatewayCommands struct{ cb *consoleBed }

func (g gatewayCommands) RunCommand(ctx context.Context, user string, args []string) ([]byte, error) {
	if rc, ok := any(g.cb.gwp.Load()).(console.Commands); ok {
		return rc.RunCommand(ctx, user, args)
	}
	return nil, errors.New("warden: this gateway cannot run commands for the console")
}

// testCert writes a self-signed certificate for 127.0.0.1 and returns its
// files and a pool that trusts it.
func testCert(t testing.TB, dir string) (certFile, keyFile string, roots *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "warden test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "http.crt"), filepath.Join(dir, "http.key")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	roots = x509.NewCertPool()
	roots.AddCert(cert)
	return certFile, keyFile, roots
}

var consoleLinkRe = regexp.MustCompile(`(?m)^    (https?://\S+/signin/link\?token=\S+)$`)

// consoleLink runs the real `ssh GATEWAY console` as c and returns the
// link it printed.
func (cb *consoleBed) consoleLink(c *sshtest.Client) string {
	cb.t.Helper()
	out, errOut, code := cb.run(c, "gw", "console")
	if code != 0 {
		cb.t.Fatalf("ssh gw console: exit %d, stderr %q", code, errOut)
	}
	m := consoleLinkRe.FindStringSubmatch(out)
	if m == nil {
		cb.t.Fatalf("ssh gw console printed no link: %q", out)
	}
	return m[1]
}

// client returns an HTTP client with its own cookie jar that trusts the
// test certificate and does not follow redirects, so tests see each
// answer.
func (cb *consoleBed) client() *http.Client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		cb.t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: cb.roots}}
	cb.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Jar: jar, Transport: tr, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get fetches path (or a full URL) with cl and returns the status and body.
func (cb *consoleBed) get(cl *http.Client, path string) (int, string) {
	cb.t.Helper()
	u := path
	if strings.HasPrefix(path, "/") {
		u = cb.URL + path
	}
	resp, err := cl.Get(u)
	if err != nil {
		cb.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// post sends form to path with cl and returns the response (body read).
func (cb *consoleBed) post(cl *http.Client, path string, form url.Values) (*http.Response, string) {
	cb.t.Helper()
	resp, err := cl.PostForm(cb.URL+path, form)
	if err != nil {
		cb.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp, string(body)
}

var (
	hiddenRe = regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`)
	csrfRe   = regexp.MustCompile(`<meta name="warden-csrf" content="([^"]+)">`)
)

// formValues returns the hidden fields of the first form in page.
func formValues(page string) url.Values {
	v := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(page, -1) {
		if _, seen := v[m[1]]; !seen {
			v.Set(m[1], html.UnescapeString(m[2]))
		}
	}
	return v
}

// openLink opens a console link with cl as a person would: the confirm
// page, then its form. It returns the answer to the form.
func (cb *consoleBed) openLink(cl *http.Client, link string) (*http.Response, string) {
	cb.t.Helper()
	code, page := cb.get(cl, link)
	if code != http.StatusOK {
		return &http.Response{StatusCode: code}, page
	}
	return cb.post(cl, "/signin/link", formValues(page))
}

// signInHTTP signs c's user in through a real `ssh GATEWAY console` and
// its link, with a new cookie-jar client, and returns the client and the
// session's CSRF token.
func (cb *consoleBed) signInHTTP(c *sshtest.Client) (*http.Client, string) {
	cb.t.Helper()
	cl := cb.client()
	resp, body := cb.openLink(cl, cb.consoleLink(c))
	if resp.StatusCode != http.StatusSeeOther {
		cb.t.Fatalf("sign-in: status %d: %s", resp.StatusCode, body)
	}
	return cl, cb.csrf(cl)
}

// csrf reads the session's CSRF token from a console page.
func (cb *consoleBed) csrf(cl *http.Client) string {
	cb.t.Helper()
	code, page := cb.get(cl, "/account")
	m := csrfRe.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		cb.t.Fatalf("/account: status %d, no CSRF token: %.300s", code, page)
	}
	return html.UnescapeString(m[1])
}

// browser starts a headless Chromium for the test.
func (cb *consoleBed) browser() context.Context { return browsertest.New(cb.t) }

// signInBrowser signs c's user in within the browser ctx: `ssh GATEWAY
// console` prints a link, the browser opens it, confirms, and lands on
// the console (checked on /account, which marks this browser's session).
func (cb *consoleBed) signInBrowser(ctx context.Context, c *sshtest.Client) {
	cb.t.Helper()
	cb.openLinkBrowser(ctx, cb.consoleLink(c))
	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.Navigate(cb.URL+"/account"), chromedp.WaitVisible(`[data-warden-current]`)); err != nil {
		cb.t.Fatalf("after sign-in, /account shows no current session: %v", err)
	}
}

// openLinkBrowser opens link in the browser ctx and presses the confirm
// button, then waits for the next page.
func (cb *consoleBed) openLinkBrowser(ctx context.Context, link string) {
	cb.t.Helper()
	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.Navigate(link), chromedp.WaitVisible(`[data-warden-confirm]`),
		chromedp.Click(`[data-warden-confirm]`), chromedp.WaitNotPresent(`[data-warden-confirm]`)); err != nil {
		cb.t.Fatalf("open console link: %v", err)
	}
}

// withoutUser returns the testbed's policy with user name's entry removed
// (a leaver), for gateway.SetPolicy.
func (cb *consoleBed) withoutUser(name string) *policy.Config {
	cb.t.Helper()
	raw, err := os.ReadFile(filepath.Join(cb.dir, "warden.yaml"))
	if err != nil {
		cb.t.Fatal(err)
	}
	re := regexp.MustCompile(`(?m)^  - name: ` + regexp.QuoteMeta(name) + `\n    keys: .*\n    groups: .*\n`)
	src := re.ReplaceAllString(string(raw), "")
	if src == string(raw) {
		cb.t.Fatalf("user %s not found in the policy", name)
	}
	path := filepath.Join(cb.dir, "warden-without-"+name+".yaml")
	if err := os.WriteFile(path, []byte(src), 0o600); err != nil {
		cb.t.Fatal(err)
	}
	cfg, err := policy.Load(path)
	if err != nil {
		cb.t.Fatal(err)
	}
	return cfg
}

// authorizedFingerprint is the SHA-256 fingerprint of c's key.
func authorizedFingerprint(c *sshtest.Client) string { return gossh.FingerprintSHA256(c.PublicKey) }

// flatten renders an event's data values for substring checks.
func flatten(m map[string]any) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+fmt.Sprint(v))
	}
	return out
}

// browserCookies returns the browser's cookies for urls, with all their
// attributes (HttpOnly, SameSite, Secure), as Chromium stored them.
func browserCookies(ctx context.Context, urls ...string) ([]*network.Cookie, error) {
	return chromedp.Run(ctx, chromedp.Action[[]*network.Cookie](func(ctx context.Context, t *chromedp.Target) ([]*network.Cookie, error) {
		res, err := cdp.Call(ctx, t, network.GetCookies, network.GetCookiesParams{URLs: urls})
		return res.Cookies, err
	}))
}

// signInIdP signs in within the browser ctx through the console's "Sign in
// with" button and the test OP's login form, as username, and waits for
// the page the callback answers with.
func (cb *consoleBed) signInIdP(ctx context.Context, username, password string) {
	cb.t.Helper()
	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.Navigate(cb.URL+"/signin"), chromedp.WaitVisible(`[data-warden-oidc]`),
		chromedp.Click(`[data-warden-oidc]`), chromedp.WaitVisible(`#username`),
		chromedp.SendKeys(`#username`, username), chromedp.SendKeys(`#password`, password),
		chromedp.Submit(`#password`)); err != nil {
		cb.t.Fatalf("sign in through the IdP as %s: %v", username, err)
	}
	// Back on the console: a refusal page at the callback, or past the
	// callback's "signed in" page (it refreshes to the console at once).
	done := `location.origin === ` + strconv.Quote(cb.URL) + ` && document.readyState === "complete" &&
		(document.querySelector("[data-warden-error]") !== null || location.pathname !== "/oidc/callback")`
	for {
		if ok, err := chromedp.Run(sctx, chromedp.Evaluate[bool](done)); err == nil && ok {
			return
		}
		select {
		case <-sctx.Done():
			cb.t.Fatalf("sign in through the IdP as %s: the browser did not come back to the console", username)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
