package sso

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// clock is an injected clock tests move by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func testKey(t *testing.T) gossh.PublicKey {
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testPolicy(t *testing.T) *policy.Config {
	c, err := policy.Parse([]byte("groups: [{name: ops}]\nusers:\n  - {name: alice, groups: [ops]}\n  - {name: dana}\n"), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// newService opens a store in dir and a Service on it.
func newService(t *testing.T, dir string, clk *clock) (*Service, *audit.Store) {
	t.Helper()
	st, err := audit.Open(context.Background(), dir, audit.Options{Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := testPolicy(t)
	s, err := New(Options{Store: st, Now: clk.now, BaseURL: func(string) string { return "http://127.0.0.1:8022" },
		Users: PolicyUsers(func() *policy.Config { return cfg }),
		OIDC:  &policy.OIDC{Issuer: "https://idp.example", ClientID: "w", ClientSecretFile: secret, UsernameClaim: "preferred_username", GroupsClaim: "groups", KeyTTL: policy.Duration(12 * time.Hour)}})
	if err != nil {
		t.Fatal(err)
	}
	return s, st
}

func bind(t *testing.T, s *Service, key gossh.PublicKey, user string) Binding {
	t.Helper()
	now := s.now()
	b := Binding{Fingerprint: gossh.FingerprintSHA256(key), User: user, Issuer: "https://idp.example", Subject: "sub-" + user,
		ClientAddr: "192.0.2.1:5000", BoundAt: now, ExpiresAt: now.Add(s.KeyTTL())}
	if err := s.b.bind(context.Background(), key, b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestBindingExpiresAtKeyTTL: a binding names its user until key_ttl and
// not a moment after, before and after the sweep records it.
func TestBindingExpiresAtKeyTTL(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	s, st := newService(t, t.TempDir(), clk)
	defer st.Close()
	ctx := context.Background()
	k := testKey(t)
	fp := gossh.FingerprintSHA256(k)
	bind(t, s, k, "alice")
	clk.add(12*time.Hour - time.Second)
	if u, ok := s.BoundUser(ctx, fp); !ok || u != "alice" {
		t.Fatalf("a second before key_ttl: %q %v", u, ok)
	}
	clk.add(time.Second)
	if u, ok := s.BoundUser(ctx, fp); ok {
		t.Fatalf("at key_ttl the key still names %q", u)
	}
	if list, _ := s.Bindings(ctx, "alice"); len(list) != 0 {
		t.Fatalf("expired binding listed: %+v", list)
	}
	s.Sweep(ctx)
	var at, reason string
	if err := st.DB().QueryRow(`SELECT ended_at, end_reason FROM sso_bindings`).Scan(&at, &reason); err != nil {
		t.Fatal(err)
	}
	if reason != EndExpired || at != "2026-12-01T20:00:00.000000Z" {
		t.Fatalf("ended %s as %s", at, reason)
	}
	if err := s.Logout(ctx, fp, "alice"); err != ErrNotBound {
		t.Fatalf("logout of an expired binding: %v", err)
	}
}

// TestBindingSurvivesRestart: the binding is in the database, not memory.
func TestBindingSurvivesRestart(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	s, st := newService(t, dir, clk)
	k := testKey(t)
	bind(t, s, k, "alice")
	st.Close()
	s2, st2 := newService(t, dir, clk)
	defer st2.Close()
	if u, ok := s2.BoundUser(context.Background(), gossh.FingerprintSHA256(k)); !ok || u != "alice" {
		t.Fatalf("after restart: %q %v", u, ok)
	}
}

// TestEndUserForDeprovisioning: every binding of the user ends at once,
// with one chained event each naming the directory; others are untouched.
func TestEndUserForDeprovisioning(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	dir := t.TempDir()
	s, st := newService(t, dir, clk)
	defer st.Close()
	ctx := context.Background()
	k1, k2, k3 := testKey(t), testKey(t), testKey(t)
	bind(t, s, k1, "alice")
	bind(t, s, k2, "alice")
	bind(t, s, k3, "dana")
	n, err := s.EndUser(ctx, "alice", EndDeprovisioned, "scim:entra")
	if err != nil || n != 2 {
		t.Fatalf("EndUser = %d, %v", n, err)
	}
	for _, k := range []gossh.PublicKey{k1, k2} {
		if _, ok := s.BoundUser(ctx, gossh.FingerprintSHA256(k)); ok {
			t.Error("deprovisioned key still bound")
		}
	}
	if _, ok := s.BoundUser(ctx, gossh.FingerprintSHA256(k3)); !ok {
		t.Error("another user's binding ended")
	}
	evs, err := st.Events(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	ended := 0
	for _, e := range evs {
		if e.Type == EventEnded && e.Actor == "scim:entra" && e.Data["reason"] == EndDeprovisioned && e.Data["user"] == "alice" {
			ended++
		}
	}
	if ended != 2 {
		t.Fatalf("%d sso.ended events by the directory, want 2", ended)
	}
	if res, err := audit.Verify(ctx, dir); err != nil || res.Events < 5 {
		t.Fatalf("chain: %v %+v", err, res)
	}
}

// TestRebindReplaces: signing the same key in again (as someone else)
// ends the first binding as replaced; one live binding per key.
func TestRebindReplaces(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	s, st := newService(t, t.TempDir(), clk)
	defer st.Close()
	k := testKey(t)
	bind(t, s, k, "alice")
	clk.add(time.Minute)
	bind(t, s, k, "dana")
	if u, _ := s.BoundUser(context.Background(), gossh.FingerprintSHA256(k)); u != "dana" {
		t.Fatalf("bound to %q", u)
	}
	var reason string
	if err := st.DB().QueryRow(`SELECT end_reason FROM sso_bindings WHERE user = 'alice'`).Scan(&reason); err != nil || reason != EndReplaced {
		t.Fatalf("first binding: %q %v", reason, err)
	}
}

func TestPolicyUsersMatch(t *testing.T) {
	cfg := testPolicy(t)
	u := PolicyUsers(func() *policy.Config { return cfg })
	for claim, want := range map[string]string{"alice": "alice", "ALICE": "alice", "Dana": "dana", "mallory": "", "": "", "alice ": ""} {
		got, ok := u.SignInUser(claim)
		if got != want || ok != (want != "") {
			t.Errorf("%q: %q %v, want %q", claim, got, ok, want)
		}
	}
	// Names that fold together (possible once directory users merge in):
	// an exact match wins, a folded one is refused rather than guessed.
	two := &policy.Config{Users: []*policy.User{{Name: "Bob"}, {Name: "bob"}}}
	u = PolicyUsers(func() *policy.Config { return two })
	for claim, want := range map[string]string{"Bob": "Bob", "bob": "bob", "BOB": ""} {
		got, ok := u.SignInUser(claim)
		if got != want || ok != (want != "") {
			t.Errorf("%q: %q %v, want %q", claim, got, ok, want)
		}
	}
}

// TestPendingBounds: pending sign-ins are capped per source; ending the
// SSH connection (its context) ends the sign-in and frees the slot.
func TestPendingBounds(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	s, st := newService(t, t.TempDir(), clk)
	defer st.Close()
	var cancels []context.CancelFunc
	var first *Pending
	for i := 0; i < maxPendingPerSrc; i++ {
		ctx, cancel := context.WithCancel(context.Background())
		cancels = append(cancels, cancel)
		p, err := s.Begin(ctx, testKey(t), "192.0.2.9:1000", "")
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = p
		}
		if !strings.HasPrefix(p.URL, "http://127.0.0.1:8022/oidc/start?id=") || len(p.Code) != 9 || p.Code[4] != '-' {
			t.Fatalf("pending %+v", p)
		}
	}
	if _, err := s.Begin(context.Background(), testKey(t), "192.0.2.9:1001", ""); err == nil {
		t.Fatal("sign-in past the per-source cap")
	}
	if _, err := s.Begin(context.Background(), testKey(t), "192.0.2.10:1001", ""); err != nil {
		t.Fatalf("another source: %v", err)
	}
	cancels[0]()
	if r := first.Wait(context.Background()); r.Err == nil || r.Err.Error() != "sign-in cancelled" {
		t.Fatalf("cancelled sign-in: %+v", r)
	}
	if _, err := s.Begin(context.Background(), testKey(t), "192.0.2.9:1002", ""); err != nil {
		t.Fatalf("slot not freed: %v", err)
	}
	for _, c := range cancels {
		c()
	}
	rel, ok := s.AdmitConn("192.0.2.20:1")
	if !ok {
		t.Fatal("AdmitConn refused the first connection")
	}
	for i := 1; i < maxPendingPerSrc; i++ {
		if _, ok := s.AdmitConn("192.0.2.20:1"); !ok {
			t.Fatal("AdmitConn refused below the cap")
		}
	}
	if _, ok := s.AdmitConn("192.0.2.20:1"); ok {
		t.Fatal("AdmitConn past the per-source cap")
	}
	rel()
	rel() // a second release is harmless
	if _, ok := s.AdmitConn("192.0.2.20:1"); !ok {
		t.Fatal("AdmitConn slot not freed")
	}
	if _, ok := s.AdmitConn("192.0.2.20:1"); ok {
		t.Fatal("a double release freed two slots")
	}
}

func TestUserCodeAndNormalize(t *testing.T) {
	clk := &clock{t: time.Now()}
	s, st := newService(t, t.TempDir(), clk)
	defer st.Close()
	seen := map[string]bool{}
	for i := 0; i < 200; i++ {
		c, err := s.userCode()
		if err != nil || len(c) != codeLen || strings.Trim(c, codeAlphabet) != "" {
			t.Fatalf("code %q %v", c, err)
		}
		seen[c] = true
		if normalizeCode(strings.ToLower(formatCode(c))) != c || normalizeCode(" "+c[:4]+" - "+c[4:]) != c {
			t.Fatalf("normalize %q", c)
		}
	}
	if len(seen) < 199 {
		t.Fatalf("only %d distinct codes of 200", len(seen))
	}
}

type fakeCreator struct {
	in, ignored []string
	err         error
}

func (f fakeCreator) CreateSignInUser(_ context.Context, claim string, _ []string) (string, []string, []string, error) {
	return claim, f.in, f.ignored, f.err
}
func (f fakeCreator) CreatedBySignIn(string) bool { return false }

// TestCreateUsers: create_users needs a creator; a creator's error fails
// the sign-in; a user in no group is told it reaches nothing.
func TestCreateUsers(t *testing.T) {
	clk := &clock{t: time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)}
	s, st := newService(t, t.TempDir(), clk)
	defer st.Close()
	opt := s.opt
	opt.OIDC = &policy.OIDC{Issuer: "https://idp.example", ClientID: "w", ClientSecretFile: opt.OIDC.ClientSecretFile, CreateUsers: true}
	if _, err := New(opt); err == nil {
		t.Fatal("create_users without a creator accepted")
	}
	ctx := context.Background()
	s.opt.Create = fakeCreator{err: errors.New("database is locked")}
	if _, _, err := s.create(ctx, "zoe", nil); err == nil {
		t.Fatal("a creator error did not fail the sign-in")
	}
	s.opt.Create = fakeCreator{}
	if u, note, err := s.create(ctx, "zoe", nil); err != nil || u != "zoe" || !strings.Contains(note, "no group of the policy") {
		t.Fatalf("no groups: %q %q %v", u, note, err)
	}
	s.opt.Create = fakeCreator{in: []string{"ops", "web"}, ignored: []string{"Finance"}}
	if _, note, err := s.create(ctx, "zoe", []string{"ops", "web", "Finance"}); err != nil || note != "groups: ops, web" {
		t.Fatalf("groups: %q %v", note, err)
	}
}
