package gateway

import (
	"net"
	"net/netip"
	"sync"
	"time"

	gliderssh "github.com/gliderlabs/ssh"

	"github.com/warden-gw/warden/policy"
)

// The gate bounds what a client costs before it authenticates, in the
// spirit of OpenSSH's LoginGraceTime and MaxStartups:
//
//   - A connection is admitted or dropped at accept, before the gateway
//     sends its version line or allocates anything for the handshake.
//   - An admitted connection holds a slot until it authenticates or closes.
//     At most max_startups_per_source slots per source address (IPv6: per
//     /64, the block one subscriber usually holds) and max_startups in all.
//   - A connection that has not authenticated login_grace_time after it was
//     admitted is closed.
//
// Why fair-share eviction rather than OpenSSH's random early drop
// (start:rate:full): stalled connections hold their slots for the whole
// grace time, so once the table is full a random drop refuses the next
// admin as surely as the next attacker, for as long as the attacker keeps
// it full. Instead, when the table is full, a newcomer takes the slot of
// the oldest connection of the source that holds the most, provided that
// source holds at least two more than the newcomer would. An attacker
// needs as many addresses as max_startups to shut out a source that holds
// nothing; with fewer, an admin's one connection is always admitted, and
// what is evicted is the attacker's oldest, most likely stalled, connection.
// The rule cannot oscillate: after a swap the evicted source still holds
// at least as many slots as the newcomer.
//
// What one admitted connection may cost is x/crypto's: two 4 KiB buffers,
// two goroutines, and one packet buffer of up to 256 KiB, whose length the
// client announces before sending the packet. max_startups is what bounds
// the total (100 × ~270 KiB at most, by default).
//
// Concurrency: one mutex guards the slot table. The listener's Accept
// admits; grace timers, Close and authentication release. A connection's
// slot is released exactly once (listed is the flag), and whoever releases
// it does the rest: the timer or the eviction closes the socket, Close
// reports the connection's end, authentication starts its large buffer.
type gate struct {
	grace     time.Duration
	max       int
	perSource int
	report    *preauthReport
	now       func() time.Time

	mu     sync.Mutex
	bySrc  map[string][]*gateConn // holders of a slot per source, oldest first
	n      int                    // slots held in all
	closed bool                   // shutdown: admit nothing more
}

func newGate(l policy.Limits, report *preauthReport, now func() time.Time) *gate {
	g := &gate{grace: l.LoginGraceTime.Std(), max: l.MaxStartups, perSource: l.MaxStartupsPerSource,
		report: report, now: now, bySrc: map[string][]*gateConn{}}
	// A Config built in code rather than loaded has no limits: give it the
	// loader's defaults, never "no limit".
	if g.grace <= 0 {
		g.grace = 30 * time.Second
	}
	if g.max <= 0 {
		g.max = 100
	}
	if g.perSource <= 0 || g.perSource > g.max {
		g.perSource = min(10, g.max)
	}
	return g
}

// Drop reasons, as they appear in the auth.failed event.
const (
	dropPerSource = "per_source" // the source held max_startups_per_source
	dropGlobal    = "global"     // max_startups held, and no source to evict
)

// admit decides whether c may start a handshake. It returns nil when c was
// dropped; the caller closes it. When the table is full it may evict the
// oldest connection of the heaviest source (see gate).
func (g *gate) admit(c net.Conn) *gateConn {
	src := sourceOf(c.RemoteAddr())
	g.mu.Lock()
	if g.closed {
		g.mu.Unlock()
		return nil
	}
	held := len(g.bySrc[src])
	if held >= g.perSource {
		g.mu.Unlock()
		g.report.dropped(src, dropPerSource)
		return nil
	}
	var victim *gateConn
	if g.n >= g.max {
		heavy := g.heaviestLocked()
		if len(g.bySrc[heavy]) < held+2 {
			g.mu.Unlock()
			g.report.dropped(src, dropGlobal)
			return nil
		}
		victim = g.bySrc[heavy][0]
		g.removeLocked(victim)
	}
	gc := &gateConn{Conn: c, gate: g, src: src, admit: g.now(), listed: true}
	g.bySrc[src] = append(g.bySrc[src], gc)
	g.n++
	gc.timer = time.AfterFunc(g.grace, func() { g.expire(gc) })
	g.mu.Unlock()

	if victim != nil {
		victim.timer.Stop()
		_ = victim.Conn.Close()
		g.report.evicted(victim.src)
	}
	return gc
}

