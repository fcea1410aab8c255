package console

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/exceptions"
	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/internal/browsertest"
	"github.com/warden-gw/warden/internal/keyfile"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/jit"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/vault"
	"github.com/warden-gw/warden/web"
)

// decideBed is a real gateway in front of a real sshd, its console on a
// real web.Server (the production CSP included), and OpenSSH clients:
//
//	bob    helpdesk     may request prod-root (acme) and globex-root
//	carol  security     approves prod-root: acme
//	gus    globex-sec   approves globex-root: globex
//
// Browsers sign in through /test-signin?user=U, a route only this test
// mounts, which starts a console session as the sign-in would.
type decideBed struct {
	t       *testing.T
	data    string
	gw      *gateway.Server
	store   *audit.Store
	jit     *jit.Service
	console *Console
	port    string // the gateway's SSH port
	url     string // the console's base URL
	clients map[string]*sshtest.Client
}

func newDecideBed(t *testing.T) *decideBed {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	b := &decideBed{t: t, data: filepath.Join(dir, "data"), clients: map[string]*sshtest.Client{}}
	if err := os.MkdirAll(b.data, 0o700); err != nil {
		t.Fatal(err)
	}
	ca, err := vault.OpenBuiltin(b.data, vault.BuiltinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := ca.CAPublicKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	host := sshtest.StartHost(t, sshtest.HostOptions{TrustedUserCAKeys: []gossh.PublicKey{caKey}})
	keyOf := map[string]string{}
	for _, u := range []string{"bob", "carol", "gus"} {
		if err := os.MkdirAll(filepath.Join(dir, u), 0o700); err != nil {
			t.Fatal(err)
		}
		c := sshtest.NewClient(t, filepath.Join(dir, u))
		b.clients[u] = c
		keyOf[u] = strings.TrimSpace(string(gossh.MarshalAuthorizedKey(c.PublicKey)))
	}
	hostKey := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(host.HostKey)))
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
host_key: %s
data_dir: %s
credentials: {backend: builtin, cert_ttl: 2m}
tenants:
  - name: acme
    hosts: [{name: web01, address: %q, host_key: %q, labels: {env: prod}}]
  - name: globex
    hosts: [{name: app01, address: %q, host_key: %q}]
groups:
  - name: helpdesk
  - name: security
  - name: globex-sec
users:
  - {name: bob, keys: [%q], groups: [helpdesk]}
  - {name: carol, keys: [%q], groups: [security]}
  - {name: gus, keys: [%q], groups: [globex-sec]}
roles:
  - {name: prod-root, tenant: acme, hosts: {labels: {env: prod}}, logins: [root], privileged: true, eligible: [helpdesk], approvers: [security], max_duration: 2h}
  - {name: globex-root, tenant: globex, hosts: {names: [app01]}, logins: [root], privileged: true, eligible: [helpdesk], approvers: [globex-sec]}
