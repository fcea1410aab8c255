package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/cluster"
	"github.com/warden-gw/warden/exceptions"
	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/internal/pgtest"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/jit"
	"github.com/warden-gw/warden/policy"
)

// clusterPair is two gateways, gw-a and gw-b, on one PostgreSQL database
// and one bus: what `ssh gw-b watch ID` needs to show a session of gw-a.
// Each has its own managed host, CA and clients (same user names, keys of
// their own) and the tenant testbed's policy: carol approves acme, dave
// globex, erin audits all, tara (console only) audits acme.
type clusterPair struct {
	a, b *testbed
	bus  *cluster.Local // nil with pgBus
}

// newClusterPair starts the pair on one in-process bus, or with pgBus on
// a PostgreSQL bus of each node's own (LISTEN/NOTIFY on the store's
// database), as warden serve runs them.
func newClusterPair(t *testing.T, pgBus bool) *clusterPair {
	t.Helper()
	_, dsn := pgtest.Own(t)
	if pgBus {
		busOf := func() cluster.Bus {
			bus, err := cluster.Open(context.Background(), dsn, cluster.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(bus.Close) // after the gateway (cleanups run last-first)
			return bus
		}
		return &clusterPair{a: clusterNode(t, "gw-a", dsn, busOf()), b: clusterNode(t, "gw-b", dsn, busOf())}
	}
	bus := cluster.NewLocal()
	t.Cleanup(bus.Close) // after the gateways (cleanups run last-first)
	return &clusterPair{a: clusterNode(t, "gw-a", dsn, bus), b: clusterNode(t, "gw-b", dsn, bus), bus: bus}
}

// clusterNode is a tenant testbed whose store is node on the shared
// database (the testbed's own SQLite store is replaced before the gateway
// is built), on bus, with a heartbeat as warden serve keeps one.
func clusterNode(t *testing.T, node, dsn string, bus cluster.Bus) *testbed {
	t.Helper()
	tara := newClient(t, filepath.Join(t.TempDir(), "tara"))
	b := newTestbed(t, bedOptions{
		tenants: func(h *sshtest.Host) string {
			return fmt.Sprintf("  - name: globex\n    hosts:\n      - name: app01\n        address: %q\n        host_key: %q\n",
				h.Addr, authorizedKey(h.HostKey))
		},
		extraGroups: "  - name: acme-audit\n    audits: [acme]\n",
		extraUsers:  fmt.Sprintf("  - name: tara\n    keys: [%q]\n    groups: [acme-audit]\n", authorizedKey(tara.PublicKey)),
		extraRoles: `  - name: globex-root
    tenant: globex
    hosts: {names: [app01]}
    logins: [root]
    privileged: true
    eligible: [helpdesk]
    approvers: [management]
`,
		configure: func(b *testbed, o *gateway.Options) {
			ctx := context.Background()
			b.store.Close()
			st, err := audit.Open(ctx, b.data, audit.Options{NodeID: node,
				Backend: audit.Backend{Driver: audit.DriverPostgres, DSN: dsn}})
			if err != nil {
				t.Fatal(err)
			}
			self, err := audit.NewSelf("", time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if err := st.NodeStarted(ctx, self); err != nil {
				t.Fatal(err)
			}
			selfOf.Store(st, self)
			b.store, b.cfg.NodeID = st, node
			b.jit, err = jit.New(jit.Options{Store: st, Policy: func() *policy.Config { return b.cfg }})
			if err != nil {
				t.Fatal(err)
			}
			o.Store, o.JIT, o.Exceptions, o.Bus = st, b.jit, &exceptions.Register{Store: st, DB: st.DB()}, bus
		},
	})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tk := time.NewTicker(2 * time.Second)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
				if self, ok := selfOf.Load(b.store); ok {
					_ = b.store.Heartbeat(ctx, self.(*audit.Self))
				}
			case <-ctx.Done():
				return
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done }) // before the store closes
	return b
}

