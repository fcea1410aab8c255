package cli

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/internal/optest"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/policy"
)

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	return port
}

// TestServeHTTPListenerAndSignIn runs `warden serve` as it is built from
// a policy with http_listen, http_public_url and identity.oidc: /healthz
// and /readyz answer, `ssh gw login` prints a link under http_public_url,
// the sign-in completes against a real OP, and the listener stops with
// serve.
func TestServeHTTPListenerAndSignIn(t *testing.T) {
	dir := t.TempDir()
	port := freePort(t)
	public := "http://localhost:" + port
	op := optest.Start(t, public+"/oidc/callback", optest.User{Username: "dana", Password: "pw"})
	if err := os.WriteFile(filepath.Join(dir, "oidc-secret"), []byte(op.ClientSecret), 0o600); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "laptop"), 0o700)
	laptop := sshtest.NewClient(t, filepath.Join(dir, "laptop"))
	cfgPath := filepath.Join(dir, "warden.yaml")
	os.WriteFile(cfgPath, []byte(fmt.Sprintf(`listen: "127.0.0.1:0"
data_dir: data
http_listen: "127.0.0.1:%s"
http_public_url: "%s/"
identity:
  oidc:
    issuer: %s
    client_id: %s
    client_secret_file: oidc-secret
    key_ttl: 2h
groups:
  - name: ops
users:
  - name: dana
    groups: [ops]
`, port, public, op.Issuer, op.ClientID)), 0o600)
	cfg, err := policy.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := openGateway(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.serve(ctx, ln) }()

	base := "http://127.0.0.1:" + port
	var body string
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			body = string(b)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("healthz: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if body != "ok\n" {
		t.Fatalf("healthz: %q", body)
	}
	resp, err := http.Get(base + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "ready\n" {
		t.Fatalf("readyz: %d %q", resp.StatusCode, b)
	}

	hostKey, err := os.ReadFile(cfg.HostKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	laptop.TrustHost(ln.Addr().String(), signer.PublicKey())
	_, sshPort, _ := net.SplitHostPort(ln.Addr().String())
	// The console's sign-in page names the real gateway, not PORT and
	// GATEWAY placeholders.
	if resp, err := http.Get(base + "/signin"); err != nil {
		t.Fatal(err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if want := "<pre data-warden-ssh>ssh -p " + sshPort + " 127.0.0.1 console</pre>"; !strings.Contains(string(b), want) {
			t.Fatalf("/signin does not say %q:\n%s", want, b)
		}
	}
	cmd := laptop.SSH(ctx, sshPort, "gw", "login")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(out)
	var link, code string
	linkRe := regexp.MustCompile(`^    (\S+)$`)
	codeRe := regexp.MustCompile(`code there:  (\S+)$`)
	for sc.Scan() && (link == "" || code == "") {
		if m := linkRe.FindStringSubmatch(sc.Text()); m != nil {
			link = m[1]
		}
		if m := codeRe.FindStringSubmatch(sc.Text()); m != nil {
			code = m[1]
		}
	}
	if !strings.HasPrefix(link, public+"/oidc/start?id=") || code == "" {
		t.Fatalf("link %q code %q: want a link under http_public_url", link, code)
	}
	br := optest.NewBrowser(t)
	start := br.Get(link)
	h := start.Hidden()
	h.Set("code", code)
	final := br.LogIn(br.Post(public+"/oidc/start", h), "dana", "pw")
	if !strings.Contains(final.Body, "Signed in as dana") {
		t.Fatalf("callback: %s", final)
	}
	rest, _ := io.ReadAll(io.MultiReader(strings.NewReader(sc.Text()+"\n"), out))
	if err := cmd.Wait(); err != nil || !strings.Contains(string(rest), "signed in as dana until ") {
		t.Fatalf("login: %v %q", err, rest)
	}

	// The console, as serve wires it: the bound key's `ssh gw console`
	// prints a link under http_public_url that signs dana in, and so does
	// the console's IdP button.
	cout, err := laptop.SSH(ctx, sshPort, "gw", "console").Output()
	clink := regexp.MustCompile(`(?m)^    (\S+/signin/link\?token=\S+)$`).FindStringSubmatch(string(cout))
	if err != nil || clink == nil || !strings.HasPrefix(clink[1], public+"/signin/link?token=") {
		t.Fatalf("ssh gw console: %v %q", err, cout)
	}
	if who := demoConsoleSignIn(t, clink[1]); who != "dana" {
		t.Fatalf("console link signed in %q", who)
	}
	br2 := optest.NewBrowser(t)
	if final := br2.LogIn(br2.Post(public+"/signin/oidc", nil), "dana", "pw"); !strings.Contains(final.Body, "Signed in as dana") {
		t.Fatalf("console IdP sign-in: %s", final)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
	if _, err := http.Get(base + "/healthz"); err == nil {
		t.Fatal("HTTP listener still answers after serve returned")
	}
}

// warden serve with identity.oidc.create_users and no directory opens the
// identity store and hands it to sign-in: a created user is in the
// gateway's policy with source oidc and the policy groups of the claim.
func TestServeWiresCreateUsers(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "oidc-secret"), []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "warden.yaml")
	os.WriteFile(cfgPath, []byte(`listen: "127.0.0.1:0"
data_dir: data
http_listen: "127.0.0.1:0"
identity:
  oidc: {issuer: "https://idp.example.com", client_id: w, client_secret_file: oidc-secret, create_users: true}
groups: [{name: ops}]
users: [{name: dana, groups: [ops]}]
`), 0o600)
	cfg, err := policy.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := openGateway(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if r.dir == nil || r.sso == nil {
		t.Fatal("create_users did not open the identity store and sign-in")
	}
	c := signInCreator{r}
	name, in, ignored, err := c.CreateSignInUser(ctx, "zoe", []string{"ops", "Finance"})
	if err != nil || name != "zoe" || strings.Join(in, ",") != "ops" || strings.Join(ignored, ",") != "Finance" {
		t.Fatalf("create: %q %v %v %v", name, in, ignored, err)
	}
	u := r.srv.Policy().User("zoe")
	if u == nil || u.SourceOf() != "oidc" || strings.Join(u.Groups, ",") != "ops" || !c.CreatedBySignIn("zoe") || c.CreatedBySignIn("dana") {
		t.Fatalf("zoe in the gateway's policy: %+v", u)
	}
	if _, _, _, err := c.CreateSignInUser(ctx, "DANA", nil); err == nil {
		t.Fatal("created a user under a YAML user's name")
	}
}
