package gateway_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/identity"
	"github.com/warden-gw/warden/internal/optest"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/sso"
	"github.com/warden-gw/warden/web"
)

// newCreateBed is the single sign-on testbed with
// identity.oidc.create_users: true, its sign-in users stored in the
// testbed's identity directory. The OP's users: zoe (no Warden user, in
// sysadmins and Finance, a group the policy does not define), ALICE (the
// YAML user alice, capitalised by the IdP, in auditors) and nobody (no
// Warden user, no groups claim).
func newCreateBed(t *testing.T) *ssoBed {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	op := optest.Start(t, "http://"+ln.Addr().String()+"/oidc/callback",
		optest.User{Username: "zoe", Password: "zoe-pw", Groups: []string{"sysadmins", "Finance"}},
		optest.User{Username: "ALICE", Password: "alice-pw", Groups: []string{"auditors"}},
		optest.User{Username: "nobody", Password: "nobody-pw"},
		optest.User{Username: "-oProxyCommand=x", Password: "evil-pw", Groups: []string{"sysadmins"}})
	secret := filepath.Join(t.TempDir(), "oidc-secret")
	if err := os.WriteFile(secret, []byte(op.ClientSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sb := &ssoBed{op: op}
	sb.testbed = newTestbed(t, bedOptions{
		identity: fmt.Sprintf("http_listen: %q\nidentity:\n  oidc: {issuer: %q, client_id: %q, client_secret_file: %q, create_users: true}\n",
			ln.Addr().String(), op.Issuer, op.ClientID, secret),
		configure: func(b *testbed, o *gateway.Options) {
			w := web.New(web.Options{Listen: ln.Addr().String()})
			svc, err := sso.New(sso.Options{Store: b.store, BaseURL: w.BaseURL, OIDC: b.cfg.Identity.OIDC, Create: b.directory,
				Users: sso.PolicyUsers(func() *policy.Config { return b.directory.Merge(b.cfg) })})
			if err != nil {
				t.Fatal(err)
			}
			svc.Mount(w)
			serveWeb(t, w, ln)
			o.SignOn, sb.svc = svc, svc
		},
	})
	return sb
}

// TestE2ESSOCreateUsers: with create_users, an unknown IdP user signs in
// through the real ssh client, is created with the policy groups of the
// claim (an undefined group ignored), reaches a host under a standing role
// of such a group, and whoami shows source oidc; an IdP name that is a
// YAML user in another case signs in as that user, creating nobody; a
// sign-in without a groups claim creates a user who reaches nothing and
// is told so.
func TestE2ESSOCreateUsers(t *testing.T) {
	sb := newCreateBed(t)
	signIn := func(name, user, pw string) (string, *sshtest.Client) {
		t.Helper()
		c := newClient(t, filepath.Join(sb.dir, name))
		c.TrustHost("127.0.0.1:"+sb.port, sb.hostKey)
		pl := sb.startLogin(c)
		br := optest.NewBrowser(t)
		if final := br.LogIn(confirm(t, br, pl.url, pl.code), user, pw); final.Status != 200 {
			t.Fatalf("%s's callback page: %s", user, final)
		}
		code, out, errOut := pl.wait(t)
		if code != 0 {
			t.Fatalf("%s's login: exit %d stdout %q stderr %q", user, code, out, errOut)
		}
		return out, c
	}

	out, zoe := signIn("zoe", "zoe", "zoe-pw")
	if !regexp.MustCompile(`(?m)^signed in as zoe until \S+Z\ngroups: sysadmins$`).MatchString(out) {
		t.Fatalf("zoe's login: %q", out)
	}
	if out, errOut, code := sb.run(zoe, "root@web01", "whoami"); code != 0 || out != "root\n" {
		t.Fatalf("zoe on web01 under web-admin (sysadmins): exit %d %q %q", code, out, errOut)
	}
	if s := sb.lastSession("zoe"); s.Host != "web01" {
		t.Errorf("session %+v, want zoe on web01", s)
	}
	out, _, code := sb.run(zoe, "me", "whoami")
	if code != 0 || !strings.Contains(out, "user:        zoe\n") || !strings.Contains(out, "source:      oidc (") ||
		!strings.Contains(out, "groups:      sysadmins\n") || strings.Contains(out, "Finance") {
		t.Fatalf("zoe's whoami: exit %d %q", code, out)
	}
	ev := sb.waitEvent(identity.EventUserCreated, "zoe")
	if ev.Actor != "oidc" || ev.Subject != "user:zoe" {
		t.Errorf("created event %+v", ev)
	}
	if u, ok := sb.directory.UserByName("zoe"); !ok || u.Source() != "oidc" || u.State() != "active" {
		t.Errorf("stored zoe %+v %v", u, ok)
	}

	// ALICE at the IdP is the YAML user alice: bound to her, nobody created.
	out, alice2 := signIn("alice2", "ALICE", "alice-pw")
	if !strings.Contains(out, "signed in as alice until ") || strings.Contains(out, "groups:") {
		t.Fatalf("ALICE's login: %q", out)
	}
	if out, _, _ := sb.run(alice2, "me", "whoami"); !strings.Contains(out, "user:        alice\n") || !strings.Contains(out, "source:      yaml (") {
		t.Fatalf("ALICE's whoami: %q", out)
	}
	if _, ok := sb.directory.UserByName("ALICE"); ok {
		t.Fatal("a sign-in created a user under a YAML user's name")
	}

	// No groups claim: created, in no group, reaching nothing, and told.
	out, nobody := signIn("nobody", "nobody", "nobody-pw")
	if !strings.Contains(out, "signed in as nobody until ") || !strings.Contains(out, "you are in no group of the policy, so you can reach no host yet") {
		t.Fatalf("nobody's login: %q", out)
	}
	if _, _, code := sb.run(nobody, "root@web01", "true"); code == 0 {
		t.Fatal("a user in no group reached web01")
	}
	// A name SCIM would refuse is refused here too: one line, audited,
	// nothing created or bound.
	evil := newClient(t, filepath.Join(sb.dir, "evil"))
	evil.TrustHost("127.0.0.1:"+sb.port, sb.hostKey)
	pl := sb.startLogin(evil)
	br := optest.NewBrowser(t)
	if final := br.LogIn(confirm(t, br, pl.url, pl.code), "-oProxyCommand=x", "evil-pw"); final.Status != 403 {
		t.Fatalf("bad name's callback page: %s", final)
	}
	code, _, errOut := pl.wait(t)
	want := "warden: sign-in refused: -oProxyCommand=x (from the identity provider) could not be made a Warden user; ask an administrator\n"
	if code != 1 || errOut != want {
		t.Fatalf("bad name: exit %d stderr %q, want %q", code, errOut, want)
	}
	sb.waitEvent(sso.EventRefused, "user not created")
	if _, _, code := sb.run(evil, "root@web01", "true"); code != 255 {
		t.Fatalf("refused key reaches web01: exit %d", code)
	}
	if n := len(sb.directory.Users()); n != 2 {
		t.Fatalf("directory users %+v, want zoe and nobody", sb.directory.Users())
	}
}
