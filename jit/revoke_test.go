package jit

import (
	"context"
	"testing"
	"time"

	"github.com/warden-gw/warden/notify"
)

func TestRevoke(t *testing.T) {
	tests := []struct {
		name, actor, reason string
		wantEnd, wantEvent  string
		wantText            string
	}{
		{"owner relinquishes", "alice", "done early", EndRelinquished, EventGrantRelinquished,
			"grant 1 (alice, prod-root on acme) was relinquished by alice: done early"},
		{"approver revokes", "carol", "suspicious <activity>", EndRevoked, EventGrantRevoked,
			"grant 1 (alice, prod-root on acme) was revoked by carol: suspicious &lt;activity&gt;"},
		{"another approver revokes", "dan", "", EndRevoked, EventGrantRevoked,
			"grant 1 (alice, prod-root on acme) was revoked by dan"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			g := e.grant(time.Hour)
			e.clock.Advance(10 * time.Minute)
			got, err := e.svc.Revoke(context.Background(), e.user(tc.actor), g.ID, tc.reason)
			if err != nil {
				t.Fatal(err)
			}
			end := t0.Add(10 * time.Minute)
			if got.EndReason != tc.wantEnd || !got.EndedAt.Equal(end) {
				t.Errorf("Revoke = %+v", got)
			}
			if cb := e.nextEnd(); cb != got {
				t.Errorf("OnGrantEnd got %+v, want %+v", cb, got)
			}
			if row := e.grantRow(g.ID); row != got {
				t.Errorf("row %+v", row)
			}
			evs := e.events(tc.wantEvent)
			if len(evs) != 1 || evs[0].Actor != tc.actor || evs[0].Subject != "grant:1" ||
				evs[0].Data["comment"] != tc.reason || evs[0].Data["reason"] != "INC-4711" || evs[0].Data["end_reason"] != tc.wantEnd {
				t.Errorf("events %+v", evs)
			}
			if ev := e.notes.next(t, notify.TypeGrantEnded); ev.Text != tc.wantText {
				t.Errorf("alert %q", ev.Text)
			}
			if _, ok, _ := e.svc.ActiveGrant(context.Background(), "alice", "prod-root"); ok {
				t.Error("grant still active after revocation")
			}
			e.verifyChain()
		})
	}
}

func TestRevokeRefusals(t *testing.T) {
	e := newEnv(t)
	g := e.grant(time.Hour)
	ctx := context.Background()
	for _, actor := range []string{"bob", "erin", "hank"} {
		_, err := e.svc.Revoke(ctx, e.user(actor), g.ID, "")
		wantRefusal(t, err, ErrForbidden, "you may not revoke grant 1: only its owner or an approver of prod-root may")
	}
	_, err := e.svc.Revoke(ctx, nil, g.ID, "")
	wantRefusal(t, err, ErrForbidden, "unknown user")
	_, err = e.svc.Revoke(ctx, e.user("carol"), 99, "")
	wantRefusal(t, err, ErrNotFound, "grant 99 does not exist")
	_, err = e.svc.Revoke(ctx, e.user("carol"), g.ID, "a\x00b")
	wantRefusal(t, err, ErrInvalid, "reason has a control or invisible character at byte 1")
	if row := e.grantRow(g.ID); !row.EndedAt.IsZero() {
		t.Fatalf("refused revocations ended the grant: %+v", row)
	}

	if _, err := e.svc.Revoke(ctx, e.user("alice"), g.ID, ""); err != nil {
		t.Fatal(err)
	}
	_, err = e.svc.Revoke(ctx, e.user("carol"), g.ID, "")
	wantRefusal(t, err, ErrState, "grant 1 already ended (relinquished)")
	// A stranger learns nothing about the grant's state.
	_, err = e.svc.Revoke(ctx, e.user("bob"), g.ID, "")
	wantRefusal(t, err, ErrForbidden, "you may not revoke grant 1: only its owner or an approver of prod-root may")
}

func TestRevokeAfterExpiryRecordsExpiry(t *testing.T) {
	e := newEnv(t) // Run is not running, so nobody has marked the expiry yet
	g := e.grant(time.Hour)
	e.clock.Advance(time.Hour + time.Minute)
	_, err := e.svc.Revoke(context.Background(), e.user("carol"), g.ID, "")
	wantRefusal(t, err, ErrState, "grant 1 already ended (expired)")
	row := e.grantRow(g.ID)
	if row.EndReason != EndExpired || !row.EndedAt.Equal(g.ExpiresAt) {
		t.Errorf("row %+v", row)
	}
	if cb := e.nextEnd(); cb.EndReason != EndExpired {
		t.Errorf("callback %+v", cb)
	}
	if evs := e.events(EventGrantExpired); len(evs) != 1 || evs[0].Actor != "warden" {
		t.Errorf("events %+v", evs)
	}
}

func TestDeprovision(t *testing.T) {
	e := newEnv(t)
	alice := e.grant(time.Hour)
	r := e.request("bob", "prod-root", time.Hour, "x", "")
	_, bob := e.approve("carol", r.ID)
	old := e.grant(time.Minute) // alice again, a short one that runs out first
	e.clock.Advance(2 * time.Minute)

	e.pol.Store(mustPolicy(t, "{name: alice, groups: [sysadmins]}=>{name: alice, groups: [helpdesk]}"))
	// The policy change alone already denies access.
	if _, ok, err := e.svc.ActiveGrant(context.Background(), "alice", "prod-root"); ok || err != nil {
		t.Fatalf("ActiveGrant after removal: %v %v", ok, err)
	}
	ended, err := e.svc.Deprovision(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ended) != 1 || ended[0].ID != alice.ID || ended[0].EndReason != EndDeprovisioned {
		t.Fatalf("ended %+v", ended)
	}
	if cb := e.nextEnd(); cb.ID != alice.ID {
		t.Errorf("callback for grant %d", cb.ID)
	}
	if row := e.grantRow(bob.ID); !row.EndedAt.IsZero() {
		t.Errorf("bob's grant ended: %+v", row)
	}
	// The expired short grant is left for the expiry job to record as expired.
	if row := e.grantRow(old.ID); !row.EndedAt.IsZero() {
		t.Errorf("expired grant recorded as %q", row.EndReason)
	}
	if evs := e.events(EventGrantDeprovisioned); len(evs) != 1 || evs[0].Actor != "warden" {
		t.Errorf("events %+v", evs)
	}
	if ended, err := e.svc.Deprovision(context.Background()); len(ended) != 0 || err != nil {
		t.Errorf("second Deprovision: %v %v", ended, err)
	}
}
