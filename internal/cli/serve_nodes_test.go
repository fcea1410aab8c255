package cli

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/s3test"
)

// Two nodes and a dead one on one PostgreSQL store, with the real
// `warden serve` as node gw-a. Starting gw-a does not end gw-b's live
// session (only its own leftovers); gw-a's reaper ends the session of
// gw-dead, whose heartbeat is an hour old, as interrupted, once; and a
// clean stop (SIGTERM) records stopped_at for gw-a. Recordings are in S3:
// gw-dead's recorded session is sealed from its segments, and verify
// passes. A gateway given gw-b's node_id while gw-b lives is refused.
func TestServeNodesShareAPostgresStore(t *testing.T) {
	dsn := pgServer.Database(t)
	cfg, data := pgPolicy(t, dsn, 0o600)
	src, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := s3test.Start(t)
	src = append(src, "listen: 127.0.0.1:0\nnode_id: gw-a\n"+srv.YAML("recordings/")...)
	if err := os.WriteFile(cfg, src, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	backend := audit.Backend{Driver: audit.DriverPostgres, DSN: dsn}
	open := func(node string, now func() time.Time) *audit.Store {
		st, err := audit.Open(ctx, data, audit.Options{Backend: backend, NodeID: node, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		return st
	}
	sess := func(id string) audit.Session {
		return audit.Session{ID: id, User: "alice", Login: "root", Host: "web01", Tenant: "acme"}
	}
	// gw-b is alive (its heartbeat is now, and the test keeps it fresh);
	// gw-dead last beat an hour ago; gw-a left a session open when it
	// crashed.
	b := open("gw-b", nil)
	bSelf, err := audit.NewSelf("host-b", nodeDeadAfter)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.NodeStarted(ctx, bSelf); err != nil {
		t.Fatal(err)
	}
	hourAgo := func() time.Time { return time.Now().Add(-time.Hour) }
	dead := open("gw-dead", hourAgo)
	deadSelf, err := audit.NewSelf("host-dead", nodeDeadAfter)
	if err != nil {
		t.Fatal(err)
	}
	if err := dead.NodeStarted(ctx, deadSelf); err != nil {
		t.Fatal(err)
	}
	a := open("gw-a", nil)
	for st, id := range map[*audit.Store]string{b: "live-b", dead: "dead-1", a: "crashed-a"} {
		if err := st.StartSession(ctx, sess(id)); err != nil {
			t.Fatal(err)
		}
	}
	// gw-dead's recorded session: its uploader had put one segment in S3
	// when it died; the spool is on gw-dead, out of gw-a's reach.
	rec := sess("deadrec001")
	rec.RecordingPath = "recordings/2026-12-02/deadrec001.cast"
	if err := dead.StartSession(ctx, rec); err != nil {
		t.Fatal(err)
	}
	seg := `{"version":2,"width":80,"height":24}` + "\n" + `[0.1,"o","$ "]` + "\n"
	recKey := "recordings/2026-12-02/deadrec001.cast"
	if _, err := srv.Client().PutObject(ctx, s3test.Bucket, recKey+".parts/0000000000000000", strings.NewReader(seg),
		int64(len(seg)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	beat, stopBeat := context.WithCancel(ctx)
	beating := make(chan struct{})
	go func() {
		defer close(beating)
		for beat.Err() == nil {
			b.Heartbeat(beat, bSelf)
			select {
			case <-beat.Done():
			case <-time.After(time.Second):
			}
		}
	}()
	defer func() { stopBeat(); <-beating }()

	bin := buildWarden(t, t.TempDir())
	s := startServe(t, bin, cfg)

	row := func(id string) audit.Session {
		t.Helper()
		r, err := b.Session(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	if r := row("crashed-a"); r.EndReason != audit.EndInterrupted {
		t.Fatalf("gw-a's own leftover: %+v; want interrupted at its start", r)
	}
	// The reaper runs every 5 s; wait for it (no timing is asserted).
	deadline := time.Now().Add(2 * time.Minute)
	for row("dead-1").EndedAt.IsZero() {
		if time.Now().After(deadline) {
			t.Fatalf("gw-dead's session never reaped:\n%s", s.log.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
	if r := row("dead-1"); r.EndReason != audit.EndInterrupted || r.NodeID != "gw-dead" {
		t.Fatalf("dead-1 = %+v", r)
	}
	// The recorded one is sealed from the object store by the real serve:
	// the segment's digest, made the final object, and verify passes
	// reading it from S3.
	segSum := sha256.Sum256([]byte(seg))
	if r := row("deadrec001"); r.EndReason != audit.EndInterrupted || r.RecordingSHA256 != hex.EncodeToString(segSum[:]) {
		t.Fatalf("deadrec001 = %+v; want sealed with the segment's digest\n%s", r, s.log.String())
	}
	for deadline := time.Now().Add(time.Minute); srv.Objects(recKey)[recKey] != int64(len(seg)); {
		if time.Now().After(deadline) {
			t.Fatalf("final object of the reaped session: %v", srv.Objects(recKey))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if out, err := exec.Command(bin, "audit", "verify", "-c", cfg).CombinedOutput(); err != nil || !strings.HasPrefix(string(out), "ok: ") {
		t.Fatalf("audit verify -c after the reap: %v\n%s", err, out)
	}
	if r := row("live-b"); !r.EndedAt.IsZero() {
		t.Fatalf("gw-b's live session was ended: %+v\n%s", r, s.log.String())
	}
	ev, err := b.Events(ctx, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	ends := map[string]int{}
	for _, e := range ev {
		if e.Type == audit.EventSessionEnd {
			ends[e.Subject]++
		}
	}
	if ends["dead-1"] != 1 || ends["crashed-a"] != 1 || ends["live-b"] != 0 {
		t.Fatalf("session.end events by session: %v", ends)
	}

	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(time.Minute):
		t.Fatalf("warden serve did not stop:\n%s", s.log.String())
	}
	nodes, err := b.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var stopped bool
	for _, n := range nodes {
		if n.ID == "gw-a" {
			stopped = !n.StoppedAt.IsZero()
		}
	}
	if !stopped {
		t.Fatalf("gw-a not recorded as stopped cleanly: %+v\n%s", nodes, s.log.String())
	}

	// A gateway configured with gw-b's node_id, while gw-b (on host-b)
	// heartbeats: refused with one line, before it touches gw-b's
	// sessions, and the refusal is in the chain.
	dup := strings.Replace(string(src), "node_id: gw-a\n", "node_id: gw-b\n", 1)
	cfgB := filepath.Join(filepath.Dir(cfg), "warden-b.yaml") // dsn_file is relative to it
	if err := os.WriteFile(cfgB, []byte(dup), 0o600); err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(rctx, bin, "serve", "-c", cfgB).CombinedOutput()
	if err == nil || !regexp.MustCompile(`node_id gw-b is in use by a live node on host host-b \(heartbeat \d+s ago\); give each node its own node_id`).Match(out) {
		t.Fatalf("serve with gw-b's node_id: %v\n%s", err, out)
	}
	if r := row("live-b"); !r.EndedAt.IsZero() {
		t.Fatalf("the refused gateway ended gw-b's live session: %+v", r)
	}
	var refused int
	ev, _ = b.Events(ctx, 0, 0)
	for _, e := range ev {
		if e.Type == audit.EventNodeRefused && e.Subject == "gw-b" {
			refused++
		}
	}
	if refused != 1 {
		t.Fatalf("%d node.refused events for gw-b, want 1", refused)
	}
}

// A node that just regained the store does not judge the others: after an
// outage every heartbeat is stale, and reaping at once would end every other
// node's live sessions. It reaps again only after two heartbeat periods of
// its own heartbeats succeeding, counted from its start or its last failure.
func TestReapWaitsAfterTheStoreComesBack(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
	g := newReapGate(5*time.Second, t0)
	for _, c := range []struct {
		at   time.Duration
		fail bool
		open bool
	}{
		{at: 5 * time.Second, open: false},  // just started
		{at: 10 * time.Second, open: true},  // two periods up
		{at: 15 * time.Second, open: true},  //
		{at: 20 * time.Second, fail: true},  // the store went away
		{at: 60 * time.Second, fail: true},  // still away
		{at: 65 * time.Second, open: false}, // back: the others have not written yet
		{at: 69 * time.Second, open: false},
		{at: 70 * time.Second, open: true},
	} {
		now := t0.Add(c.at)
		if c.fail {
			g.failed(now)
			continue
		}
		if got := g.open(now); got != c.open {
			t.Fatalf("at +%s: open %v, want %v", c.at, got, c.open)
		}
	}
}

// A node cut off from the shared store ends its own sessions once its last
// heartbeat written is as old as the others wait less one period (they
// count from that heartbeat, not from when this node hears of a failure):
// once per outage, and again only after a heartbeat was written and the
// same time passed once more.
func TestCutOffNodeEndsItsSessionsOncePerOutage(t *testing.T) {
	t0 := time.Date(2026, 12, 2, 15, 0, 0, 0, time.UTC)
	c := newCutOff(15*time.Second, t0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	for _, step := range []struct {
		d    time.Duration
		ok   bool
		trip bool
	}{
		{d: 5 * time.Second}, {d: 10 * time.Second}, {d: 14 * time.Second},
		{d: 15 * time.Second, trip: true}, // no heartbeat written since the start
		{d: 20 * time.Second},             // already ended: not again
		{d: 25 * time.Second, ok: true},
		{d: 30 * time.Second}, {d: 39 * time.Second},
		{d: 40 * time.Second, trip: true}, // a new outage, 15 s after the last heartbeat
		{d: 10 * time.Second, ok: true},   // a late answer stamped before: changes nothing
		{d: 50 * time.Second},
		{d: 45 * time.Second, ok: true},
		{d: 59 * time.Second},
		{d: 60 * time.Second, trip: true},
	} {
		if step.ok {
			c.ok(at(step.d))
			continue
		}
		if got := c.due(at(step.d)); got != step.trip {
			t.Fatalf("at +%s: tripped %v, want %v", step.d, got, step.trip)
		}
	}
}
