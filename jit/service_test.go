package jit

import (
	"context"
	"testing"
	"time"

	"github.com/warden-gw/warden/notify"
	"github.com/warden-gw/warden/policy"
)

// The webhook is what the gateway passes as the Notifier.
var _ Notifier = (*notify.Webhook)(nil)

func TestNewRequiresStoreAndPolicy(t *testing.T) {
	e := newEnv(t)
	if _, err := New(Options{Policy: e.pol.Load}); err == nil || err.Error() != "jit: no store" {
		t.Errorf("no store: %v", err)
	}
	if _, err := New(Options{Store: e.store}); err == nil || err.Error() != "jit: no policy" {
		t.Errorf("no policy: %v", err)
	}
}

func TestServiceWithoutNotifierOrClock(t *testing.T) {
	e := newEnv(t)
	pol := mustPolicy(t)
	s, err := New(Options{Store: e.store, Policy: func() *policy.Config { return pol }})
	if err != nil {
		t.Fatal(err)
	}
	var ended []Grant
	s.OnGrantEnd(func(g Grant) { ended = append(ended, g) })
	s.OnGrantEnd(func(g Grant) { ended = append(ended, g) })
	ctx := context.Background()
	before := time.Now().UTC().Truncate(time.Microsecond)
	r, err := s.Request(ctx, pol.User("alice"), "prod-root", time.Hour, "x", "")
	if err != nil {
		t.Fatal(err)
	}
	if r.CreatedAt.Before(before) || r.CreatedAt.Location() != time.UTC {
		t.Errorf("created_at %v does not come from the real clock in UTC", r.CreatedAt)
	}
	_, g, err := s.Approve(ctx, pol.User("carol"), r.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Revoke(ctx, pol.User("alice"), g.ID, ""); err != nil {
		t.Fatal(err)
	}
	if len(ended) != 2 || ended[0].ID != g.ID || ended[1].ID != g.ID {
		t.Errorf("callbacks got %+v", ended)
	}
}
