package gateway

import (
	"crypto/rand"
	"testing"
	"time"
)

func TestCertTTLNeverOutlivesGrant(t *testing.T) {
	now := time.Date(2026, 11, 29, 14, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name     string
		ttl      time.Duration
		deadline time.Time
		want     time.Duration
	}{
		{"standing access uses cert_ttl", 2 * time.Minute, time.Time{}, 2 * time.Minute},
		{"long grant uses cert_ttl", 2 * time.Minute, now.Add(time.Hour), 2 * time.Minute},
		{"grant ending sooner wins", 2 * time.Minute, now.Add(45 * time.Second), 45 * time.Second},
	} {
		if got := certTTL(tc.ttl, now, tc.deadline); got != tc.want {
			t.Errorf("%s: certTTL = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestUserMessageHidesInternalCauses(t *testing.T) {
	err := internalError("store", errSecret)
	if got := userMessage(err); got != "warden: internal error; the session was refused and logged" {
		t.Fatalf("user message %q", got)
	}
	if got := userMessage(refusal("unknown host %s", "x")); got != "warden: unknown host x" {
		t.Fatalf("user message %q", got)
	}
	if got := userMessage(errSecret); got != "warden: internal error; the session was refused and logged" {
		t.Fatalf("raw error shown: %q", got)
	}
}

var errSecret = &secretErr{}

type secretErr struct{}

func (*secretErr) Error() string { return "token s.ABCDEF leaked" }

func TestSessionIDsAreSafeAndDistinct(t *testing.T) {
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		id, err := newSessionID(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 26 || seen[id] {
			t.Fatalf("id %q (len %d, dup %v)", id, len(id), seen[id])
		}
		for _, c := range id {
			if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
				t.Fatalf("id %q has %q", id, c)
			}
		}
		seen[id] = true
	}
}