// startWatch runs `ssh gw watch id` as c on b and waits for its banner.
func startWatch(t *testing.T, b *testbed, c *sshtest.Client, id string) (wait func() error, seen, errb *safeBuffer) {
	t.Helper()
	cmd := c.SSH(testCtx(t), b.port, "gw", "watch", id)
	seen, errb = &safeBuffer{}, &safeBuffer{}
	cmd.Stdout, cmd.Stderr = seen, errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(seen.String(), "watching "+id) }, "the remote watch starts; stderr "+errb.String())
	return cmd.Wait, seen, errb
}

// TestClusterWatchAcrossNodes: an admin's session runs through gw-a; on
// gw-b, `ssh gw watch ID` shows it through the view filter and says when it
// ends, and the console's view on gw-b gets its frames. Another tenant's
// approver on gw-b gets the answer an unknown ID gets, audited; the watches
// are audited with the node that holds the session.
func TestClusterWatchAcrossNodes(t *testing.T) {
	testClusterWatchAcrossNodes(t, newClusterPair(t, false))
}

// TestClusterWatchAcrossNodesOnPostgresBus is the same on the bus warden
// serve uses with a PostgreSQL store: each node its own LISTEN/NOTIFY
// connection, a watch topic LISTENed per view.
func TestClusterWatchAcrossNodesOnPostgresBus(t *testing.T) {
	testClusterWatchAcrossNodes(t, newClusterPair(t, true))
}

func testClusterWatchAcrossNodes(t *testing.T, c *clusterPair) {
	a, b := c.a, c.b
	p := a.alice.StartPTY(t, a.port, "root@web01", 100, 30)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	id := a.liveID("alice")
	ctx := testCtx(t)

	// Refusals on gw-b: another tenant's approver, an unknown ID and
	// someone who oversees nothing; the first two get one answer.
	unknown := "zzzzzzzzzzzzzzzzzzzzzzzzzz"
	_, daveErr, daveCode := b.run(b.dave, "gw", "watch", id)
	_, unkErr, unkCode := b.run(b.carol, "gw", "watch", unknown)
	if daveCode != 1 || unkCode != 1 || daveErr != "warden: no live session "+id+" that you can act on\n" ||
		strings.ReplaceAll(unkErr, unknown, id) != daveErr {
		t.Fatalf("dave: %d %q; unknown: %d %q", daveCode, daveErr, unkCode, unkErr)
	}
	if _, errOut, code := b.run(b.bob, "gw", "watch", id); code != 1 || !strings.Contains(errOut, "only approvers and auditors") {
		t.Fatalf("bob: %d %q", code, errOut)
	}
	for _, who := range []struct{ user, id string }{{"dave", id}, {"carol", unknown}, {"bob", id}} {
		if _, err := b.gw.WatchSession(ctx, who.user, who.id); !errors.Is(err, gateway.ErrNoLiveSession) {
			t.Fatalf("console: %s watching %s: %v", who.user, who.id, err)
		}
		if _, err := b.gw.LiveSession(ctx, who.user, who.id); !errors.Is(err, gateway.ErrNoLiveSession) {
			t.Fatalf("console: %s describing %s: %v", who.user, who.id, err)
		}
	}
	b.waitEvent("command.refused", "tenant acme not overseen")

	// An auditor on gw-b watches over SSH, a tenant auditor in the console.
	wait, seen, errb := startWatch(t, b, b.erin, id)
	h, err := b.gw.LiveSession(ctx, "tara", id)
	if err != nil || h.Width != 100 || h.Height != 30 || h.Title != "alice as root@web01" || h.Warden.Tenant != "acme" {
		t.Fatalf("LiveSession: %+v %v", h, err)
	}
	feed, err := b.gw.WatchSession(ctx, "tara", id)
	if err != nil {
		t.Fatal(err)
	}
	if feed.Header.Width != 100 || feed.Header.Warden.SessionID != id {
		t.Fatalf("feed header %+v", feed.Header)
	}
	// The host writes the viewer's clipboard (OSC 52) amid the marker: the
	// SSH viewer sees the marker, never the sequence.
	p.Send(`printf 'remote-%s\033]52;c;ZXZpbA==\007-mark\n' $((40+2))` + "\r")
	p.Expect(t, `remote-42`, expectWait)
	waitFor(t, func() bool { return strings.Contains(seen.String(), "remote-42-mark") }, "the SSH viewer on gw-b sees the marker")
	if strings.Contains(seen.String(), "\x1b]52") {
		t.Fatalf("the clipboard write reached the viewer: %q", seen.String())
	}
	collect(t, feed, "remote-42", expectWait)
	ev := b.waitEvent("session.watched", "erin")
	if ev.Subject != id || ev.Data["node"] != "gw-a" || ev.Data["via"] != "ssh" {
		t.Fatalf("watched event %+v", ev)
	}
	if ev := b.waitEvent("session.watched", "tara"); ev.Data["node"] != "gw-a" || ev.Data["via"] != "console" {
		t.Fatalf("console watched event %+v", ev)
	}
	// Two views (the probe of LiveSession closed its own).
	waitFor(t, func() bool { return gateway.RemoteStreams(a.gw) == 2 }, "gw-a streams the two views")

	// The session ends: both views say so and end.
	p.Send("exit\r")
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	if err := wait(); err != nil {
		t.Fatalf("watch: %v; stderr %q", err, errb.String())
	}
	if !strings.Contains(seen.String(), "session "+id+" ended") {
		t.Fatalf("the SSH viewer was not told: %q", seen.String())
	}
	if _, ended := collect(t, feed, "\x00never", expectWait); !ended || feed.End() != "session ended" {
		t.Fatalf("feed: ended %v, %q", ended, feed.End())
	}
	for _, who := range []string{"erin", "tara"} {
		if ev := b.waitEvent("session.watch_ended", who); ev.Data["node"] != "gw-a" || ev.Data["reason"] != "session ended" {
			t.Fatalf("watch_ended %+v", ev)
		}
	}
	waitFor(t, func() bool { return gateway.RemoteStreams(a.gw) == 0 }, "gw-a's streams end")
	a.waitSessionEnded(id)
	if _, errOut, code := b.run(b.erin, "gw", "watch", id); code != 1 || errOut != "warden: no live session "+id+" that you can act on\n" {
		t.Fatalf("watch an ended session: %d %q", code, errOut)
	}
}