`, filepath.Join(dir, "gw_host_ed25519"), b.data, host.Addr, hostKey, host.Addr, hostKey, keyOf["bob"], keyOf["carol"], keyOf["gus"])
	cfgPath := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := policy.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	if b.store, err = audit.Open(ctx, b.data, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	hk, _, err := keyfile.LoadOrCreateEd25519(cfg.HostKey)
	if err != nil {
		t.Fatal(err)
	}
	if b.jit, err = jit.New(jit.Options{Store: b.store, Policy: func() *policy.Config { return cfg }}); err != nil {
		t.Fatal(err)
	}
	b.gw, err = gateway.New(gateway.Options{Policy: cfg, Store: b.store, Signer: ca, HostKey: hk, DialTimeout: 5 * time.Second,
		JIT: b.jit, Exceptions: &exceptions.Register{Store: b.store, DB: b.store.DB()}})
	if err != nil {
		t.Fatal(err)
	}
	b.jit.OnGrantEnd(b.gw.GrantEnded)
	if b.console, err = New(Deps{Store: b.store, DataDir: b.data, Policy: b.gw.Policy, Commands: b.gw}); err != nil {
		t.Fatal(err)
	}
	ws := web.New(web.Options{Listen: "127.0.0.1:0"})
	b.console.Mount(ws)
	ws.Handle("GET /test-signin", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := b.console.startSession(w, r.URL.Query().Get("user")); err != nil {
			http.Error(w, err.Error(), 500)
			return
		}
		http.Redirect(w, r, "/requests", http.StatusSeeOther)
	}))

	sshLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, b.port, _ = net.SplitHostPort(sshLn.Addr().String())
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b.url = "http://" + httpLn.Addr().String()
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 3)
	go func() { done <- b.gw.Serve(sctx, sshLn) }()
	go func() { b.jit.Run(sctx); done <- nil }()
	go func() { done <- ws.Serve(sctx, httpLn) }()
	t.Cleanup(func() {
		cancel()
		for range 3 {
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		}
		b.store.Close()
	})
	for _, c := range b.clients {
		c.TrustHost(sshLn.Addr().String(), hk.PublicKey())
	}
	return b
}

// ssh runs a real ssh as user and returns stdout, stderr and exit status.
func (b *decideBed) ssh(user, target string, args ...string) (string, string, int) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := b.clients[user].SSH(ctx, b.port, target, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return out.String(), errb.String(), 0
	case errors.As(err, &ee):
		return out.String(), errb.String(), ee.ExitCode()
	}
	b.t.Fatalf("ssh: %v", err)
	return "", "", 0
}

// request has bob ask for role over real ssh and returns the request ID.
func (b *decideBed) request(role string) string {
	b.t.Helper()
	out, errOut, code := b.ssh("bob", "gw", "request", role, "--for", "30m", "--reason", "'INC-77 disk full'", "--ticket", "INC-77")
	m := regexp.MustCompile(`^request (\d+) opened`).FindStringSubmatch(out)
	if code != 0 || m == nil {
		b.t.Fatalf("request %s: %d %q %q", role, code, out, errOut)
	}
	return m[1]
}

// browser starts a real Chromium signed in as user.
func (b *decideBed) browser(user string) context.Context {
	b.t.Helper()
	ctx := browsertest.New(b.t)
	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.Navigate(b.url+"/test-signin?user="+user), chromedp.WaitVisible("h1")); err != nil {
		b.t.Fatalf("sign in %s: %v", user, err)
	}
	return ctx
}

// eval runs js in the page and returns its value.
func eval[T any](t *testing.T, ctx context.Context, js string) T {
	t.Helper()
	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	v, err := chromedp.Run(sctx, chromedp.Evaluate[T](js, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("eval %s: %v", js, err)
	}
	return v
}

// text is the text of the first element sel matches.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Text(sel))
	if err != nil {
		t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

// postFrom POSTs to path from the page with fetch, with the page's CSRF
// token when csrf is set, and returns "STATUS first-refusal-line".
func postFrom(t *testing.T, ctx context.Context, path, body string, csrf bool) string {
	t.Helper()
	hdr := `{"Content-Type": "application/x-www-form-urlencoded"}`
	if csrf {
		hdr = `{"Content-Type": "application/x-www-form-urlencoded", "X-CSRF-Token": window.warden.csrf()}`
	}
	return eval[string](t, ctx, fmt.Sprintf(`fetch(%q, {method: "POST", headers: %s, body: %q}).then(r => r.text().then(x => {
		const m = new DOMParser().parseFromString(x, "text/html").querySelector("[data-warden-result], [data-warden-error]");
		return r.status + " " + (m ? m.textContent.trim() : x.trim());
	}))`, path, hdr, body))
}

func (b *decideBed) state(id string) string {
	b.t.Helper()
	var s string
	if err := b.store.DB().QueryRow(`SELECT state FROM requests WHERE id = ?`, id).Scan(&s); err != nil {
		b.t.Fatal(err)
	}
	return s
}

// TestApproveInTheBrowserThenLogInOverSSH: bob asks over real ssh, carol
// approves by clicking the approve button in real Chromium, bob logs in to
// the managed host under the new grant over real ssh, and the page names
// carol as the approver.
func TestApproveInTheBrowserThenLogInOverSSH(t *testing.T) {
	b := newDecideBed(t)
	id := b.request("prod-root")
	if _, errOut, code := b.ssh("bob", "root@web01", "true"); code != 1 || !strings.Contains(errOut, "no active grant") {
		t.Fatalf("before approval: %d %q", code, errOut)
	}

	ctx := b.browser("carol")
	sctx, cancel := browsertest.Step(ctx, 0)
	defer cancel()
	btn := `button[data-warden-approve="` + id + `"]`
	if err := chromedp.Do(sctx, chromedp.Navigate(b.url+"/requests"), chromedp.WaitVisible(btn)); err != nil {
		t.Fatal(err)
	}
	card := text(t, sctx, `section[data-warden-request="`+id+`"]`)
	for _, want := range []string{"bob", "prod-root", "acme", "INC-77 disk full", "30m00s"} {
		if !strings.Contains(card, want) {
			t.Errorf("request card lacks %q: %s", want, card)
		}
	}
	if err := chromedp.Do(sctx,
		chromedp.SendKeys(`section[data-warden-request="`+id+`"] input[name="comment"]`, "ok, go ahead"),
		chromedp.Click(btn),
		chromedp.WaitVisible(`[data-warden-result="ok"]`)); err != nil {
		t.Fatal(err)
	}
	result := text(t, sctx, `[data-warden-result]`)
	if !regexp.MustCompile(`^request ` + id + ` approved: grant \d+ for bob on prod-root until `).MatchString(result) {
		t.Fatalf("result %q", result)
	}
	if approver := text(t, sctx, `tr[data-warden-request="`+id+`"] [data-warden-approver]`); approver != "carol" {
		t.Fatalf("decision shows %q", approver)
	}
	out, errOut, code := b.ssh("bob", "root@web01", "echo", "granted")
	if code != 0 || out != "granted\n" {
		t.Fatalf("bob under the grant: %d %q %q", code, out, errOut)
	}
	var decided, comment string
	if err := b.store.DB().QueryRow(`SELECT approver, comment FROM approvals WHERE request_id = ?`, id).Scan(&decided, &comment); err != nil ||
		decided != "carol" || comment != "ok, go ahead" {
		t.Fatalf("approvals row %q %q %v", decided, comment, err)
	}

	// bob's grant, with time left, on his own /grants page.
	bctx := b.browser("bob")
	bs, bcancel := browsertest.Step(bctx, 0)
	defer bcancel()
	if err := chromedp.Do(bs, chromedp.Navigate(b.url+"/grants"), chromedp.WaitVisible(`[data-warden-left]`)); err != nil {
		t.Fatal(err)
	}
	if left := text(t, bs, `[data-warden-left]`); !regexp.MustCompile(`^(29|30)m\d\ds$`).MatchString(left) {
		t.Fatalf("time left %q", left)
	}
}

// TestBrowserCannotGetAroundTheApproveRules: another tenant's approver sees
// nothing of acme and cannot approve its request by ID (the same answer as
// an unknown ID, audited); the requester cannot approve their own request;
// an approval without the CSRF token is refused and changes nothing.
func TestBrowserCannotGetAroundTheApproveRules(t *testing.T) {
	b := newDecideBed(t)
	id := b.request("prod-root")
	gid := b.request("globex-root")
	if _, errOut, code := b.ssh("carol", "gw", "exception", "add", "--tenant", "acme", "--owner", "carol", "--reason", "'legacy box'",
		"--controls", "'extra review'", "--expires", time.Now().AddDate(0, 1, 0).Format("2006-01-02")); code != 0 {
		t.Fatalf("exception add: %q", errOut)
	}

	gus := b.browser("gus")
	for _, page := range []string{"/requests", "/grants", "/exceptions?show=all", "/evidence"} {
		text := eval[string](t, gus, fmt.Sprintf(`fetch(%q).then(r => r.text())`, page))
		if strings.Contains(text, "prod-root") || strings.Contains(text, "acme") || strings.Contains(text, `data-warden-request="`+id+`"`) {
			t.Errorf("gus sees acme on %s", page)
		}
	}
	sctx, cancel := browsertest.Step(gus, 0)
	defer cancel()
	if err := chromedp.Do(sctx, chromedp.Navigate(b.url+"/requests"), chromedp.WaitVisible(`button[data-warden-approve="`+gid+`"]`)); err != nil {
		t.Fatalf("gus's own tenant's request: %v", err)
	}
	foreign := postFrom(t, gus, "/requests/"+id+"/approve", "", true)
	unknown := postFrom(t, gus, "/requests/999/approve", "", true)
	if foreign != "403 warden: no request "+id+" that you can act on" || unknown != "403 warden: no request 999 that you can act on" {
		t.Fatalf("foreign %q, unknown %q", foreign, unknown)
	}
	if got := postFrom(t, gus, "/requests/"+id+"/deny", "reason=mine+now", true); got != "403 warden: no request "+id+" that you can act on" {
		t.Fatalf("foreign deny %q", got)
	}
	if b.state(id) != "pending" {
		t.Fatalf("acme request %s", b.state(id))
	}
	refused := 0
	evs, err := b.store.Events(context.Background(), 0, 10000)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.Type == "command.refused" && e.Actor == "gus" && e.Data["via"] == "console" && e.Subject == "approve "+id {
			refused++
		}
	}
	if refused != 1 {
		t.Fatalf("gus's attempt audited %d times", refused)
	}

	bob := b.browser("bob")
	if n := eval[int](t, bob, `fetch("/requests").then(r => r.text()).then(x => new DOMParser().parseFromString(x, "text/html").querySelectorAll("[data-warden-approve]").length)`); n != 0 {
		t.Fatalf("bob is offered %d approve buttons", n)
	}
	if got := postFrom(t, bob, "/requests/"+id+"/approve", "", true); got != "403 warden: you cannot approve your own request" {
		t.Fatalf("own approval %q", got)
	}

	carol := b.browser("carol")
	if got := postFrom(t, carol, "/requests/"+id+"/approve", "", false); !strings.HasPrefix(got, "403 missing or wrong CSRF token") {
		t.Fatalf("without CSRF %q", got)
	}
	if b.state(id) != "pending" {
		t.Fatalf("after refused approvals: %s", b.state(id))
	}
	// carol sees acme's exception and request, and nothing of globex.
	ex := eval[string](t, carol, `fetch("/exceptions").then(r => r.text())`)
	if !strings.Contains(ex, "legacy box") {
		t.Fatalf("carol's exceptions:\n%s", ex)
	}
	rq := eval[string](t, carol, `fetch("/requests").then(r => r.text())`)
	if strings.Contains(rq, "globex") {
		t.Fatal("carol sees globex")
	}
}
