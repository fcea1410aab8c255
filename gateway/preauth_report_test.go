package gateway

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newFakeClock() *fakeClock           { return &fakeClock{t: time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC)} }
func mustAddrPort(t *testing.T, s string) netip.AddrPort {
	t.Helper()
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		t.Fatal(err)
	}
	return ap
}

func TestReportOneEventPerSourcePerMinute(t *testing.T) {
	clk := newFakeClock()
	r := newPreauthReport(clk.now)
	for i := 0; i < 500; i++ {
		r.failed("192.0.2.1", "root@web01")
		r.rejectedKey("192.0.2.1", []byte{byte(i % 3)})
		if i%100 == 0 {
			r.ended("192.0.2.1")
		}
		clk.add(100 * time.Millisecond) // 50 s in all
	}
	r.failed("192.0.2.2", "admin")
	if ev := r.flush(false); len(ev) != 0 {
		t.Fatalf("flushed before the minute ran: %+v", ev)
	}
	clk.add(10 * time.Second) // 60 s after 192.0.2.1's first failure
	ev := r.flush(false)
	if len(ev) != 1 || ev[0].Subject != "192.0.2.1" {
		t.Fatalf("events %+v", ev)
	}
	d := ev[0].Data
	want := map[string]any{"attempts": 500, "keys": 3, "keys_capped": false, "connections": 5, "timed_out": 0,
		"evicted": 0, "other_user_attempts": 0, "reason": "unknown public key",
		"since": "2026-12-02T08:00:00Z", "until": "2026-12-02T08:01:00Z"}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s = %v, want %v", k, d[k], v)
		}
	}
	if fmt.Sprint(d["users"]) != "[root@web01]" || !ev[0].TS.Equal(clk.now()) {
		t.Fatalf("users %v ts %v", d["users"], ev[0].TS)
	}
	// The second source's minute runs 50 s later; the first source starts
	// a new window with its next failure.
	r.failed("192.0.2.1", "root@web01")
	clk.add(49 * time.Second)
	if ev := r.flush(false); len(ev) != 0 {
		t.Fatalf("events %+v", ev)
	}
	clk.add(time.Second)
	if ev := r.flush(false); len(ev) != 1 || ev[0].Subject != "192.0.2.2" || ev[0].Data["attempts"] != 1 {
		t.Fatalf("events %+v", ev)
	}
	// Shutdown writes the open windows too.
	if ev := r.flush(true); len(ev) != 1 || ev[0].Subject != "192.0.2.1" || ev[0].Data["attempts"] != 1 {
		t.Fatalf("events %+v", ev)
	}
	if ev := r.flush(true); len(ev) != 0 {
		t.Fatalf("flushed twice: %+v", ev)
	}
}

func TestReportReasonWithoutRejectedKeys(t *testing.T) {
	r := newPreauthReport(newFakeClock().now)
	r.failed("192.0.2.1", "root") // a password try: no key was rejected
	if d := eventFor(t, r, "192.0.2.1"); d["reason"] != "authentication refused" || d["keys"] != 0 {
		t.Fatalf("event %v", d)
	}
}

func TestReportEndedAloneIsNoEvent(t *testing.T) {
	r := newPreauthReport(newFakeClock().now)
	r.ended("192.0.2.1") // a port scan or a health check
	if ev := r.flush(true); len(ev) != 0 {
		t.Fatalf("events %+v", ev)
	}
}

// TestReportBoundsWhatOneSourceCosts: users and keys are counted, not kept
// without bound, and user names are cut and neutralised.
func TestReportBoundsWhatOneSourceCosts(t *testing.T) {
	r := newPreauthReport(newFakeClock().now)
	for i := 0; i < 1000; i++ {
		r.failed("192.0.2.1", fmt.Sprintf("u%d", i%20))
		r.rejectedKey("192.0.2.1", []byte(fmt.Sprint(i)))
	}
	rec := r.bySrc["192.0.2.1"]
	if len(rec.users) != reportMaxUsers || len(rec.keys) != reportMaxKeys {
		t.Fatalf("kept %d users, %d keys", len(rec.users), len(rec.keys))
	}
	d := eventFor(t, r, "192.0.2.1")
	if d["attempts"] != 1000 || d["keys"] != reportMaxKeys || d["keys_capped"] != true || d["other_user_attempts"] != 600 {
		t.Fatalf("event %v", d)
	}

	r.failed("192.0.2.2", "root@web\x1b]52;c;ZXZpbA==\x07\u202eevil\xff"+strings.Repeat("x", 100))
	users := eventFor(t, r, "192.0.2.2")["users"].([]string)
	if len(users) != 1 || len(users[0]) > reportUserLen+len("…") ||
		!strings.HasPrefix(users[0], "root@web?]52;c;ZXZpbA==??evil?xxx") || !strings.HasSuffix(users[0], "…") {
		t.Fatalf("users %q", users)
	}
}

// TestReportBoundsSources sprays from many addresses: the report tracks at
// most reportMaxSources of them and counts the rest under "*", so neither
// its memory nor the rows it writes per minute grow with the spray.
func TestReportBoundsSources(t *testing.T) {
	r := newPreauthReport(newFakeClock().now)
	const n = 5000
	for i := 0; i < n; i++ {
		src := fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)
		r.failed(src, "root")
		r.dropped(src, dropGlobal)
	}
	if len(r.bySrc) != reportMaxSources+1 {
		t.Fatalf("tracking %d sources", len(r.bySrc))
	}
	ev := r.flush(true)
	if len(ev) != reportMaxSources+1 {
		t.Fatalf("%d events", len(ev))
	}
	total := 0
	for _, e := range ev {
		total += e.Data["attempts"].(int)
		if e.Subject == reportOther && e.Data["attempts"] != n-reportMaxSources {
			t.Fatalf("other: %v", e.Data)
		}
	}
	if total != n {
		t.Fatalf("counted %d attempts, want %d", total, n)
	}
}

func TestPrintable(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"root@web01", "root@web01"},
		{"a\x00b\x7fc\u0085d", "a?b?c?d"},
		{"\u202eevil\u2066", "?evil?"},
		{"caf\xc3", "caf?"},
		{"ünïcödé", "ünïcödé"},
		{strings.Repeat("é", 40), strings.Repeat("é", 32) + "…"},
	} {
		if got := printable(tc.in, reportUserLen); got != tc.want {
			t.Errorf("printable(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