// handClock is a clock a test moves by hand.
type handClock struct{ ns atomic.Int64 }

func (c *handClock) Now() time.Time      { return time.Unix(0, c.ns.Load()) }
func (c *handClock) Add(d time.Duration) { c.ns.Add(int64(d)) }
func newHandClock() *handClock           { c := &handClock{}; c.ns.Store(time.Now().UnixNano()); return c }
func publishJSON(t *testing.T, bus cluster.Bus, topic string, v any) {
	t.Helper()
	p, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Publish(context.Background(), topic, p); err != nil {
		t.Fatal(err)
	}
}

// frameLog records the frames published on one watch topic.
type frameLog struct {
	mu     sync.Mutex
	frames []map[string]any
}

// listen records the frames of watch that the holder sends to viewer node
// (one frames topic per viewer node; each frame names its watch).
func listen(t *testing.T, bus cluster.Bus, node, watch string) *frameLog {
	l := &frameLog{}
	cancel := bus.Subscribe(gateway.FramesTopic(node), func(p []byte) {
		var f map[string]any
		if err := json.Unmarshal(p, &f); err != nil {
			t.Errorf("frame %q: %v", p, err)
		}
		if f["watch"] != watch {
			return // another view's
		}
		l.mu.Lock()
		l.frames = append(l.frames, f)
		l.mu.Unlock()
	})
	t.Cleanup(cancel)
	return l
}

func (l *frameLog) all() []map[string]any {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]map[string]any(nil), l.frames...)
}

func (l *frameLog) ended() string {
	for _, f := range l.all() {
		if e, ok := f["end"].(string); ok {
			return e
		}
	}
	return ""
}

