package policy

import (
	"testing"
	"time"
)

func TestLimitsDefaults(t *testing.T) {
	c := mustParse(t, []byte("{}\n"))
	want := Limits{LoginGraceTime: Duration(30 * time.Second), MaxStartups: 100, MaxStartupsPerSource: 10}
	if c.Limits != want {
		t.Fatalf("Limits = %+v, want %+v", c.Limits, want)
	}
	// A section that sets one key keeps the defaults of the others.
	c = mustParse(t, fixture("limits: {max_startups: 20}"))
	want.MaxStartups = 20
	if c.Limits != want {
		t.Fatalf("Limits = %+v, want %+v", c.Limits, want)
	}
	// The per-source default never exceeds a smaller global cap.
	c = mustParse(t, fixture("limits: {max_startups: 4}"))
	if c.Limits.MaxStartupsPerSource != 4 {
		t.Fatalf("MaxStartupsPerSource = %d, want 4", c.Limits.MaxStartupsPerSource)
	}
}

func TestLimitsExplicitValues(t *testing.T) {
	c := mustParse(t, fixture("limits:", "  login_grace_time: 1m", "  max_startups: 500", "  max_startups_per_source: 500"))
	want := Limits{LoginGraceTime: Duration(time.Minute), MaxStartups: 500, MaxStartupsPerSource: 500}
	if c.Limits != want {
		t.Fatalf("Limits = %+v, want %+v", c.Limits, want)
	}
}

// TestLimitsErrors tries to switch the limits off or make them meaningless:
// every such value is an error, not a silent default.
func TestLimitsErrors(t *testing.T) {
	const countHint = "(hint: a positive number of connections; there is no way to switch the limit off)"
	runErrCases(t, []errCase{
		{"grace zero", fixture("limits: {login_grace_time: 0s}"),
			[]string{"1: login_grace_time must be positive, not 0s"}},
		{"grace too short", fixture("limits: {login_grace_time: 500ms}"),
			[]string{"1: login_grace_time 500ms is outside 1s..10m (hint: OpenSSH uses 2m; 30s is plenty for a key)"}},
		{"grace of a day", fixture("limits: {login_grace_time: 24h}"),
			[]string{"1: login_grace_time 24h0m0s is outside 1s..10m (hint: OpenSSH uses 2m; 30s is plenty for a key)"}},
		{"max_startups zero", fixture("limits: {max_startups: 0}"),
			[]string{"1: max_startups 0 is outside 1..10000 " + countHint}},
		{"max_startups negative", fixture("limits: {max_startups: -1}"),
			[]string{"1: max_startups -1 is outside 1..10000 " + countHint}},
		{"max_startups huge", fixture("limits: {max_startups: 1000000}"),
			[]string{"1: max_startups 1000000 is outside 1..10000 " + countHint}},
		{"max_startups as text", fixture("limits: {max_startups: lots}"),
			[]string{`1: max_startups must be a whole number, not "lots"`}},
		{"per source above global", fixture("limits:", "  max_startups: 5", "  max_startups_per_source: 6"),
			[]string{"3: max_startups_per_source 6 is above max_startups 5 (hint: one source may hold at most all of max_startups)"}},
		{"unknown key", fixture("limits: {max_sessions: 5}"),
			[]string{`1: unknown key "max_sessions" in limits (hint: expected one of: login_grace_time, max_startups, max_startups_per_source)`}},
	})
}