// heaviestLocked returns the source that holds the most slots. The table
// is full when it is called, so it has at most max sources to look at.
func (g *gate) heaviestLocked() string {
	var best string
	var bestN int
	for src, list := range g.bySrc {
		if len(list) > bestN || len(list) == bestN && list[0].admit.Before(g.bySrc[best][0].admit) {
			best, bestN = src, len(list)
		}
	}
	return best
}

// removeLocked takes c out of the table. c must hold a slot.
func (g *gate) removeLocked(c *gateConn) {
	list := g.bySrc[c.src]
	for i, x := range list {
		if x == c {
			list = append(list[:i:i], list[i+1:]...)
			break
		}
	}
	if len(list) == 0 {
		delete(g.bySrc, c.src)
	} else {
		g.bySrc[c.src] = list
	}
	c.listed = false
	g.n--
}

// release gives back c's slot and reports whether it still held one: true
// for exactly one caller per connection.
func (g *gate) release(c *gateConn) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if !c.listed {
		return false
	}
	g.removeLocked(c)
	return true
}

// expire closes c when its grace time ran out before it authenticated.
func (g *gate) expire(c *gateConn) {
	if !g.release(c) {
		return // authenticated, closed or evicted meanwhile
	}
	g.report.timedOut(c.src)
	_ = c.Conn.Close()
}

// authenticated is called when c's client has authenticated: its slot and
// grace timer are given back and its reads get the large buffer. If the
// grace timer or an eviction won the race, the socket is already closed and
// the session goes no further.
func (g *gate) authenticated(c *gateConn) {
	if g.release(c) {
		c.timer.Stop()
		c.authed.Store(true)
	}
}

// closeAll closes every connection that has not authenticated, for
// shutdown: gliderlabs closes only the connections that completed their
// handshake.
func (g *gate) closeAll() {
	g.mu.Lock()
	g.closed = true
	var all []*gateConn
	for _, list := range g.bySrc {
		all = append(all, list...)
	}
	for _, c := range all {
		g.removeLocked(c)
	}
	g.mu.Unlock()
	for _, c := range all {
		c.timer.Stop()
		_ = c.Conn.Close()
	}
}

// held returns the number of slots held, per source and in all.
func (g *gate) held() (map[string]int, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	per := make(map[string]int, len(g.bySrc))
	for src, list := range g.bySrc {
		per[src] = len(list)
	}
	return per, g.n
}

// sourceOf is the key a connection is counted under: its IPv4 address, or
// the /64 of its IPv6 address (one subscriber usually holds a whole /64,
// so counting single IPv6 addresses would give an attacker 2^64 sources).
func sourceOf(a net.Addr) string {
	var ip netip.Addr
	switch t := a.(type) {
	case *net.TCPAddr:
		ip = t.AddrPort().Addr()
	default:
		ap, err := netip.ParseAddrPort(a.String())
		if err != nil {
			return "unknown"
		}
		ip = ap.Addr()
	}
	ip = ip.Unmap().WithZone("")
	if ip.Is4() {
		return ip.String()
	}
	p, err := ip.Prefix(64)
	if err != nil {
		return "unknown"
	}
	return p.String()
}

// gateConnKey is the gliderlabs context key of the connection's gateConn.
type gateConnKey struct{}

// admitted is the gliderlabs ConnCallback: it files the gate's connection
// in the context so that authentication can report to the gate. Only
// connections from Serve's gateListener exist; anything else is closed.
func (s *Server) admitted(ctx gliderssh.Context, c net.Conn) net.Conn {
	gc, ok := c.(*gateConn)
	if !ok {
		s.log.Error("connection did not pass the pre-authentication gate", "client", c.RemoteAddr().String())
		return nil
	}
	ctx.SetValue(gateConnKey{}, gc)
	return gc
}

func gateConnOf(ctx gliderssh.Context) *gateConn {
	gc, _ := ctx.Value(gateConnKey{}).(*gateConn)
	return gc
}

// gateListener admits connections through a gate as they are accepted, so
// that a dropped connection costs no goroutine and never sees a byte.
type gateListener struct {
	net.Listener
	gate *gate
}

func (l gateListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if gc := l.gate.admit(c); gc != nil {
			return gc, nil
		}
		_ = c.Close()
	}
}
