package gateway

import (
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// readBufferSize is the read buffer put under each authenticated SSH
// connection while data flows (burstReader). x/crypto/ssh reads through a
// buffer of at most 4 KiB (256 bytes while it waits for a packet: see
// third_party/xcrypto/README.warden.md), so a 32 KiB data packet costs
// several read system calls; with a larger buffer beneath it, one read
// takes in several packets, which is most of the gateway's cost on bulk
// output.
//
// It is used only after authentication succeeds: before that, anyone who
// can open a TCP connection decides how many there are, and 256 KiB each
// is how 2,000 stalled connections once cost a gigabyte. After it, the
// buffer is pooled and held only while it holds unread bytes, so idle
// sessions cost none.
const readBufferSize = 256 << 10

// gateConn is an accepted connection as the gate admitted it: it knows its
// source, holds a pre-authentication slot until it authenticates or closes,
// and reads unbuffered until it has authenticated.
type gateConn struct {
	net.Conn
	gate   *gate
	src    string    // source key: IPv4 address or IPv6 /64
	admit  time.Time // when it was admitted (for eviction order and logs)
	timer  *time.Timer
	authed atomic.Bool

	// listed is true while the connection holds a slot; guarded by gate.mu.
	listed bool

	// user is the user the connection authenticated as, while it counts
	// in Server.users; guarded by userHeld (set once, before it is true).
	user     string
	users    *userConns
	userHeld atomic.Bool

	// sessions counts the session channels in flight on the connection,
	// at most maxSessionsPerConn (holdSession).
	sessions atomic.Int32

	// r reads through the large buffer, created by the first Read after
	// authentication. Only x/crypto's read loop calls Read, so r needs no
	// lock; authed is the hand-over from the authenticating goroutine.
	r *burstReader
}

// Read reads straight from the socket before authentication (x/crypto's own
// reader is the only buffer) and through readBufferSize after it. The
// unbuffered reads hold nothing back, so switching loses no bytes.
func (c *gateConn) Read(p []byte) (int, error) {
	if c.r == nil {
		if !c.authed.Load() {
			return c.Conn.Read(p)
		}
		c.r = newBurstReader(c.Conn)
	}
	return c.r.Read(p)
}

// maxSessionsPerConn is how many session channels (to hosts or to the
// command interface) one connection may have in flight, as sshd's
// MaxSessions (whose default it is). Each costs the gateway a host
// connection with its certificate, recording and buffers, so an
// authenticated client multiplexing hundreds of channels over one
// connection (ControlMaster, or a few lines of Go) would cost hundreds of
// times that.
const maxSessionsPerConn = 10

// holdSession takes one of the connection's session slots, or reports that
// all are taken. The holder calls releaseSession when its channel is done.
func (c *gateConn) holdSession() bool {
	if c.sessions.Add(1) > maxSessionsPerConn {
		c.sessions.Add(-1)
		return false
	}
	return true
}

func (c *gateConn) releaseSession() { c.sessions.Add(-1) }

// Close gives back the connection's slot, if it still holds one, and
// closes the socket. A connection that closes while holding a slot never
// authenticated.
func (c *gateConn) Close() error {
	if c.gate.release(c) {
		c.timer.Stop()
		c.gate.report.ended(c.src)
	}
	if c.userHeld.CompareAndSwap(true, false) {
		c.users.release(c.user)
	}
	return c.Conn.Close()
}

// Bounds per user, across their connections:
//
//   - maxConnsPerUser authenticated connections at once. Past
//     authentication a connection leaves the pre-authentication limits and
//     may read through a readBufferSize buffer, and one without channels leaves no
//     audit row: without a bound, one key could hold thousands of idle
//     connections, unseen. 256 leaves room for ControlPersist connections
//     to every host of a configuration tool's inventory.
//   - maxSessionsPerUser session channels in flight. Before it starts, a
//     channel may hold x/crypto's 2 MiB window of the client's data (and
//     the requests it queued), so channels add up: 10 per connection on
//     256 connections would be gigabytes. 64 is far more than a person
//     types into and more than the forks of a configuration tool.
//
// So what one user can make the gateway hold is about 256 × 256 KiB of
// read buffers (while their sockets hold data) and 64 × 2 MiB of channel data.
const (
	maxConnsPerUser    = 256
	maxSessionsPerUser = 64
)

// userConns counts authenticated connections and session channels per
// user.
type userConns struct {
	mu       sync.Mutex
	max      int // connections
	maxChans int
	n        map[string]int
	chans    map[string]int
}

func newUserConns(max, maxChans int) *userConns {
	return &userConns{max: max, maxChans: maxChans, n: map[string]int{}, chans: map[string]int{}}
}

// holdChannel takes one of user's session-channel slots, or reports that
// all are taken. The holder calls releaseChannel when its channel is done.
func (u *userConns) holdChannel(user string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.chans[user] >= u.maxChans {
		return false
	}
	u.chans[user]++
	return true
}

func (u *userConns) releaseChannel(user string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.chans[user]--; u.chans[user] <= 0 {
		delete(u.chans, user)
	}
}

// hold counts c for user, or reports that user holds the maximum. A
// connection is counted once, whatever keys it verifies.
func (u *userConns) hold(c *gateConn, user string) bool {
	if c.userHeld.Load() {
		return true
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n[user] >= u.max {
		return false
	}
	u.n[user]++
	c.user, c.users = user, u
	c.userHeld.Store(true)
	return true
}

func (u *userConns) release(user string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.n[user]--; u.n[user] <= 0 {
		delete(u.n, user)
	}
}

// bufferedConn is a net.Conn whose reads go through a burstReader. The
// gateway puts it under its connections to managed hosts, which it opens
// only for authenticated clients.
type bufferedConn struct {
	net.Conn
	r *burstReader
}

func newBufferedConn(c net.Conn) net.Conn {
	return &bufferedConn{Conn: c, r: newBurstReader(c)}
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
