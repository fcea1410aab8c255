package jit

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/notify"
	"github.com/warden-gw/warden/policy"
)

func TestRequestRules(t *testing.T) {
	tests := []struct {
		name           string
		user, role     string
		d              time.Duration
		reason, ticket string
		kind           error
		msg            string
	}{
		{"unknown role", "alice", "nope", time.Hour, "x", "", ErrNotFound, `no role "nope" that you may request`},
		{"standing role needs no request", "hank", "web-deploy", time.Hour, "x", "", ErrInvalid, "role web-deploy is standing access and needs no request"},
		{"only eligible users may request", "carol", "prod-root", time.Hour, "x", "", ErrNotFound, `no role "prod-root" that you may request`},
		{"standing member is not eligible", "hank", "prod-root", time.Hour, "x", "", ErrNotFound, `no role "prod-root" that you may request`},
		{"a standing role of others", "alice", "web-deploy", time.Hour, "x", "", ErrNotFound, `no role "web-deploy" that you may request`},
		{"zero duration", "alice", "prod-root", 0, "x", "", ErrInvalid, "duration must be positive (asked 0s)"},
		{"negative duration", "alice", "prod-root", -time.Hour, "x", "", ErrInvalid, "duration must be positive (asked -1h)"},
		{"longer than max_duration", "alice", "prod-root", 3 * time.Hour, "x", "", ErrInvalid, "role prod-root allows at most 2h (asked 3h)"},
		{"one nanosecond over", "alice", "prod-root", 2*time.Hour + 1, "x", "", ErrInvalid, "role prod-root allows at most 2h (asked 2h0m0.000000001s)"},
		{"absurd duration", "alice", "prod-root", 1 << 62, "x", "", ErrInvalid, "role prod-root allows at most 2h (asked 1281023h53m38.427387904s)"},
		{"break-glass at most 1h", "oscar", "break-glass", 90 * time.Minute, "x", "", ErrInvalid, "role break-glass allows at most 1h (asked 1h30m)"},
		{"reason required", "alice", "prod-root", time.Hour, "", "", ErrInvalid, "prod-root requires a reason: add --reason TEXT"},
		{"blank reason is no reason", "alice", "prod-root", time.Hour, "   ", "", ErrInvalid, "prod-root requires a reason: add --reason TEXT"},
		{"break-glass always needs a reason", "oscar", "break-glass", time.Hour, "", "", ErrInvalid, "break-glass requires a reason: add --reason TEXT"},
		{"ticket required", "alice", "db-admin", time.Hour, "", "", ErrInvalid, "db-admin requires a ticket: add --ticket ID"},
		{"100 kB reason", "alice", "prod-root", time.Hour, strings.Repeat("a", 100<<10), "", ErrInvalid, "reason is 102400 bytes; at most 1024 are allowed"},
		{"reason one byte too long", "alice", "prod-root", time.Hour, strings.Repeat("é", 512) + "a", "", ErrInvalid, "reason is 1025 bytes; at most 1024 are allowed"},
		{"ticket too long", "alice", "db-admin", time.Hour, "", strings.Repeat("T", 129), ErrInvalid, "ticket is 129 bytes; at most 128 are allowed"},
		{"newline in reason", "alice", "prod-root", time.Hour, "INC-1\nfake: approved", "", ErrInvalid, "reason has a control or invisible character at byte 5"},
		{"terminal escape in reason", "alice", "prod-root", time.Hour, "ok\x1b[2J", "", ErrInvalid, "reason has a control or invisible character at byte 2"},
		{"bidi override in ticket", "alice", "db-admin", time.Hour, "", "CHG\u202e1", ErrInvalid, "ticket has a control or invisible character at byte 3"},
		{"invalid UTF-8", "alice", "prod-root", time.Hour, "bad \xff", "", ErrInvalid, "reason is not valid UTF-8"},
	}
	e := newEnv(t)
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Request(context.Background(), e.user(tc.user), tc.role, tc.d, tc.reason, tc.ticket)
			wantRefusal(t, err, tc.kind, tc.msg)
		})
	}
	if n := e.count(`SELECT count(*) FROM requests`); n != 0 {
		t.Errorf("refused requests stored %d rows", n)
	}
	if n := e.count(`SELECT count(*) FROM audit_events`); n != 0 {
		t.Errorf("refused requests wrote %d audit events", n)
	}
}

func TestRequestRefusesUnknownUsers(t *testing.T) {
	e := newEnv(t)
	_, err := e.svc.Request(context.Background(), nil, "prod-root", time.Hour, "x", "")
	wantRefusal(t, err, ErrForbidden, "unknown user")
	// A user object from an older policy does not outlive its removal.
	ghost := &policy.User{Name: "mallory", Groups: []string{"sysadmins"}}
	_, err = e.svc.Request(context.Background(), ghost, "prod-root", time.Hour, "x", "")
	wantRefusal(t, err, ErrForbidden, "user mallory is not in the policy")
	// Groups come from the current policy, not from the caller's copy.
	forged := &policy.User{Name: "hank", Groups: []string{"sysadmins"}}
	_, err = e.svc.Request(context.Background(), forged, "prod-root", time.Hour, "x", "")
	wantRefusal(t, err, ErrNotFound, `no role "prod-root" that you may request`)
}

