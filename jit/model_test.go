package jit

import (
	"encoding/json"
	"testing"
	"time"
)

func TestGrantActiveAndRemaining(t *testing.T) {
	g := Grant{StartsAt: t0, ExpiresAt: t0.Add(time.Hour)}
	tests := []struct {
		name   string
		g      Grant
		now    time.Time
		active bool
		left   time.Duration
	}{
		{"before start", g, t0.Add(-time.Second), false, 0},
		{"at start", g, t0, true, time.Hour},
		{"midway", g, t0.Add(20 * time.Minute), true, 40 * time.Minute},
		{"last microsecond", g, t0.Add(time.Hour - time.Microsecond), true, time.Microsecond},
		{"at expiry", g, t0.Add(time.Hour), false, 0},
		{"after expiry", g, t0.Add(2 * time.Hour), false, 0},
		{"ended early", Grant{StartsAt: t0, ExpiresAt: t0.Add(time.Hour), EndedAt: t0.Add(time.Minute)}, t0.Add(2 * time.Minute), false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.g.Active(tc.now); got != tc.active {
				t.Errorf("Active = %v", got)
			}
			if got := tc.g.Remaining(tc.now); got != tc.left {
				t.Errorf("Remaining = %s, want %s", got, tc.left)
			}
		})
	}
}

func TestRequestJSON(t *testing.T) {
	r := Request{ID: 3, User: "alice", Role: "prod-root", Tenant: "acme", Duration: 90 * time.Minute,
		State: StatePending, CreatedAt: t0}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"id":3,"user":"alice","role":"prod-root","tenant":"acme","state":"pending",` +
		`"created_at":"2026-11-29T09:00:00Z","approvals":[],"duration":"1h30m0s"}`
	if string(b) != want {
		t.Errorf("JSON\n got %s\nwant %s", b, want)
	}
}