// TestAttackClusterWatchForgedOpen: who may watch is decided on the
// viewer's node; the holder trusts the bus, which only Warden's nodes can
// publish on (it is the database connection). This test is what the
// holder still guarantees to a bus member: nothing is published on a
// watch's topic until a watch_open for a session it holds arrives (a
// malformed one, or one for a session it does not hold, gets nothing), and
// a stream that nobody keeps alive stops exactly after the expiry (checked
// on an injected clock), as does one closed by watch_close.
func TestAttackClusterWatchForgedOpen(t *testing.T) {
	c := newClusterPair(t, false)
	a := c.a
	clock := newHandClock()
	const tick = 20 * time.Millisecond
	gateway.SetWatchTiming(a.gw, gateway.WatchTiming{Now: clock.Now, Tick: tick, Keep: time.Hour})
	s, err := a.goClientAs(a.alice, "root@web01").NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start("while :; do echo tick; sleep 0.2; done"); err != nil {
		t.Fatal(err)
	}
	id := a.liveID("alice")

	const wid = "aaaaaaaaaaaaaaaaaaaaaaaaaa" // 26 lowercase base32: a valid watch ID
	frames := listen(t, c.bus, "gw-x", wid)
	// (A directory user's name, as SCIM sends it, is a valid viewer.)
	open := map[string]string{"watch": wid, "session": "zzzzzzzzzzzzzzzzzzzzzzzzzz", "viewer": "dana@contoso.com", "node": "gw-x"}
	publishJSON(t, c.bus, "watch_open", open) // not a session gw-a holds
	bad := map[string]any{"watch": wid, "session": id, "viewer": "mallory", "node": "gw-x", "extra": 1}
	publishJSON(t, c.bus, "watch_open", bad) // an unknown field
	publishJSON(t, c.bus, "watch_open", map[string]string{"watch": "../../x", "session": id, "viewer": "mallory", "node": "gw-x"})
	publishJSON(t, c.bus, "watch_open", map[string]string{"watch": wid, "session": id, "viewer": "mallory", "node": "GW X"})
	time.Sleep(50 * tick) // ample for the holder to have answered, had it answered
	if got := frames.all(); len(got) != 0 || gateway.RemoteStreams(a.gw) != 0 {
		t.Fatalf("frames before a valid watch_open: %v (streams %d)", got, gateway.RemoteStreams(a.gw))
	}

	// A bus member's watch_open streams: the holder does not authorise.
	open["session"] = id
	publishJSON(t, c.bus, "watch_open", open)
	waitFor(t, func() bool { return strings.Contains(fmt.Sprint(frames.all()), "dGljawo") }, "frames of the session") // base64 "tick\n"
	if f := frames.all()[0]; f["seq"] != 0.0 || f["cols"] != 80.0 || f["rows"] != 24.0 {
		t.Fatalf("first frame %v", f)
	}

	// Keep-alives: 15s of silence ends it, and not a moment sooner.
	clock.Add(10 * time.Second)
	publishJSON(t, c.bus, "watch_keep", map[string]string{"watch": wid})
	time.Sleep(10 * tick)
	clock.Add(14 * time.Second) // 14s since the keep-alive
	time.Sleep(25 * tick)
	if e := frames.ended(); e != "" || gateway.RemoteStreams(a.gw) != 1 {
		t.Fatalf("the stream ended before the expiry: %q", e)
	}
	clock.Add(1*time.Second + time.Millisecond) // just past 15s
	waitFor(t, func() bool { return frames.ended() != "" }, "the stream ends")
	if e := frames.ended(); e != "viewer stopped answering" {
		t.Fatalf("end %q", e)
	}
	waitFor(t, func() bool { return gateway.RemoteStreams(a.gw) == 0 }, "the stream is gone")
	n := len(frames.all())
	time.Sleep(25 * tick)
	if got := frames.all(); len(got) != n || got[n-1]["end"] == nil {
		t.Fatalf("frames after the end: %v", got[n-1:])
	}

	// watch_close ends a stream at once.
	const wid2 = "bbbbbbbbbbbbbbbbbbbbbbbbbb"
	frames2 := listen(t, c.bus, "gw-x", wid2)
	publishJSON(t, c.bus, "watch_open", map[string]string{"watch": wid2, "session": id, "viewer": "mallory", "node": "gw-x"})
	waitFor(t, func() bool { return len(frames2.all()) > 0 }, "the second stream starts")
	publishJSON(t, c.bus, "watch_close", map[string]string{"watch": wid2})
	waitFor(t, func() bool { return gateway.RemoteStreams(a.gw) == 0 }, "watch_close ends the stream")
}

