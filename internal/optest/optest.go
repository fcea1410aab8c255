// Package optest starts testdata/testop, a real OpenID Provider
// (zitadel/oidc's op package) for the single sign-on tests, and plays the
// browser against it: an HTTP client with a cookie jar that follows
// redirects and posts the OP's login form.
package optest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// EnvBinary names the environment variable that overrides the binary path.
const EnvBinary = "WARDEN_TESTOP"

// User is one account of the OP.
type User struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	Groups   []string `json:"groups"`
}

// OP is a running testop.
type OP struct {
	Issuer       string
	ClientID     string
	ClientSecret string
}

// Binary returns $WARDEN_TESTOP or ~/.cache/warden/testop.
func Binary() (string, error) {
	if p := os.Getenv(EnvBinary); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(home, ".cache", "warden", "testop"), nil
}

// Start runs testop with users and one confidential client whose redirect
// URI is redirect, and stops it when the test ends. A missing binary
// fails the test with the command that builds it.
func Start(t testing.TB, redirect string, users ...User) *OP {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatalf("optest: %v", err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("optest: testop binary %s is missing (%v): run `make testop` (or set %s)", bin, err, EnvBinary)
	}
	dir := t.TempDir()
	raw, _ := json.Marshal(users)
	if err := os.WriteFile(filepath.Join(dir, "users.json"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	op := &OP{ClientID: "warden", ClientSecret: "test-secret-" + filepath.Base(dir)}
	cmd := exec.Command(bin, "-users", filepath.Join(dir, "users.json"), "-client-id", op.ClientID,
		"-client-secret", op.ClientSecret, "-redirect", redirect)
	cmd.Stderr = io.Discard
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("optest: start: %v", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		if s.Scan() {
			line <- s.Text()
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		var v struct{ Issuer string }
		if !ok || json.Unmarshal([]byte(l), &v) != nil || v.Issuer == "" {
			t.Fatalf("optest: testop printed %q", l)
		}
		op.Issuer = v.Issuer
	case <-time.After(30 * time.Second):
		t.Fatal("optest: testop did not start")
	}
	return op
}

// Browser is a person's browser: cookies, redirects followed.
type Browser struct {
	C *http.Client
	t testing.TB
}

// NewBrowser returns a browser with an empty cookie jar.
func NewBrowser(t testing.TB) *Browser {
	jar, _ := cookiejar.New(nil)
	return &Browser{C: &http.Client{Jar: jar, Timeout: 30 * time.Second}, t: t}
}

// Page is a response as the browser ended on it.
type Page struct {
	Status int
	URL    *url.URL
	Body   string
}

// Get fetches u, following redirects.
func (b *Browser) Get(u string) Page {
	b.t.Helper()
	resp, err := b.C.Get(u)
	if err != nil {
		b.t.Fatalf("browser: GET %s: %v", u, err)
	}
	return b.page(resp)
}

// Post submits a form to u, following redirects.
func (b *Browser) Post(u string, form url.Values) Page {
	b.t.Helper()
	resp, err := b.C.PostForm(u, form)
	if err != nil {
		b.t.Fatalf("browser: POST %s: %v", u, err)
	}
	return b.page(resp)
}

func (b *Browser) page(resp *http.Response) Page {
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return Page{Status: resp.StatusCode, URL: resp.Request.URL, Body: string(body)}
}

var hiddenRe = regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`)

// Hidden returns the page's hidden form fields.
func (p Page) Hidden() url.Values {
	v := url.Values{}
	for _, m := range hiddenRe.FindAllStringSubmatch(p.Body, -1) {
		v.Set(m[1], html.UnescapeString(m[2]))
	}
	return v
}

// LogIn posts the OP's login form on page (where the OP sent the browser)
// and follows the redirects back to the relying party.
func (b *Browser) LogIn(p Page, username, password string) Page {
	b.t.Helper()
	id := p.Hidden().Get("id")
	if id == "" || !strings.Contains(p.Body, `name="password"`) {
		b.t.Fatalf("browser: not the OP's login form (%s, %d): %.300s", p.URL, p.Status, p.Body)
	}
	u := *p.URL
	u.Path, u.RawQuery = "/login/username", ""
	return b.Post(u.String(), url.Values{"id": {id}, "username": {username}, "password": {password}})
}

// String is for failure messages.
func (p Page) String() string { return fmt.Sprintf("%d %s: %.400s", p.Status, p.URL, p.Body) }
