package gateway

import (
	"net"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/policy"
)

// fakeConn is a connection from a chosen address that records its Close.
type fakeConn struct {
	net.Conn
	remote net.Addr
	mu     sync.Mutex
	closed bool
}

func newFakeConn(t *testing.T, ip string) *fakeConn {
	a, b := net.Pipe()
	t.Cleanup(func() { a.Close(); b.Close() })
	return &fakeConn{Conn: a, remote: &net.TCPAddr{IP: net.ParseIP(ip), Port: 40000}}
}

func (c *fakeConn) RemoteAddr() net.Addr { return c.remote }
func (c *fakeConn) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	return c.Conn.Close()
}
func (c *fakeConn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// testGate is a gate with a long grace time (tests of expiry set their
// own) and a report on a fixed clock.
func testGate(max, perSource int) (*gate, *preauthReport) {
	now := func() time.Time { return time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC) }
	r := newPreauthReport(now)
	g := newGate(policy.Limits{LoginGraceTime: policy.Duration(time.Hour), MaxStartups: max, MaxStartupsPerSource: perSource}, r, now)
	return g, r
}

func admitFrom(t *testing.T, g *gate, ip string) (*fakeConn, *gateConn) {
	t.Helper()
	fc := newFakeConn(t, ip)
	return fc, g.admit(fc)
}

// event returns the data of the report's event for src, failing if there
// is not exactly one.
func eventFor(t *testing.T, r *preauthReport, src string) map[string]any {
	t.Helper()
	var found map[string]any
	for _, e := range r.flush(true) {
		if e.Type != "auth.failed" || e.Subject != e.Data["client_addr"] {
			t.Fatalf("event %+v", e)
		}
		if e.Subject == src {
			if found != nil {
				t.Fatalf("two events for %s", src)
			}
			found = e.Data
		}
	}
	if found == nil {
		t.Fatalf("no event for %s", src)
	}
	return found
}

func TestGatePerSourceCapDropsTheNextConnectionOfThatSourceOnly(t *testing.T) {
	g, r := testGate(100, 3)
	for i := 0; i < 3; i++ {
		if _, gc := admitFrom(t, g, "192.0.2.7"); gc == nil {
			t.Fatalf("connection %d from 192.0.2.7 dropped", i+1)
		}
	}
	if _, gc := admitFrom(t, g, "192.0.2.7"); gc != nil {
		t.Fatal("fourth connection from 192.0.2.7 admitted over max_startups_per_source 3")
	}
	if _, gc := admitFrom(t, g, "192.0.2.8"); gc == nil {
		t.Fatal("another source was dropped")
	}
	per, n := g.held()
	if n != 4 || per["192.0.2.7"] != 3 || per["192.0.2.8"] != 1 {
		t.Fatalf("held %v, %d", per, n)
	}
	d := eventFor(t, r, "192.0.2.7")
	if d["dropped"].(map[string]int)[dropPerSource] != 1 || d["reason"] != "too many unauthenticated connections" {
		t.Fatalf("event %v", d)
	}
}

// TestGateFullTableEvictsTheHeaviestSourcesOldest checks the fair-share
// rule: a source holding nothing gets in by evicting the oldest connection
// of the source holding the most, and nobody gets in once every source
// holds as much as the newcomer would.
func TestGateFullTableEvictsTheHeaviestSourcesOldest(t *testing.T) {
	g, r := testGate(4, 3)
	oldest, _ := admitFrom(t, g, "198.51.100.1")
	admitFrom(t, g, "198.51.100.1")
	admitFrom(t, g, "198.51.100.1")
	admitFrom(t, g, "198.51.100.2")
	if _, n := g.held(); n != 4 {
		t.Fatalf("held %d", n)
	}

	admin, gc := admitFrom(t, g, "203.0.113.9")
	if gc == nil {
		t.Fatal("a source holding nothing was dropped while another held 3 of 4 slots")
	}
	if !oldest.isClosed() {
		t.Fatal("the heaviest source's oldest connection was not closed")
	}
	// 198.51.100.1 now holds 2, the admin 1: a second admin connection
	// would leave them at 1 and 2, a swap that gains nothing: dropped.
	if _, gc := admitFrom(t, g, "203.0.113.9"); gc != nil {
		t.Fatal("eviction in favour of a source holding as much")
	}
	// A third source holding nothing still gets in (evicting from .1).
	if _, gc := admitFrom(t, g, "203.0.113.10"); gc == nil {
		t.Fatal("third source dropped")
	}
	// Now every source holds one: the table is fairly shared, drop.
	if _, gc := admitFrom(t, g, "203.0.113.11"); gc != nil {
		t.Fatal("admitted into a fairly shared full table")
	}
	if admin.isClosed() {
		t.Fatal("the admin's connection was evicted")
	}
	per, n := g.held()
	if n != 4 || len(per) != 4 {
		t.Fatalf("held %v, %d", per, n)
	}
	events := r.flush(true)
	got := map[string]map[string]any{}
	for _, e := range events {
		got[e.Subject] = e.Data
	}
	if got["198.51.100.1"]["evicted"] != 2 || got["203.0.113.9"]["dropped"].(map[string]int)[dropGlobal] != 1 ||
		got["203.0.113.11"]["dropped"].(map[string]int)[dropGlobal] != 1 {
		t.Fatalf("events %v", got)
	}
}

