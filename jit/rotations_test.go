package jit

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// Policy edits that give break-glass a static credential in Vault KV.
const (
	vaultEdit      = "groups: [{name: sysadmins}=>credentials: {vault: {address: 'http://127.0.0.1:8200'}}\ngroups: [{name: sysadmins}"
	credentialEdit = "    eligible: [oncall]\n    approvers: [security, management]\n=>    eligible: [oncall]\n    approvers: [security, management]\n    credential: {vault_kv: secret/data/breakglass/acme}\n"
)

func newCredentialEnv(t *testing.T) *env {
	t.Helper()
	return openEnv(t, t.TempDir(), newClock(t0), mustPolicy(t, vaultEdit, credentialEdit))
}

// breakGlass opens and approves a break-glass grant for oscar.
func (e *env) breakGlass() Grant {
	e.t.Helper()
	r := e.request("oscar", "break-glass", 30*time.Minute, "INC-1 outage", "")
	e.approve("carol", r.ID)
	_, g := e.approve("erin", r.ID)
	if g == nil {
		e.t.Fatal("no grant")
	}
	return *g
}

// TestRotationOwedFromGrantStart: the final approval records, in its own
// transaction, what the grant's static credential will need: path, host
// and login, owed, with an audit event.
func TestRotationOwedFromGrantStart(t *testing.T) {
	e := newCredentialEnv(t)
	g := e.breakGlass()
	r, ok, err := LoadRotation(context.Background(), e.store.DB(), g.ID)
	if err != nil || !ok {
		t.Fatalf("no rotation recorded: %v", err)
	}
	if r.KVPath != "secret/data/breakglass/acme" || r.Host != "web01" || r.Login != "root" || r.Tenant != "acme" ||
		r.Role != "break-glass" || r.State != RotationOwed || r.User != "oscar" || r.Attempts != 0 {
		t.Errorf("rotation %+v", r)
	}
	if r.Due() {
		t.Error("due while the grant runs")
	}
	if n := len(e.events(EventRotationOwed)); n != 1 {
		t.Errorf("%d rotation.owed events", n)
	}
	// A grant of a role without a credential owes nothing.
	pg := e.grant(time.Hour)
	if _, ok, _ := LoadRotation(context.Background(), e.store.DB(), pg.ID); ok {
		t.Error("prod-root grant owes a rotation")
	}
	// Ending it makes it due, whatever the policy says afterwards.
	if _, err := e.svc.Revoke(context.Background(), e.user("oscar"), g.ID, ""); err != nil {
		t.Fatal(err)
	}
	e.pol.Store(mustPolicy(t))
	owed, err := e.svc.OwedRotations(context.Background())
	if err != nil || len(owed) != 1 || !owed[0].Due() || owed[0].Host != "web01" {
		t.Fatalf("owed %+v %v", owed, err)
	}
	e.verifyChain()
}

// TestRotationOfAnAmbiguousRoleIsOwedAndSaysWhy: a credential on a role
// covering several hosts cannot be rotated, but the grant still owes it:
// the row carries why, so every attempt fails loudly.
func TestRotationOfAnAmbiguousRoleIsOwedAndSaysWhy(t *testing.T) {
	web02 := "      - {name: web01=>      - {name: web02, address: 10.0.0.2, host_key: '" + hostKey() + "'}\n      - {name: web01"
	e := openEnv(t, t.TempDir(), newClock(t0), mustPolicy(t, vaultEdit, credentialEdit, web02))
	g := e.breakGlass()
	r, ok, err := LoadRotation(context.Background(), e.store.DB(), g.ID)
	if err != nil || !ok {
		t.Fatalf("no rotation recorded for an ambiguous role: %v", err)
	}
	if r.Host != "" || r.Login != "" || r.State != RotationOwed || !strings.Contains(r.LastError, "exactly one host") {
		t.Errorf("rotation %+v", r)
	}
}

