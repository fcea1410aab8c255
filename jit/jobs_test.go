package jit

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/notify"
)

// queued returns the service's earliest queued deadline.
func (e *env) queued() (time.Time, bool) {
	e.svc.mu.Lock()
	defer e.svc.mu.Unlock()
	return e.svc.queue.next()
}

func TestExpireGrantJobEndsOnce(t *testing.T) {
	e := newEnv(t)
	g := e.grant(time.Hour)
	ctx := context.Background()
	e.clock.Set(g.ExpiresAt)
	for i := 0; i < 2; i++ {
		if err := e.svc.expireGrantJob(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
	}
	if end := e.nextEnd(); end.EndReason != EndExpired {
		t.Errorf("ended %+v", end)
	}
	select {
	case end := <-e.ends:
		t.Errorf("ended twice: %+v", end)
	default:
	}
	if n := len(e.events(EventGrantExpired)); n != 1 {
		t.Errorf("%d expiry events", n)
	}
}

func TestExpireGrantJobBeforeExpiryWaits(t *testing.T) {
	e := newEnv(t)
	g := e.grant(time.Hour)
	e.svc.mu.Lock()
	e.svc.queue = newTimetable() // forget what Approve queued
	e.svc.mu.Unlock()
	e.clock.Set(g.ExpiresAt.Add(-time.Second)) // as if the clock had stepped back
	if err := e.svc.expireGrantJob(context.Background(), g.ID); err != nil {
		t.Fatal(err)
	}
	if row := e.grantRow(g.ID); !row.EndedAt.IsZero() {
		t.Fatalf("grant ended early: %+v", row)
	}
	if at, ok := e.queued(); !ok || !at.Equal(g.ExpiresAt) {
		t.Errorf("expiry re-queued for %v %v", at, ok)
	}
}

func TestWarnGrantJob(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	g := e.grant(time.Hour)
	e.clock.Set(g.ExpiresAt.Add(-warnBefore))
	for i := 0; i < 2; i++ {
		if err := e.svc.warnGrantJob(ctx, g.ID); err != nil {
			t.Fatal(err)
		}
	}
	if n, m := len(e.events(EventGrantExpiring)), len(e.notes.ofType(notify.TypeGrantExpiring)); n != 1 || m != 1 {
		t.Errorf("%d warning events, %d alerts; want 1 each", n, m)
	}

	// No warning for a grant that has already ended.
	g2 := e.grant(time.Hour)
	if _, err := e.svc.Revoke(ctx, e.user("alice"), g2.ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.warnGrantJob(ctx, g2.ID); err != nil {
		t.Fatal(err)
	}
	if n := len(e.events(EventGrantExpiring)); n != 1 {
		t.Errorf("warned about an ended grant: %d events", n)
	}
}

func TestExpireRequestJobLeavesDecidedRequests(t *testing.T) {
	e := newEnv(t)
	r := e.request("alice", "prod-root", time.Hour, "x", "")
	e.approve("carol", r.ID)
	e.clock.Advance(2 * time.Hour)
	if err := e.svc.expireRequestJob(context.Background(), r.ID); err != nil {
		t.Fatal(err)
	}
	if st := e.requestRow(r.ID).State; st != StateApproved {
		t.Errorf("approved request became %s", st)
	}
}

func TestFailedJobIsRetried(t *testing.T) {
	e := newEnv(t)
	var logs bytes.Buffer
	e.svc.log = slog.New(slog.NewTextHandler(&logs, nil))
	g := e.grant(time.Hour)
	e.svc.mu.Lock()
	e.svc.queue = newTimetable()
	e.svc.mu.Unlock()
	e.clock.Set(g.ExpiresAt)

	// A row that does not exist is logged, not retried.
	e.svc.do(context.Background(), deadline{at: g.ExpiresAt, job: jobExpireGrant, id: 99})
	if _, ok := e.queued(); ok {
		t.Error("job for a missing row was re-queued")
	}
	// A write that fails is retried later.
	e.store.Close()
	e.svc.do(context.Background(), deadline{at: g.ExpiresAt, job: jobExpireGrant, id: g.ID})
	if at, ok := e.queued(); !ok || !at.Equal(g.ExpiresAt.Add(retryDelay)) {
		t.Errorf("failed job re-queued for %v %v", at, ok)
	}
	if out := logs.String(); !strings.Contains(out, "missing row") || !strings.Contains(out, "will retry") {
		t.Errorf("log:\n%s", out)
	}
}