func TestGateSlotReleasedOnceByCloseAuthOrExpiry(t *testing.T) {
	g, r := testGate(2, 2)
	_, a := admitFrom(t, g, "192.0.2.1")
	_, b := admitFrom(t, g, "192.0.2.1")

	// Authentication frees the slot and switches to the large buffer; the
	// later Close does not count as an unauthenticated end.
	g.authenticated(a)
	if !a.authed.Load() {
		t.Fatal("not marked authenticated")
	}
	a.Close()
	if _, n := g.held(); n != 1 {
		t.Fatalf("held %d after authentication", n)
	}
	// Expiry closes the socket and frees the slot; authentication after
	// that does nothing (the socket is already closed).
	g.expire(b)
	g.authenticated(b)
	if b.authed.Load() {
		t.Fatal("expired connection marked authenticated")
	}
	b.Close()
	if _, n := g.held(); n != 0 {
		t.Fatalf("held %d", n)
	}
	d := eventFor(t, r, "192.0.2.1")
	if d["timed_out"] != 1 || d["connections"] != 0 || d["reason"] != "login grace time exceeded" {
		t.Fatalf("event %v", d)
	}
}

func TestGateGraceTimerClosesAStalledConnection(t *testing.T) {
	r := newPreauthReport(time.Now)
	g := newGate(policy.Limits{LoginGraceTime: policy.Duration(20 * time.Millisecond), MaxStartups: 5, MaxStartupsPerSource: 5}, r, time.Now)
	fc, gc := admitFrom(t, g, "192.0.2.1")
	if gc == nil {
		t.Fatal("dropped")
	}
	deadline := time.Now().Add(30 * time.Second)
	for !fc.isClosed() {
		if time.Now().After(deadline) {
			t.Fatal("stalled connection never closed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if _, n := g.held(); n != 0 {
		t.Fatalf("held %d", n)
	}
}

func TestGateCloseAllForShutdown(t *testing.T) {
	g, _ := testGate(10, 10)
	a, _ := admitFrom(t, g, "192.0.2.1")
	b, _ := admitFrom(t, g, "192.0.2.2")
	g.closeAll()
	if !a.isClosed() || !b.isClosed() {
		t.Fatal("pre-authentication connections left open at shutdown")
	}
	if _, gc := admitFrom(t, g, "192.0.2.3"); gc != nil {
		t.Fatal("admitted after shutdown")
	}
}

// TestNewGateNeverUnlimited: a policy built in code (zero Limits) gets the
// loader's defaults, not "no limit".
func TestNewGateNeverUnlimited(t *testing.T) {
	g := newGate(policy.Limits{}, newPreauthReport(time.Now), time.Now)
	if g.grace != 30*time.Second || g.max != 100 || g.perSource != 10 {
		t.Fatalf("gate %v %d %d", g.grace, g.max, g.perSource)
	}
}

func TestSourceOfGroupsIPv6By64(t *testing.T) {
	for _, tc := range []struct{ addr, want string }{
		{"192.0.2.1:22", "192.0.2.1"},
		{"[::ffff:192.0.2.1]:22", "192.0.2.1"},
		{"[2001:db8:1:2:aaaa::1]:22", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::9]:22", "2001:db8:1:2::/64"},
		{"[fe80::1%eth0]:22", "fe80::/64"},
	} {
		ap := net.TCPAddrFromAddrPort(mustAddrPort(t, tc.addr))
		if got := sourceOf(ap); got != tc.want {
			t.Errorf("sourceOf(%s) = %q, want %q", tc.addr, got, tc.want)
		}
	}
	if got := sourceOf(&net.UnixAddr{Name: "/run/x", Net: "unix"}); got != "unknown" {
		t.Errorf("unix socket source %q", got)
	}
}