// TestRotationAttempts: an attempt is counted with its retry time before
// it runs; a failure leaves it owed with the error; the fetched keys add
// up; success marks it done with one rotation.result event per attempt.
func TestRotationAttempts(t *testing.T) {
	e := newCredentialEnv(t)
	g := e.breakGlass()
	ctx := context.Background()
	if _, err := e.svc.Revoke(ctx, e.user("oscar"), g.ID, ""); err != nil {
		t.Fatal(err)
	}
	backoff := func(n int) time.Duration { return time.Duration(n) * time.Minute }
	r, ok, err := e.svc.BeginRotationAttempt(ctx, g.ID, backoff)
	if err != nil || !ok || r.Attempts != 1 || !r.NextAttemptAt.Equal(e.clock.Now().Add(time.Minute)) {
		t.Fatalf("begin: %+v %v %v", r, ok, err)
	}
	stored, _, _ := LoadRotation(ctx, e.store.DB(), g.ID)
	if stored.Attempts != 1 || !stored.NextAttemptAt.Equal(r.NextAttemptAt) {
		t.Errorf("the attempt was not stored before it ran: %+v", stored)
	}
	if keys, err := e.svc.RetireKey(ctx, g.ID, "AAAAone"); err != nil || len(keys) != 1 {
		t.Fatalf("retire: %v %v", keys, err)
	}
	if _, err := e.svc.RetireKey(ctx, g.ID, "bad blob"); err == nil {
		t.Error("a blob with a space was accepted")
	}
	if _, err := e.svc.FinishRotationAttempt(ctx, g.ID, RotationOutcome{Err: errors.New("rotate: sources: planted"), OldFingerprint: "SHA256:a"}); err != nil {
		t.Fatal(err)
	}
	r, _, _ = LoadRotation(ctx, e.store.DB(), g.ID)
	if r.State != RotationFailed || !strings.Contains(r.LastError, "planted") || r.OldFingerprint != "SHA256:a" || !r.Owed() {
		t.Errorf("after a failure: %+v", r)
	}
	e.clock.Advance(time.Minute)
	r, _, _ = e.svc.BeginRotationAttempt(ctx, g.ID, backoff)
	if r.Attempts != 2 || !r.NextAttemptAt.Equal(e.clock.Now().Add(2*time.Minute)) {
		t.Errorf("second attempt %+v", r)
	}
	keys, _ := e.svc.RetireKey(ctx, g.ID, "AAAAtwo")
	if keys2, _ := e.svc.RetireKey(ctx, g.ID, "AAAAtwo"); len(keys) != 2 || len(keys2) != 2 {
		t.Errorf("retired %v then %v", keys, keys2)
	}
	if _, err := e.svc.FinishRotationAttempt(ctx, g.ID, RotationOutcome{NewFingerprint: "SHA256:b"}); err != nil {
		t.Fatal(err)
	}
	r, _, _ = LoadRotation(ctx, e.store.DB(), g.ID)
	if r.State != RotationDone || r.LastError != "" || r.DoneAt.IsZero() || r.NewFingerprint != "SHA256:b" || len(r.Retire) != 2 {
		t.Errorf("after success: %+v", r)
	}
	if _, ok, _ := e.svc.BeginRotationAttempt(ctx, g.ID, backoff); ok {
		t.Error("a done rotation began another attempt")
	}
	evs := e.events(EventRotationResult)
	if len(evs) != 2 || evs[0].Data["ok"] != false || evs[1].Data["ok"] != true || evs[1].Data["host"] != "web01" {
		t.Errorf("events %+v", evs)
	}
	if owed, _ := OwedRotations(ctx, e.store.DB()); len(owed) != 0 {
		t.Errorf("owed after done: %+v", owed)
	}
	e.verifyChain()
}

// TestEnsureRotationForAnOlderGrant: a grant started before rotations were
// recorded gets one from the current policy when it ends; a role without
// a credential gets none.
func TestEnsureRotationForAnOlderGrant(t *testing.T) {
	e := openEnv(t, t.TempDir(), newClock(t0), mustPolicy(t))
	g := e.breakGlass() // no credential: nothing recorded
	ctx := context.Background()
	if _, ok, err := e.svc.EnsureRotation(ctx, g); ok || err != nil {
		t.Fatalf("ensure without a credential: %v %v", ok, err)
	}
	e.pol.Store(mustPolicy(t, vaultEdit, credentialEdit))
	r, ok, err := e.svc.EnsureRotation(ctx, g)
	if err != nil || !ok || r.Host != "web01" || r.State != RotationOwed {
		t.Fatalf("ensure: %+v %v %v", r, ok, err)
	}
	r2, ok, _ := e.svc.EnsureRotation(ctx, g)
	if !ok || r2.ID != r.ID {
		t.Errorf("a second ensure made another row: %+v", r2)
	}
}
