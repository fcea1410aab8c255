package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/cluster"
	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/internal/pgtest"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/scim"
)

// Two gateways on one store (issue 12): node A (gw-a) and node B (gw-b)
// on one PostgreSQL database, with a cluster bus. Each has its own managed
// sshd and clients; the users' names are the same on both, as they would
// be with one policy.

// nodePair starts the database and the two nodes; optA and optB are
// each node's testbed options. With pg each node has its own PostgreSQL
// bus (LISTEN/NOTIFY on the store's database, as warden serve opens it);
// without, both share one in-process bus (busA == busB).
func nodePair(t *testing.T, optA, optB bedOptions, pg bool) (a, b *testbed, busA, busB *nodeBus) {
	t.Helper()
	_, dsn := pgtest.Own(t)
	open := func() *nodeBus {
		if !pg {
			l := cluster.NewLocal()
			t.Cleanup(l.Close) // after the nodes stopped (cleanups run last first)
			return &nodeBus{Bus: l, dsn: dsn}
		}
		p, err := cluster.Open(context.Background(), dsn, cluster.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		return &nodeBus{Bus: p, dsn: dsn}
	}
	busA = open()
	busB = busA
	if pg {
		busB = open()
	}
	node := func(id string, opt bedOptions, bus *nodeBus) *testbed {
		opt.store = func(o *audit.Options) {
			o.Backend = audit.Backend{Driver: audit.DriverPostgres, DSN: dsn}
			o.NodeID = id
		}
		configure := opt.configure
		opt.configure = func(b *testbed, o *gateway.Options) {
			o.Bus = bus
			// No heartbeat runs in tests: the node rows stay fresh for
			// the test's life.
			o.NodeDeadAfter = time.Hour
			if configure != nil {
				configure(b, o)
			}
		}
		nb := newTestbed(t, opt)
		self, err := audit.NewSelf("", time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := nb.store.NodeStarted(context.Background(), self); err != nil {
			t.Fatal(err)
		}
		return nb
	}
	return node("gw-a", optA, busA), node("gw-b", optB, busB), busA, busB
}

// nodeBus is the nodes' bus; failing makes every Publish fail, as a bus
// whose connection is down does.
type nodeBus struct {
	cluster.Bus
	failing atomic.Bool
	dsn     string // the nodes' database
}

func (b *nodeBus) Publish(ctx context.Context, topic string, payload []byte) error {
	if b.failing.Load() {
		return errors.New("test bus: connection down")
	}
	return b.Bus.Publish(ctx, topic, payload)
}

// liveListJSON is `sessions --live --json` as c on node n.
func liveListJSON(t *testing.T, n *testbed, c *sshtest.Client) []map[string]any {
	t.Helper()
	out, errOut, code := n.run(c, "gw", "sessions", "--live", "--json")
	var live []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &live) != nil {
		t.Fatalf("sessions --live: %d %q %q", code, out, errOut)
	}
	return live
}

// stillRunning proves a session still works: a command's output comes back.
func stillRunning(t *testing.T, p *sshtest.PTYSession, n int) {
	t.Helper()
	p.Send(fmt.Sprintf("echo still-$((%d+1))\r", n))
	p.Expect(t, fmt.Sprintf("still-%d", n+1), expectWait)
}

// flushBus waits until the bus of to delivered everything from's bus
// published before: a bus delivers in order, one message to all of its
// subscribers before the next.
func flushBus(t *testing.T, from, to *nodeBus) {
	t.Helper()
	got := make(chan struct{}, 1)
	cancel := to.Subscribe("test_flush", func([]byte) {
		select {
		case got <- struct{}{}:
		default:
		}
	})
	defer cancel()
	if err := from.Publish(context.Background(), "test_flush", []byte("{}")); err != nil {
		t.Fatal(err)
	}
	select {
	case <-got:
	case <-time.After(expectWait):
		t.Fatal("bus not flushed")
	}
}

// A session through A is live on B, with its node; B's kill ends it on A
// (end_reason killed, the client told); the kill is refused, as for an
// unknown ID, to an overseer of another tenant; forged and malformed
// messages on the bus end nothing. On the in-process bus the nodes share
// and on each node's own PostgreSQL bus.
func TestClusterListAndKillAcrossNodes(t *testing.T) {
	t.Run("local", func(t *testing.T) { testListAndKill(t, false) })
	t.Run("postgres", func(t *testing.T) { testListAndKill(t, true) })
}

func testListAndKill(t *testing.T, pg bool) {
	tara := newClient(t, filepath.Join(t.TempDir(), "tara"))
	optB := bedOptions{
		tenants: func(h *sshtest.Host) string {
			return fmt.Sprintf("  - name: globex\n    hosts:\n      - name: app01\n        address: %q\n        host_key: %q\n",
				h.Addr, authorizedKey(h.HostKey))
		},
		extraGroups: "  - name: globex-audit\n    audits: [globex]\n",
		extraUsers:  fmt.Sprintf("  - name: tara\n    keys: [%q]\n    groups: [globex-audit]\n", authorizedKey(tara.PublicKey)),
	}
	a, b, bus, busB := nodePair(t, bedOptions{}, optB, pg)
	tara.TrustHost("127.0.0.1:"+b.port, b.hostKey)

	p := a.alice.StartPTY(t, a.port, "root@web01", 80, 24)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	id := a.liveID("alice")

	// B lists it, as held by A, in JSON and in the table.
	var row map[string]any
	for _, l := range liveListJSON(t, b, b.erin) {
		if l["id"] == id {
			row = l
		}
	}
	if row == nil || row["node"] != "gw-a" || row["user"] != "alice" || row["tenant"] != "acme" || row["live"] != true {
		t.Fatalf("B's live list has no A session %s: %v", id, row)
	}
	out, _, code := b.run(b.carol, "gw", "sessions", "--live")
	if code != 0 || !strings.Contains(out, "NODE") || !strings.Contains(out, id) || !strings.Contains(out, "gw-a") {
		t.Fatalf("B's live table: %d %q", code, out)
	}
	out, _, code = b.run(b.carol, "gw", "sessions", "--json")
	var hist []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &hist) != nil || len(hist) != 1 || hist[0]["id"] != id || hist[0]["live"] != true {
		t.Fatalf("B's history does not mark A's open session live: %d %q", code, out)
	}
	if ids := b.gw.LiveSessionIDs(); len(ids) != 1 || ids[0] != id {
		t.Fatalf("B's console live IDs = %v", ids)
	}

	// Attack: an overseer of another tenant, on another node, gets the
	// unknown ID's answer, and the refusal is audited.
	if len(liveListJSON(t, b, tara)) != 0 {
		t.Fatal("tara (globex) sees acme's session")
	}
	_, unknownErr, _ := b.run(tara, "gw", "kill", unknownSession)
	_, foreignErr, code := b.run(tara, "gw", "kill", id)
	if code != 1 || foreignErr != strings.ReplaceAll(unknownErr, unknownSession, id) ||
		foreignErr != "warden: no live session "+id+" that you can act on\n" {
		t.Fatalf("foreign kill: %d %q (unknown: %q)", code, foreignErr, unknownErr)
	}
	b.waitEvent("command.refused", "tenant acme not overseen (node gw-a)")
	if err := b.gw.KillSession(context.Background(), "tara", id, "console try"); err != gateway.ErrNoLiveSession {
		t.Fatalf("console kill by tara: %v", err)
	}

	// Attack: forged and malformed messages change nothing. Each names
	// the live session, but fails a check; the last is well formed but
	// for a session nobody holds.
	for _, m := range []string{
		`{"session":"` + id + `","actor":"mallory","reason":"x","extra":1}`,
		`{"session":"` + id + `","actor":"","reason":""}`,
		`{"session":"` + id + `","actor":"mallory","reason":"\u0007"}`,
		`{"session":"` + id + `","actor":"mallory","reason":""} {"session":"` + id + `"}`,
		`{"session":"` + id + `x","actor":"mallory","reason":""}`,
		`{"session":"../../` + id[:20] + `","actor":"mallory","reason":""}`,
		`{"session":` + id,
		`["` + id + `"]`,
		`{"session":"` + id + `","actor":"mallory","reason":"` + strings.Repeat("a", cluster.MaxPayload) + `"}`,
		`{"session":"` + id + `","actor":"mallory","reason":"ok","node":"GW X"}`, // not a node_id (a leading '-' is one)
		`{"session":"` + unknownSession + `","actor":"mallory","reason":"ok"}`,
	} {
		if err := bus.Publish(context.Background(), "kill", []byte(m)); err != nil && !errors.Is(err, cluster.ErrTooLarge) {
			t.Fatal(err)
		}
	}
	// A huge message a bus might deliver anyway is refused by size.
	for _, m := range []string{`{"grant":-1,"end_reason":"revoked"}`, `{"grant":1,"end_reason":"Revoked!"}`, `{"node":{}}`} {
		topic := "grant_ended"
		if strings.HasPrefix(m, `{"node"`) {
			topic = "directory"
		}
		if err := bus.Publish(context.Background(), topic, []byte(m)); err != nil {
			t.Fatal(err)
		}
	}
	flushBus(t, bus, bus)
	stillRunning(t, p, 40)
	if s, err := a.store.Session(context.Background(), id); err != nil || !s.EndedAt.IsZero() {
		t.Fatalf("a forged message ended the session: %+v %v", s, err)
	}

	// Fail closed: a kill that cannot be sent is reported, and audited,
	// as not done; so is one the holder does not carry out in time (gw-c
	// is a live node that holds a row of a session it does not run: no
	// node holds it, so nobody ends it, and A ignores the kill for it).
	busB.failing.Store(true) // B's bus, which B's kill goes out on
	_, errOut, code := b.run(b.carol, "gw", "kill", id)
	if code != 1 || errOut != "warden: could not reach the cluster to end session "+id+" on node gw-a; it was not terminated\n" {
		t.Fatalf("kill with the bus down: %d %q", code, errOut)
	}
	b.waitEvent("command.refused", "could not reach the cluster")
	if err := b.gw.KillSession(context.Background(), "carol", id, "bus down"); err == nil || !strings.Contains(err.Error(), "could not reach the cluster") {
		t.Fatalf("console kill with the bus down: %v", err)
	}
	busB.failing.Store(false)
	stillRunning(t, p, 41)
	c, err := audit.Open(context.Background(), t.TempDir(), audit.Options{NodeID: "gw-c",
		Backend: audit.Backend{Driver: audit.DriverPostgres, DSN: bus.dsn}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const ghost = "cccccccccccccccccccccccccc"
	self, err := audit.NewSelf("", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.NodeStarted(context.Background(), self); err != nil {
		t.Fatal(err)
	}
	if err := c.StartSession(context.Background(), audit.Session{ID: ghost, User: "alice", Login: "root", Host: "web01", Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, errOut, code = b.run(b.carol, "gw", "kill", ghost)
	if code != 1 || errOut != "warden: session "+ghost+" is held by node gw-c, which did not end it in 5s\n" {
		t.Fatalf("kill of a session its node does not end: %d %q", code, errOut)
	}
	t.Logf("an unanswered kill gave up after %s (bound 5 s)", time.Since(start))
	b.waitEvent("command.refused", "held by node gw-c")
	stillRunning(t, p, 42)

	// B's approver ends it on A.
	start = time.Now()
	out, errOut, code = b.run(b.carol, "gw", "kill", id, "--reason", "'INC-9 contain'")
	if code != 0 || out != "session "+id+" terminated\n" {
		t.Fatalf("kill from B: %d %q %q", code, out, errOut)
	}
	t.Logf("kill across nodes answered in %s", time.Since(start))
	p.Expect(t, `warden: session terminated by an administrator`, expectWait)
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	if s := a.waitSessionEnded(id); s.EndReason != "killed" || s.NodeID != "gw-a" {
		t.Fatalf("session row %+v", s)
	}
	ev := b.waitEvent("session.killed", "gw-a")
	if ev.Actor != "carol" || ev.Subject != id || ev.Data["reason"] != "INC-9 contain" {
		t.Fatalf("kill event %+v", ev)
	}
	if _, errOut, code := b.run(b.carol, "gw", "kill", id); code != 1 || errOut != "warden: no live session "+id+" that you can act on\n" {
		t.Fatalf("kill again: %d %q", code, errOut)
	}
	for _, l := range liveListJSON(t, b, b.erin) {
		if l["id"] == id {
			t.Fatal("an ended session is still listed live on B")
		}
	}
}

// A grant revoked on B closes its session on A; a directory change
// committed on A closes a session on B, and B refuses the removed key.
func TestClusterGrantEndAcrossNodes(t *testing.T) {
	a, b, _, _ := nodePair(t, bedOptions{}, bedOptions{}, true)
	// The console's kill reaches another node too.
	pa := a.alice.StartPTY(t, a.port, "root@web01", 80, 24)
	pa.Send("export PS1='PROMPT> '\r")
	pa.Expect(t, `PROMPT> $`, expectWait)
	aid := a.liveID("alice")
	if err := b.gw.KillSession(context.Background(), "carol", aid, "console kill"); err != nil {
		t.Fatalf("console kill from B: %v", err)
	}
	pa.Expect(t, `warden: session terminated by an administrator`, expectWait)
	if s := a.waitSessionEnded(aid); s.EndReason != "killed" {
		t.Fatalf("session row %+v", s)
	}
	if ev := b.waitEvent("session.killed", "console kill"); ev.Data["node"] != "gw-a" || ev.Data["via"] != "console" {
		t.Fatalf("console kill event %+v", ev)
	}

	gid := a.requestAndApprove("1h")
	p := a.bob.StartPTY(t, a.port, "root@web01", 80, 24)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	id := a.liveID("bob")

	out, errOut, code := b.run(b.carol, "gw", "revoke", fmt.Sprint(gid), "--reason", "'done'")
	if code != 0 || !strings.Contains(out, fmt.Sprintf("grant %d revoked", gid)) {
		t.Fatalf("revoke on B: %d %q %q", code, out, errOut)
	}
	p.Expect(t, fmt.Sprintf("warden: grant %d was revoked; session closed", gid), expectWait)
	if s := a.waitSessionEnded(id); s.EndReason != "grant_revoked" {
		t.Fatalf("session row %+v", s)
	}
}

// A directory change committed on A (SCIM) reaches B: B admits the
// joiner at once, and when A deactivates her, B closes her live shell
// (deprovisioned) and refuses her key; the access_removed event is A's
// alone.
func TestClusterDirectoryChangeAcrossNodes(t *testing.T) {
	tok := filepath.Join(t.TempDir(), "entra.token")
	if err := os.WriteFile(tok, []byte(scimToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	opt := bedOptions{identity: fmt.Sprintf("http_listen: \"127.0.0.1:0\"\nidentity:\n  directories:\n    - {name: entra, token_file: %s}\n", tok)}
	a, b, busA, busB := nodePair(t, opt, opt, true)
	h, err := scim.NewHandler(a.directory, scim.Options{Policy: func() *policy.Config { return a.cfg }, Store: a.store})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	dana := newClient(t, filepath.Join(b.dir, "dana"))
	dana.TrustHost("127.0.0.1:"+b.port, b.hostKey)
	id := provisionDana(t, srv, dana)

	// B learnt of the joiner from A's message, not from a restart.
	var p *sshtest.PTYSession
	waitFor(t, func() bool {
		_, _, code := b.run(dana, "gw", "whoami")
		return code == 0
	}, "dana known on B")
	p = dana.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	sid := b.liveID("dana@contoso.com")
	removed := len(a.events("identity.access_removed")) // A's, for the group it provisioned

	code, resp := scimDo(t, srv, "PATCH", "/Users/"+id, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`)
	if code != http.StatusOK || resp["active"] != false {
		t.Fatalf("patch: %d %v", code, resp)
	}
	p.Expect(t, `warden: access removed by the directory; session closed`, expectWait)
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	if s := b.waitSessionEnded(sid); s.EndReason != "deprovisioned" || s.NodeID != "gw-b" {
		t.Fatalf("session row %+v", s)
	}
	if _, errOut, code := b.run(dana, "root@web01", "true"); code == 0 || !strings.Contains(errOut, "Permission denied") {
		t.Fatalf("B still admits the leaver's key: %d %q", code, errOut)
	}
	a.waitEvent("identity.access_removed", "dana@contoso.com")
	flushBus(t, busA, busB) // B has handled every message: any event of B's is written
	if n := len(a.events("identity.access_removed")) - removed; n != 1 {
		t.Fatalf("%d identity.access_removed events for one leaver; the node that committed the change writes the one", n)
	}
}
