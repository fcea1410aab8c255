package identity_test

import (
	"context"
	"testing"

	"github.com/warden-gw/warden/identity"
	"github.com/warden-gw/warden/policy"
)

// Two nodes on one store: what node A's directory commits, node B's finds
// by Reload, as the same kinds of change, marked Reloaded, told to its
// subscribers, with no audit event of its own; B's merged policy follows
// at once (a leaver's key stops authenticating there too).
func TestReloadDiffsWhatAnotherNodeCommitted(t *testing.T) {
	dir := t.TempDir()
	aliceKey, danaKey := keyLine(t), keyLine(t)
	cfg := testPolicy(t, dir, aliceKey)
	st, a := open(t, cfg)
	b, err := identity.Open(context.Background(), identity.Options{Store: st, Policy: func() *policy.Config { return cfg }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var told []identity.Change
	b.Subscribe(func(c []identity.Change) { told = append(told, c...) })
	var danaID string
	if err := a.Update(ctx, "acme-okta", func(tx *identity.Tx) error {
		u, _, err := tx.CreateUser(identity.User{UserName: "dana@acme.example", Active: true, Keys: []string{danaKey}})
		danaID = u.ID
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if b.Merge(cfg).User("dana@acme.example") != nil {
		t.Fatal("B saw the change before it reloaded")
	}
	events := func() int {
		evs, err := st.Events(ctx, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	before := events()
	got, err := b.Reload(ctx)
	if err != nil || len(got) != 1 || got[0].Kind != identity.Joiner || got[0].UserName != "dana@acme.example" ||
		got[0].Directory != "acme-okta" || !got[0].Reloaded {
		t.Fatalf("Reload = %+v, %v; want one reloaded joiner", got, err)
	}
	if n := events(); n != before {
		t.Fatalf("Reload wrote %d audit events; the origin writes them", n-before)
	}
	if len(told) != 1 || b.Merge(cfg).User("dana@acme.example") == nil {
		t.Fatalf("subscribers told %+v; merged dana %v", told, b.Merge(cfg).User("dana@acme.example"))
	}
	// Nothing new: nothing told.
	if got, err := b.Reload(ctx); err != nil || len(got) != 0 {
		t.Fatalf("second Reload = %+v, %v", got, err)
	}
	// A group (mover), then deactivation (leaver).
	if err := a.Update(ctx, "acme-okta", func(tx *identity.Tx) error {
		_, _, err := tx.CreateGroup(identity.Group{DisplayName: "sysadmins", Members: []string{danaID}})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Reload(ctx); err != nil || len(got) != 1 || got[0].Kind != identity.Mover {
		t.Fatalf("Reload after group = %+v, %v; want a mover", got, err)
	}
	if err := a.Update(ctx, "acme-okta", func(tx *identity.Tx) error {
		u, err := tx.User(danaID)
		if err != nil {
			return err
		}
		u.Active = false
		_, err = tx.SaveUser(u)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	before = events()
	if got, err := b.Reload(ctx); err != nil || len(got) != 1 || got[0].Kind != identity.Leaver {
		t.Fatalf("Reload after deactivation = %+v, %v; want a leaver", got, err)
	}
	if b.Merge(cfg).User("dana@acme.example") != nil {
		t.Fatal("a leaver is still in B's merged policy")
	}
	if n := events(); n != before {
		t.Fatalf("Reload wrote %d audit events; the origin writes them", n-before)
	}
}
