package identity_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/identity"
	"github.com/warden-gw/warden/policy"
)

func keyLine(t *testing.T) string {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := ssh.NewPublicKey(pub)
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

func testPolicy(t *testing.T, dir, aliceKey string) *policy.Config {
	t.Helper()
	cfg, err := policy.Parse([]byte(fmt.Sprintf(`data_dir: %s
http_listen: "127.0.0.1:0"
tenants:
  - {name: acme, hosts: [{name: web01, address: 10.0.0.1, host_key: %q}]}
  - {name: globex, hosts: [{name: db01, address: 10.0.0.2, host_key: %q}]}
groups: [{name: sysadmins}]
users: [{name: alice, keys: [%q], groups: [sysadmins]}]
roles:
  - {name: acme-root, tenant: acme, hosts: {names: ["*"]}, logins: [root], members: [sysadmins]}
  - {name: globex-root, tenant: globex, hosts: {names: ["*"]}, logins: [root], members: [sysadmins]}
identity:
  directories:
    - {name: entra, token_file: /t/entra}
    - {name: acme-okta, token_file: /t/okta, tenant: acme}
`, filepath.Join(dir, "data"), aliceKey, aliceKey, aliceKey)), filepath.Join(dir, "w.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func open(t *testing.T, cfg *policy.Config) (*audit.Store, *identity.Directory) {
	t.Helper()
	st, err := audit.Open(context.Background(), cfg.DataDir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := identity.Open(context.Background(), identity.Options{Store: st, Policy: func() *policy.Config { return cfg }})
	if err != nil {
		t.Fatal(err)
	}
	return st, d
}

// State lives in the database: it survives a restart, and every change is
// a chained audit event with the directory as actor.
func TestStateSurvivesRestartAndIsChained(t *testing.T) {
	dir := t.TempDir()
	aliceKey, danaKey := keyLine(t), keyLine(t)
	cfg := testPolicy(t, dir, aliceKey)
	st, d := open(t, cfg)
	ctx := context.Background()
	var changes []identity.Change
	d.Subscribe(func(c []identity.Change) { changes = append(changes, c...) })
	err := d.Update(ctx, "acme-okta", func(tx *identity.Tx) error {
		u, _, err := tx.CreateUser(identity.User{UserName: "dana@acme.example", ExternalID: "x1", Active: true, Keys: []string{danaKey + "\n\n# laptop\n"}})
		if err != nil {
			return err
		}
		_, _, err = tx.CreateGroup(identity.Group{DisplayName: "sysadmins", Members: []string{u.ID}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(changes) != 2 || changes[0].Kind != identity.Joiner || changes[1].Kind != identity.Mover {
		t.Fatalf("changes %+v", changes)
	}
	// Tenant-limited: dana holds acme's role, not globex's, though her
	// group is sysadmins.
	m := d.Merge(cfg)
	dana := m.User("dana@acme.example")
	if dana == nil || dana.SourceOf() != "scim:acme-okta" || dana.Tenant != "acme" || len(dana.Keys) != 1 {
		t.Fatalf("merged dana %+v", dana)
	}
	web, _ := m.ResolveHost("web01")
	db, _ := m.ResolveHost("db01")
	if m.Authorize(dana, "root", web).Standing == nil || m.Authorize(dana, "root", db).Standing != nil {
		t.Fatal("tenant limit not applied")
	}
	if cfg.User("dana@acme.example") != nil {
		t.Fatal("merge changed the YAML policy")
	}
	st.Close()

	st, d = open(t, cfg)
	u, ok := d.UserByName("DANA@acme.example")
	if !ok || u.State() != "active" || len(u.Groups) != 1 || u.Groups[0] != "sysadmins" {
		t.Fatalf("after restart: %+v %v", u, ok)
	}
	st.Close()
	rep, err := audit.Verify(ctx, cfg.DataDir)
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("verify: %v %v", err, rep.Problems)
	}
	r, err := audit.OpenReadOnly(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	evs, err := r.Events(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		if e.Actor != "scim:acme-okta" {
			t.Errorf("event %s actor %q", e.Type, e.Actor)
		}
		types = append(types, e.Type)
	}
	if strings.Join(types, ",") != "identity.user.created,identity.group.created" {
		t.Fatalf("events %v", types)
	}
}

// Directories cannot see or change each other's users, nor take a YAML
// user's name or key, nor one another's keys.
func TestDirectoriesAreSeparate(t *testing.T) {
	dir := t.TempDir()
	aliceKey, key := keyLine(t), keyLine(t)
	cfg := testPolicy(t, dir, aliceKey)
	st, d := open(t, cfg)
	defer st.Close()
	ctx := context.Background()
	var id string
	if err := d.Update(ctx, "entra", func(tx *identity.Tx) error {
		u, _, err := tx.CreateUser(identity.User{UserName: "erin@contoso.com", Active: true, Keys: []string{key}})
		id = u.ID
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for name, fn := range map[string]func(tx *identity.Tx) error{
		"other directory's user": func(tx *identity.Tx) error { _, err := tx.User(id); return err },
		"other directory's name": func(tx *identity.Tx) error {
			_, _, err := tx.CreateUser(identity.User{UserName: "Erin@Contoso.com", Active: true})
			return err
		},
		"other directory's key": func(tx *identity.Tx) error {
			_, _, err := tx.CreateUser(identity.User{UserName: "x@y", Active: true, Keys: []string{key}})
			return err
		},
		"YAML key": func(tx *identity.Tx) error {
			_, _, err := tx.CreateUser(identity.User{UserName: "x@y", Active: true, Keys: []string{aliceKey}})
			return err
		},
		"YAML name": func(tx *identity.Tx) error {
			_, _, err := tx.CreateUser(identity.User{UserName: "Alice", Active: true})
			return err
		},
	} {
		err := d.Update(ctx, "acme-okta", fn)
		var ie *identity.Error
		if !errors.As(err, &ie) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if err := d.Update(ctx, "nope", func(*identity.Tx) error { return nil }); !errors.Is(err, identity.ErrNotFound) {
		t.Fatalf("unknown directory: %v", err)
	}
}

func TestCheckUserName(t *testing.T) {
	for _, ok := range []string{"dana@contoso.com", "o'brien@x.example", "a.b-c_d+e@x"} {
		if msg := identity.CheckUserName(ok); msg != "" {
			t.Errorf("%q: %s", ok, msg)
		}
	}
	for _, bad := range []string{"", "-rf", ".hidden", "a b", "a\tb", "a\x1b[31m", "a\u202eb", "a\u0085b", "a/b", `a\b`, "a:b", "a,b", "dänä", strings.Repeat("a", 257)} {
		if identity.CheckUserName(bad) == "" {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestParseKeys(t *testing.T) {
	k1, k2 := keyLine(t), keyLine(t)
	lines, keys, err := identity.ParseKeys([]string{k1 + " laptop\r\n\n# comment\n" + k2, k1})
	if err != nil || len(lines) != 2 || len(keys) != 2 || lines[0] != k1+" laptop" {
		t.Fatalf("%v %v %v", lines, keys, err)
	}
	for _, bad := range []string{`command="x" ` + k1, "ssh-ed25519 AAAA", "nonsense"} {
		if _, _, err := identity.ParseKeys([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// BindKeys (for OIDC sign-in) adds keys to users by name while they are
// in the merged policy: a leaver's bound key stops with them, and a bound
// key cannot take another user's key.
func TestBindKeys(t *testing.T) {
	dir := t.TempDir()
	aliceKey := keyLine(t)
	cfg := testPolicy(t, dir, aliceKey)
	st, d := open(t, cfg)
	defer st.Close()
	ctx := context.Background()
	var id string
	if err := d.Update(ctx, "entra", func(tx *identity.Tx) error {
		u, _, err := tx.CreateUser(identity.User{UserName: "dana@contoso.com", Active: true})
		id = u.ID
		return err
	}); err != nil {
		t.Fatal(err)
	}
	parse := func(s string) ssh.PublicKey {
		k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(s))
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	bound, forAlice := parse(keyLine(t)), parse(keyLine(t))
	var told []identity.Change
	d.Subscribe(func(c []identity.Change) { told = append(told, c...) })
	d.BindKeys("oidc", map[string][]ssh.PublicKey{"dana@contoso.com": {bound, parse(aliceKey)}, "alice": {forAlice}})
	m := d.Merge(cfg)
	if u := m.UserByKey(bound); u == nil || u.Name != "dana@contoso.com" {
		t.Fatalf("bound key: %v", u)
	}
	if u := m.UserByKey(parse(aliceKey)); u == nil || u.Name != "alice" {
		t.Fatalf("alice's own key went to %v", u)
	}
	if u := m.UserByKey(forAlice); u == nil || u.Name != "alice" {
		t.Fatalf("key bound to a YAML user: %v", u)
	}
	if err := d.Update(ctx, "entra", func(tx *identity.Tx) error {
		u, err := tx.User(id)
		if err != nil {
			return err
		}
		u.Active = false
		_, err = tx.SaveUser(u)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if u := d.Merge(cfg).UserByKey(bound); u != nil {
		t.Fatalf("a leaver's bound key still names %s", u.Name)
	}
	d.BindKeys("oidc", map[string][]ssh.PublicKey{"alice": {}})
	if d.Merge(cfg).UserByKey(forAlice) != nil {
		t.Fatal("an ended binding still authenticates")
	}
	if !slices.ContainsFunc(told, func(c identity.Change) bool { return c.UserName == "alice" && c.Kind == identity.Edit }) {
		t.Fatalf("subscribers not told of the ended binding: %+v", told)
	}
}

// One key, one person, whatever the timing: the check reads the table in
// the writing transaction, not the snapshot taken before it. Two users
// created with one key in one transaction (a snapshot cannot see the
// first), and many requests at once, each creating a user with the same
// key, leave exactly one holder.
func TestOneKeyOneUserWithinAndAcrossWrites(t *testing.T) {
	dir := t.TempDir()
	cfg := testPolicy(t, dir, keyLine(t))
	st, d := open(t, cfg)
	defer st.Close()
	ctx := context.Background()

	key := keyLine(t)
	err := d.Update(ctx, "entra", func(tx *identity.Tx) error {
		if _, _, err := tx.CreateUser(identity.User{UserName: "one@contoso.com", Active: true, Keys: []string{key}}); err != nil {
			return err
		}
		_, _, err := tx.CreateUser(identity.User{UserName: "two@contoso.com", Active: true, Keys: []string{key + " another-comment"}})
		return err
	})
	if !errors.Is(err, identity.ErrConflict) || !strings.Contains(err.Error(), "belongs to another user") {
		t.Fatalf("second user with the key in the same write: %v", err)
	}
	if _, ok := d.UserByName("one@contoso.com"); ok {
		t.Fatal("the refused write was partly kept")
	}

	key = keyLine(t)
	const n = 8
	errs := make(chan error, n)
	start := make(chan struct{})
	for i := 0; i < n; i++ {
		go func() {
			<-start
			errs <- d.Update(ctx, []string{"entra", "acme-okta"}[i%2], func(tx *identity.Tx) error {
				_, _, err := tx.CreateUser(identity.User{UserName: fmt.Sprintf("racer%d@contoso.com", i), Active: true, Keys: []string{key}})
				return err
			})
		}()
	}
	close(start)
	created := 0
	for i := 0; i < n; i++ {
		switch err := <-errs; {
		case err == nil:
			created++
		case !errors.Is(err, identity.ErrConflict):
			t.Errorf("racer: %v", err)
		}
	}
	holders := 0
	for _, u := range d.Users() {
		if slices.Contains(u.Keys, key) {
			holders++
		}
	}
	if created != 1 || holders != 1 {
		t.Fatalf("%d writes succeeded and %d users hold the key; want one and one", created, holders)
	}
}
