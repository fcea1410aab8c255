package identity_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/identity"
	"github.com/warden-gw/warden/policy"
)

func signInPolicy(t *testing.T, dir, aliceKey string, create bool) *policy.Config {
	t.Helper()
	cfg, err := policy.Parse([]byte(fmt.Sprintf(`data_dir: %s
http_listen: "127.0.0.1:0"
tenants:
  - {name: acme, hosts: [{name: web01, address: 10.0.0.1, host_key: %q}]}
groups: [{name: sysadmins}, {name: dbas}]
users: [{name: alice, keys: [%q], groups: [sysadmins]}]
roles:
  - {name: acme-root, tenant: acme, hosts: {names: ["*"]}, logins: [root], members: [sysadmins]}
identity:
  directories:
    - {name: entra, token_file: /t/entra}
  oidc: {issuer: "https://idp.example.com", client_id: w, client_secret_file: /t/s, create_users: %v}
`, filepath.Join(dir, "data"), aliceKey, aliceKey, create)), filepath.Join(dir, "w.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// A sign-in of an unknown name creates a user of source oidc in the policy
// groups of its claim (others ignored); the next sign-in refreshes them;
// every change is a chained event with actor oidc.
func TestSignInCreatesUser(t *testing.T) {
	dir := t.TempDir()
	cfg := signInPolicy(t, dir, keyLine(t), true)
	st, d := open(t, cfg)
	ctx := context.Background()
	var changes []identity.Change
	d.Subscribe(func(c []identity.Change) { changes = append(changes, c...) })

	r, err := d.SignInUser(ctx, "carol@acme.example", []string{"sysadmins", "Finance", "sysadmins"})
	if err != nil {
		t.Fatal(err)
	}
	if !r.Created || r.Name != "carol@acme.example" || !slices.Equal(r.Groups, []string{"sysadmins"}) || !slices.Equal(r.Ignored, []string{"Finance"}) {
		t.Fatalf("first sign-in %+v", r)
	}
	if len(changes) != 2 || changes[0].Kind != identity.Joiner || changes[1].Kind != identity.Mover {
		t.Fatalf("changes %+v", changes)
	}
	m := d.Merge(cfg)
	carol := m.User("carol@acme.example")
	if carol == nil || carol.SourceOf() != "oidc" || !slices.Equal(carol.Groups, []string{"sysadmins"}) {
		t.Fatalf("merged carol %+v", carol)
	}
	web, _ := m.ResolveHost("web01")
	if m.Authorize(carol, "root", web).Standing == nil {
		t.Fatal("carol's claim group gives her no standing role")
	}
	if !d.CreatedBySignIn("CAROL@acme.example") || d.CreatedBySignIn("alice") {
		t.Fatal("CreatedBySignIn")
	}

	// A mover: the next sign-in's claim replaces the groups.
	changes = nil
	r, err = d.SignInUser(ctx, "Carol@acme.example", []string{"dbas"})
	if err != nil || r.Created || r.Name != "carol@acme.example" || !slices.Equal(r.Groups, []string{"dbas"}) {
		t.Fatalf("second sign-in %+v %v", r, err)
	}
	if len(changes) != 2 || changes[0].Kind != identity.Mover {
		t.Fatalf("mover changes %+v", changes)
	}
	m = d.Merge(cfg)
	if c := m.User("carol@acme.example"); c == nil || m.Authorize(c, "root", web).Standing != nil {
		t.Fatalf("moved out of sysadmins but still holds acme-root: %+v", c)
	}
	// The same claim again changes nothing and writes nothing.
	changes = nil
	if _, err := d.SignInUser(ctx, "carol@acme.example", []string{"dbas"}); err != nil || len(changes) != 0 {
		t.Fatalf("repeat sign-in: %v %+v", err, changes)
	}
	st.Close()
	rep, err := audit.Verify(ctx, cfg.DataDir)
	if err != nil || len(rep.Problems) != 0 {
		t.Fatalf("verify: %v %v", err, rep.Problems)
	}
	rd, err := audit.OpenReadOnly(cfg.DataDir)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	evs, err := rd.Events(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, e := range evs {
		if e.Actor != "oidc" {
			t.Errorf("event %s actor %q, want oidc", e.Type, e.Actor)
		}
		types = append(types, e.Type)
	}
	want := []string{"identity.user.created", "identity.group.created", "identity.group.updated", "identity.group.created"}
	if !slices.Equal(types, want) {
		t.Fatalf("events %v, want %v", types, want)
	}
}

// A sign-in never takes a name that is (case-insensitively) a YAML user or
// a directory user in any state, tombstones included, nor a name SCIM
// would refuse; each refusal writes nothing.
func TestSignInCreateRefusals(t *testing.T) {
	dir := t.TempDir()
	cfg := signInPolicy(t, dir, keyLine(t), true)
	st, d := open(t, cfg)
	defer st.Close()
	ctx := context.Background()
	err := d.Update(ctx, "entra", func(tx *identity.Tx) error {
		for _, u := range []identity.User{{UserName: "dana", Active: true}, {UserName: "erin", Active: false}, {UserName: "fay", Active: true}} {
			if _, _, err := tx.CreateUser(u); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	fay, _ := d.UserByName("fay")
	if err := d.Update(ctx, "entra", func(tx *identity.Tx) error { return tx.DeleteUser(fay.ID) }); err != nil {
		t.Fatal(err)
	}
	before := len(d.Users())
	for _, c := range []struct {
		claim string
		want  error
	}{
		{"ALICE", identity.ErrConflict}, // YAML user
		{"Dana", identity.ErrConflict},  // active SCIM user
		{"erin", identity.ErrConflict},  // deactivated SCIM user: a leaver
		{"FAY", identity.ErrConflict},   // deleted SCIM user: a leaver
		{"-rf", identity.ErrInvalid},    // SCIM's userName rules
		{"a\x1b[2Jb", identity.ErrInvalid},
		{"x\u202ey", identity.ErrInvalid},
		{"two words", identity.ErrInvalid},
	} {
		if _, err := d.SignInUser(ctx, c.claim, []string{"sysadmins"}); !errors.Is(err, c.want) {
			t.Errorf("%q: err %v, want %v", c.claim, err, c.want)
		}
	}
	if n := len(d.Users()); n != before {
		t.Fatalf("refused sign-ins wrote users: %d -> %d", before, n)
	}
	if g := d.Groups(); len(g) != 0 {
		t.Fatalf("refused sign-ins wrote groups: %+v", g)
	}
}

// With create_users off, users created before are out of the merged policy
// and no sign-in creates any (fail closed); a closed store is an error.
func TestSignInCreateOffAndStoreError(t *testing.T) {
	dir := t.TempDir()
	key := keyLine(t)
	on := signInPolicy(t, dir, key, true)
	off := signInPolicy(t, dir, key, false)
	cur := on
	st, err := audit.Open(context.Background(), on.DataDir, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	d, err := identity.Open(context.Background(), identity.Options{Store: st, Policy: func() *policy.Config { return cur }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := d.SignInUser(ctx, "carol", []string{"sysadmins"}); err != nil {
		t.Fatal(err)
	}
	cur = off
	if d.Merge(off).User("carol") != nil {
		t.Fatal("a sign-in user is in the policy with create_users off")
	}
	if _, err := d.SignInUser(ctx, "gus", nil); err == nil {
		t.Fatal("created a user with create_users off")
	}
	cur = on
	st.Close()
	if _, err := d.SignInUser(ctx, "hal", nil); err == nil {
		t.Fatal("no error from a closed store")
	}
	if _, ok := d.UserByName("hal"); ok {
		t.Fatal("hal exists after a failed write")
	}
}