// TestClusterWatchBurstDoesNotBlockSession: a session that prints
// megabytes while a remote viewer watches is not slowed: its client gets
// every byte; the stream spends at most its budget on the bus and the
// viewer is told how many frames it did not get (console and SSH); on
// either bus.
func TestClusterWatchBurstDoesNotBlockSession(t *testing.T) {
	for _, pg := range []bool{false, true} {
		t.Run(fmt.Sprintf("postgres bus %v", pg), func(t *testing.T) { testClusterWatchBurst(t, newClusterPair(t, pg)) })
	}
}

func testClusterWatchBurst(t *testing.T, c *clusterPair) {
	a, b := c.a, c.b
	gateway.SetWatchTiming(a.gw, gateway.WatchTiming{Budget: 64 << 10})
	cl := a.goClientAs(a.alice, "root@web01")
	s, err := cl.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	in, err := s.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := s.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// 200000 lines of 41 bytes: 8 MB, 125 s of a 64 KiB/s budget.
	const lines = 200000
	if err := s.Start(fmt.Sprintf("read go; yes 0123456789012345678901234567890123456789 | head -n %d", lines)); err != nil {
		t.Fatal(err)
	}
	id := a.liveID("alice")
	ctx := testCtx(t)
	feed, err := b.gw.WatchSession(ctx, "erin", id)
	if err != nil {
		t.Fatal(err)
	}
	wait, seen, errb := startWatch(t, b, b.carol, id)
	got := make(chan int64, 1)
	go func() {
		var n int64
		buf := make([]byte, 64<<10)
		for {
			k, err := out.Read(buf)
			n += int64(k)
			if err != nil {
				got <- n
				return
			}
		}
	}()
	start := time.Now()
	if _, err := in.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	var dropped, frames, shown int64
	for f := range feed.Frames {
		frames++
		dropped += f.Dropped
		shown += int64(len(f.Output))
	}
	n := <-got
	t.Logf("the client got %d bytes in %v; the console viewer %d bytes in %d frames, %d frames dropped",
		n, time.Since(start), shown, frames, dropped)
	if err := s.Wait(); err != nil {
		t.Fatalf("session: %v", err)
	}
	if want := int64(lines * 41); n != want {
		t.Fatalf("the session's client got %d bytes, want %d", n, want)
	}
	if dropped == 0 || shown >= lines*41 || feed.End() != "session ended" {
		t.Fatalf("viewer: %d bytes shown, %d dropped, end %q", shown, dropped, feed.End())
	}
	if err := wait(); err != nil {
		t.Fatalf("ssh watch: %v; stderr %q", err, errb.String())
	}
	if o := seen.String(); !strings.Contains(o, "frames not shown") || !strings.Contains(o, "session "+id+" ended") {
		t.Fatalf("the SSH viewer was not told of the drops or the end: ...%q", o[max(0, len(o)-300):])
	}
}

// TestClusterWatchEndsWhenOversightEnds: a remote view is checked on the
// viewer's node every second, as a local one: the watcher taken out of
// the approvers' group on gw-b is cut off, the refusal audited, and gw-a
// stops streaming (watch_close).
func TestClusterWatchEndsWhenOversightEnds(t *testing.T) {
	c := newClusterPair(t, false)
	a, b := c.a, c.b
	s, err := a.goClientAs(a.alice, "root@web01").NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Start("while :; do echo tick; sleep 0.2; done"); err != nil {
		t.Fatal(err)
	}
	id := a.liveID("alice")
	wait, seen, errb := startWatch(t, b, b.carol, id)
	waitFor(t, func() bool { return strings.Contains(seen.String(), "tick") }, "the remote watch shows the session")
	b.reloadPolicy("groups: [security]", "groups: []")
	done := make(chan error, 1)
	go func() { done <- wait() }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(errb.String(), "warden: you no longer oversee this session; watch ended") {
			t.Fatalf("watch ended with %v, stderr %q", err, errb.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("the remote watch runs on after the watcher's oversight ended; stderr %q", errb.String())
	}
	b.waitEvent("command.refused", "no longer oversee")
	waitFor(t, func() bool { return gateway.RemoteStreams(a.gw) == 0 }, "gw-a stops streaming")
}

// selfOf is each test store's process identity (*audit.Store -> *audit.Self).
var selfOf sync.Map