func TestRequestStoresRowEventAndAlert(t *testing.T) {
	e := newEnv(t)
	r := e.request("alice", "prod-root", 90*time.Minute, "  INC-4711 <!channel>  ", "")
	if r.ID != 1 || r.State != StatePending || r.User != "alice" || r.Tenant != "acme" ||
		r.Reason != "INC-4711 <!channel>" || r.Duration != 90*time.Minute || !r.CreatedAt.Equal(t0) {
		t.Fatalf("request %+v", r)
	}
	var reason, dur, created string
	var ticket, decided *string
	if err := e.store.DB().QueryRow(`SELECT reason, ticket, duration, created_at, decided_at FROM requests WHERE id = 1`).
		Scan(&reason, &ticket, &dur, &created, &decided); err != nil {
		t.Fatal(err)
	}
	if reason != "INC-4711 <!channel>" || ticket != nil || dur != "1h30m0s" || created != "2026-11-29T09:00:00.000000Z" || decided != nil {
		t.Errorf("row: reason %q ticket %v duration %q created %q decided %v", reason, ticket, dur, created, decided)
	}
	evs := e.events(EventRequestCreated)
	if len(evs) != 1 || evs[0].Actor != "alice" || evs[0].Subject != "request:1" ||
		evs[0].Data["reason"] != "INC-4711 <!channel>" || evs[0].Data["ticket"] != "" || evs[0].Data["role"] != "prod-root" {
		t.Errorf("events %+v", evs)
	}
	if n := len(e.events(EventBreakGlassRequested)); n != 0 {
		t.Errorf("%d break-glass events for a normal role", n)
	}
	ev := e.notes.next(t, notify.TypeRequestCreated)
	if ev.Text != "alice requests prod-root on acme for 1h30m (request 1): INC-4711 &lt;!channel&gt;" {
		t.Errorf("alert text %q", ev.Text)
	}
	if ev.Fields["request_id"] != int64(1) || ev.Fields["break_glass"] != false || ev.Fields["approvals_needed"] != 1 {
		t.Errorf("alert fields %v", ev.Fields)
	}
}

func TestBreakGlassRequestAlerts(t *testing.T) {
	e := newEnv(t)
	r := e.request("oscar", "break-glass", time.Hour, "datacenter on fire", "")
	bg := e.events(EventBreakGlassRequested)
	if len(bg) != 1 || bg[0].Subject != "request:1" || bg[0].Actor != "oscar" || bg[0].Data["reason"] != "datacenter on fire" {
		t.Fatalf("break-glass events %+v", bg)
	}
	ev := e.notes.next(t, notify.TypeRequestCreated)
	if !strings.HasPrefix(ev.Text, ":rotating_light: BREAK-GLASS oscar requests break-glass") ||
		ev.Fields["break_glass"] != true || ev.Fields["approvals_needed"] != 2 {
		t.Errorf("alert %+v for request %d", ev, r.ID)
	}
}

func TestRequestOnePendingPerRole(t *testing.T) {
	e := newEnv(t)
	first := e.request("alice", "prod-root", time.Hour, "x", "")
	_, err := e.svc.Request(context.Background(), e.user("alice"), "prod-root", time.Hour, "again", "")
	wantRefusal(t, err, ErrState, "you already have pending request 1 for prod-root")
	// Another role, or another user, is a separate request.
	e.request("alice", "db-admin", time.Hour, "", "CHG-1")
	e.request("bob", "prod-root", time.Hour, "x", "")
	// Once the first is closed, a new one may be opened.
	if _, err := e.svc.Cancel(context.Background(), e.user("alice"), first.ID); err != nil {
		t.Fatal(err)
	}
	e.request("alice", "prod-root", time.Hour, "x", "")
	// A pending request past its TTL does not block a new one: it expires.
	e.clock.Advance(time.Hour)
	r := e.request("alice", "prod-root", time.Hour, "later", "")
	if r.ID != 5 || e.requestRow(4).State != StateExpired {
		t.Errorf("new request %d; old state %s", r.ID, e.requestRow(4).State)
	}
}

func TestCancel(t *testing.T) {
	e := newEnv(t)
	r := e.request("alice", "prod-root", time.Hour, "x", "")
	ctx := context.Background()

	_, err := e.svc.Cancel(ctx, e.user("bob"), r.ID)
	wantRefusal(t, err, ErrForbidden, "request 1 is not yours")
	_, err = e.svc.Cancel(ctx, e.user("alice"), 99)
	wantRefusal(t, err, ErrNotFound, "request 99 does not exist")
	_, err = e.svc.Cancel(ctx, nil, r.ID)
	wantRefusal(t, err, ErrForbidden, "unknown user")

	e.clock.Advance(time.Minute)
	got, err := e.svc.Cancel(ctx, e.user("alice"), r.ID)
	if err != nil || got.State != StateCancelled || !got.DecidedAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("Cancel = %+v, %v", got, err)
	}
	if row := e.requestRow(r.ID); row.State != StateCancelled {
		t.Errorf("stored state %s", row.State)
	}
	if evs := e.events(EventRequestCancelled); len(evs) != 1 || evs[0].Actor != "alice" || evs[0].Subject != "request:1" {
		t.Errorf("events %+v", evs)
	}
	_, err = e.svc.Cancel(ctx, e.user("alice"), r.ID)
	wantRefusal(t, err, ErrState, "request 1 is already cancelled")
}
