package jit

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/notify"
)

// breakGlassGrant opens and approves a break-glass request by oscar.
func (e *env) breakGlassGrant() Grant {
	e.t.Helper()
	r := e.request("oscar", "break-glass", time.Hour, "core switch down", "INC-9")
	e.approve("carol", r.ID)
	_, g := e.approve("erin", r.ID)
	if g == nil {
		e.t.Fatal("no break-glass grant")
	}
	return *g
}

func TestRecordUseAlertsOnFirstBreakGlassUse(t *testing.T) {
	e := newEnv(t)
	g := e.breakGlassGrant()
	ctx := context.Background()
	first, err := e.svc.RecordUse(ctx, g.ID, "sess1", "root", "web01")
	if err != nil || !first {
		t.Fatalf("first use = %v, %v", first, err)
	}
	first, err = e.svc.RecordUse(ctx, g.ID, "sess2", "root", "web01")
	if err != nil || first {
		t.Fatalf("second use = %v, %v", first, err)
	}
	evs := e.events(EventBreakGlassUsed)
	if len(evs) != 1 || evs[0].Subject != "grant:1" || evs[0].Actor != "oscar" ||
		evs[0].Data["session_id"] != "sess1" || evs[0].Data["reason"] != "core switch down" || evs[0].Data["ticket"] != "INC-9" {
		t.Fatalf("events %+v", evs)
	}
	alerts := e.notes.ofType(notify.TypeBreakGlassUsed)
	if len(alerts) != 1 || alerts[0].Text != ":rotating_light: BREAK-GLASS grant 1 used: oscar logged in as root on web01 (session sess1)" {
		t.Errorf("alerts %+v", alerts)
	}
}

func TestRecordUseOfOrdinaryGrantRecordsNothing(t *testing.T) {
	e := newEnv(t)
	g := e.grant(time.Hour)
	first, err := e.svc.RecordUse(context.Background(), g.ID, "s", "root", "web01")
	if err != nil || first {
		t.Fatalf("RecordUse = %v, %v", first, err)
	}
	if n := len(e.events(EventBreakGlassUsed)); n != 0 {
		t.Errorf("%d break-glass events", n)
	}
	_, err = e.svc.RecordUse(context.Background(), 99, "s", "root", "web01")
	wantRefusal(t, err, ErrNotFound, "grant 99 does not exist")
}

func TestRecordUseConcurrentSessionsAlertOnce(t *testing.T) {
	e := newEnv(t)
	g := e.breakGlassGrant()
	var wg sync.WaitGroup
	var mu sync.Mutex
	firsts := 0
	start := make(chan struct{})
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			first, err := e.svc.RecordUse(context.Background(), g.ID, "s", "root", "web01")
			if err != nil {
				t.Error(err)
			}
			if first {
				mu.Lock()
				firsts++
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	if firsts != 1 || len(e.events(EventBreakGlassUsed)) != 1 {
		t.Errorf("%d first uses, %d events", firsts, len(e.events(EventBreakGlassUsed)))
	}
}

// A grant that ended after the gateway admitted a channel must not be
// marked used: the session that would run under it is refused.
func TestRecordUseRefusesEndedGrant(t *testing.T) {
	ctx := context.Background()
	t.Run("expired", func(t *testing.T) {
		e := newEnv(t)
		g := e.grant(30 * time.Minute)
		e.clock.Set(g.ExpiresAt) // Run is not running: the row still says running
		_, err := e.svc.RecordUse(ctx, g.ID, "s", "root", "web01")
		wantRefusal(t, err, ErrState, "grant 1 has ended (expired)")
		e.clock.Set(g.ExpiresAt.Add(-time.Nanosecond))
		if _, err := e.svc.RecordUse(ctx, g.ID, "s", "root", "web01"); err != nil {
			t.Fatalf("last moment of the window: %v", err)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		e := newEnv(t)
		g := e.grant(time.Hour)
		if _, err := e.svc.Revoke(ctx, e.user("carol"), g.ID, "done"); err != nil {
			t.Fatal(err)
		}
		_, err := e.svc.RecordUse(ctx, g.ID, "s", "root", "web01")
		wantRefusal(t, err, ErrState, "grant 1 has ended (revoked)")
	})
	t.Run("relinquished break-glass records no use", func(t *testing.T) {
		e := newEnv(t)
		g := e.breakGlassGrant()
		if _, err := e.svc.Revoke(ctx, e.user("oscar"), g.ID, ""); err != nil {
			t.Fatal(err)
		}
		_, err := e.svc.RecordUse(ctx, g.ID, "s", "root", "web01")
		wantRefusal(t, err, ErrState, "grant 1 has ended (relinquished)")
		if n := len(e.events(EventBreakGlassUsed)); n != 0 {
			t.Errorf("%d break-glass use events for an ended grant", n)
		}
	})
	t.Run("no longer eligible", func(t *testing.T) {
		e := newEnv(t)
		g := e.grant(time.Hour)
		e.pol.Store(mustPolicy(t, "  - {name: alice, groups: [sysadmins]}=>  - {name: alice, groups: []}"))
		_, err := e.svc.RecordUse(ctx, g.ID, "s", "root", "web01")
		wantRefusal(t, err, ErrState, "grant 1 is no longer allowed by the policy")
	})
}
