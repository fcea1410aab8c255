package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/pgtest"
	"github.com/warden-gw/warden/recstore"
)

// Bounds the issue names, with the margin a shared, loaded test machine
// needs. The figures measured are logged on every run.
const (
	// A survivor marks a dead node's sessions interrupted within 30 s
	// (issue 12). The reaper's design: a node is dead once its heartbeat
	// (written every 5 s) is 20 s old, checked every 5 s, so a node that
	// beat just before it died is reaped up to 25 s after; the bound
	// asserted is the 30 s plus 5 s for a loaded machine.
	reapBound = 35 * time.Second
	// What is in S3 is at most 10 s behind (upload_interval, default
	// 10 s), plus the recorder's 1 s flush to the spool and 1 s for an
	// upload on a loaded machine.
	s3LagBound = 12 * time.Second
)

// probes runs `ssh NODE root@web01 echo probe-K` one after the other
// through the given ports until stopped, and keeps every result.
type probes struct {
	mu      sync.Mutex
	results []probeResult
	stop    chan struct{}
	done    chan struct{}
}

type probeResult struct {
	at          time.Time
	port, tag   string
	out, errOut string
	code        int
}

var probeLoops atomic.Int64

func startProbes(c *clusterBed, ports ...string) *probes {
	p := &probes{stop: make(chan struct{}), done: make(chan struct{})}
	loop := probeLoops.Add(1)
	go func() {
		defer close(p.done)
		for k := 0; ; k++ {
			select {
			case <-p.stop:
				return
			default:
			}
			port := ports[k%len(ports)]
			tag := fmt.Sprintf("probe-%d-%d", loop, k)
			at := time.Now()
			out, errOut, code := sshRun(c.alice, port, "root@web01", "echo", tag)
			p.mu.Lock()
			p.results = append(p.results, probeResult{at: at, port: port, tag: tag, out: out, errOut: errOut, code: code})
			p.mu.Unlock()
			select {
			case <-p.stop:
				return
			case <-time.After(200 * time.Millisecond):
			}
		}
	}()
	return p
}

// since counts the results of logins begun after t.
func (p *probes) since(t time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, r := range p.results {
		if r.at.After(t) {
			n++
		}
	}
	return n
}

// finish stops the loop and returns the results.
func (p *probes) finish() []probeResult {
	close(p.stop)
	<-p.done
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.results
}

// TestClusterNodeKilledMidSession: a session through gw-a prints a tick
// every 200 ms; gw-a is killed with SIGKILL. gw-b marks the session
// interrupted within the 30 s (measured and logged); the recording
// in S3, read through gw-b's configuration, holds the ticks up to at most
// 10 s before the kill; `warden audit verify` passes; and logins through
// gw-b, one after another from before the kill to after the reap, all
// succeed.
func TestClusterNodeKilledMidSession(t *testing.T) {
	c := newClusterBed(t, pgServer.Database(t))
	logins := startProbes(c, c.b.port)

	ticks := startStream(t, c.alice, c.a.port, "root@web01", tickScript("kill9", 1500))
	id := c.sessionOf(`start-kill9;`)
	row, err := c.session(id)
	if err != nil || row.RecordingPath == "" || row.NodeID != "gw-a" {
		t.Fatalf("session %s: %+v %v", id, row, err)
	}
	key, err := recstore.Key("recordings/", row.RecordingPath)
	if err != nil {
		t.Fatal(err)
	}
	// Wait for the first upload, then 7 s of the 10 s to the next, so
	// the kill falls late between two uploads: S3 is some 8 s behind.
	c.waitFor("a segment of the recording in S3", time.Minute, func() bool { return len(c.s3.Objects(key+".parts/")) > 0 })
	time.Sleep(7 * time.Second)

	if err := c.a.gw.cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	killAt := time.Now()
	<-c.a.gw.done
	// The client's connection went with the process.
	if code, _ := ticks.wait(t, time.Minute); code == 0 {
		t.Fatalf("the session through the killed node ended cleanly: %q", ticks.output())
	}
	clientN, clientAt, ok := lastTick(strings.Join(ticks.output(), "\n"))
	if !ok {
		t.Fatalf("the client saw no tick: %q", ticks.output())
	}

	var reapedAfter time.Duration
	c.waitFor("gw-b marks gw-a's session interrupted", 2*time.Minute, func() bool {
		r, err := c.session(id)
		if err == nil && !r.EndedAt.IsZero() {
			reapedAfter = time.Since(killAt)
			if r.EndReason != audit.EndInterrupted {
				t.Fatalf("session %s ended %q, want interrupted", id, r.EndReason)
			}
			return true
		}
		return false
	})
	t.Logf("gw-b marked the session interrupted %.1fs after the kill (bound %s: the issue's 30 s + margin)", reapedAfter.Seconds(), reapBound)
	if reapedAfter > reapBound {
		t.Errorf("reaped %s after the kill, want within %s", reapedAfter, reapBound)
	}
	// As an operator sees it, through gw-b's configuration.
	out, errOut, code := c.warden("sessions", "-c", c.b.cfg, "--json")
	var listed []sessionJSON
	if code != 0 || json.Unmarshal([]byte(out), &listed) != nil {
		t.Fatalf("warden sessions -c gw-b: %d %q %q", code, out, errOut)
	}
	found := false
	for _, s := range listed {
		if s.ID == id {
			found = s.EndReason == audit.EndInterrupted && s.EndedAt != ""
		}
	}
	if !found {
		t.Fatalf("warden sessions -c gw-b does not show %s interrupted: %s", id, out)
	}

	// The recording, from S3 as gw-b reads it (gw-a's spool is on gw-a's
	// disk, out of reach).
	s3, err := recstore.OpenS3(c.s3.Config("recordings/"), c.b.data)
	if err != nil {
		t.Fatal(err)
	}
	rec, err := s3.Open(context.Background(), row.RecordingPath)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(rec)
	rec.Close()
	if err != nil {
		t.Fatal(err)
	}
	storedN, storedAt, ok := lastTick(castEvents(t, raw))
	if !ok {
		t.Fatalf("no tick in the %d bytes in S3", len(raw))
	}
	lag := killAt.Sub(storedAt)
	t.Logf("S3 holds ticks up to tick-%d, printed %.1fs before the kill; the client saw up to tick-%d (%.1fs before the kill); %d bytes in S3",
		storedN, lag.Seconds(), clientN, killAt.Sub(clientAt).Seconds(), len(raw))
	if lag > s3LagBound || storedN > clientN {
		t.Errorf("S3 is %s behind at the kill (tick-%d of the client's tick-%d), want at most %s", lag, storedN, clientN, s3LagBound)
	}
	if out, errOut, code := c.warden("play", "-c", c.b.cfg, "--speed", "1000", "--idle-limit", "0.001", id); code != 0 || !strings.Contains(out, "tick-1 ") {
		t.Errorf("warden play -c gw-b: %d %q", code, errOut)
	}

	// Logins through gw-b went on throughout; a few more after the reap.
	reapedAt := killAt.Add(reapedAfter)
	c.waitFor("logins through gw-b after the reap", time.Minute, func() bool { return logins.since(reapedAt) >= 3 })
	results := logins.finish()
	var before, after int
	for _, r := range results {
		if r.code != 0 || r.out != r.tag+"\n" {
			t.Errorf("login through gw-b at %s (%+.1fs from the kill) failed: %d %q %q",
				r.at.Format("15:04:05.000"), r.at.Sub(killAt).Seconds(), r.code, r.out, r.errOut)
		}
		if r.at.Before(killAt) {
			before++
		} else if r.at.After(reapedAt) {
			after++
		}
	}
	t.Logf("%d logins through gw-b: %d before the kill, %d after the reap", len(results), before, after)
	if before == 0 || after == 0 {
		t.Fatalf("logins through gw-b did not span the kill and the reap: %d before, %d after", before, after)
	}
	c.auditVerify(c.b)
}

// castEvents checks raw is asciicast (a header, then events) and returns
// the output data of its whole lines: segments may end mid-line.
func castEvents(t *testing.T, raw []byte) string {
	t.Helper()
	lines := strings.Split(string(raw), "\n")
	lines = lines[:len(lines)-1] // the last is empty or torn
	if len(lines) == 0 {
		t.Fatalf("no header in %q", raw)
	}
	var h struct {
		Version int `json:"version"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &h); err != nil || h.Version != 2 {
		t.Fatalf("header %q: %v", lines[0], err)
	}
	var out strings.Builder
	for i, l := range lines[1:] {
		var ev []any
		if err := json.Unmarshal([]byte(l), &ev); err != nil || len(ev) != 3 {
			t.Fatalf("line %d is not an event: %q (%v)", i+2, l, err)
		}
		if code, _ := ev[1].(string); code == "o" {
			data, _ := ev[2].(string)
			out.WriteString(data)
		}
	}
	return out.String()
}

// TestClusterPostgresRestartUnderLoad restarts PostgreSQL while four
// sessions run through the two nodes and logins come one after another
// through both. Each session either runs to its end or fails closed with a
// `warden:` line; so does each login. Afterwards new logins work through
// both nodes, `warden audit verify` passes, and no event is lost or
// duplicated: every session row is ended and has exactly one session.start
// and one session.end event, and every session a client saw start has a
// row.
func TestClusterPostgresRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("runs PostgreSQL, S3 and two warden serve processes")
	}
	// A server of its own: restarting the package's shared one would cut
	// the other tests' connections.
	srv, dsn := pgtest.Own(t)
	c := newClusterBed(t, dsn)

	nodes := []*clusterNode{c.a, c.a, c.b, c.b}
	streams := make([]*stream, len(nodes))
	for i, n := range nodes {
		// 75 ticks of 200 ms: about 15 s, past the restart.
		streams[i] = startStream(t, c.alice, n.port, "root@web01", tickScript(fmt.Sprintf("pgload%d", i), 75))
	}
	for i, s := range streams {
		c.waitFor(fmt.Sprintf("session %d prints", i), time.Minute, func() bool { return s.contains("tick-3 ") })
	}
	// Two loops of logins, each alternating between the nodes.
	logins := []*probes{startProbes(c, c.a.port, c.b.port), startProbes(c, c.b.port, c.a.port)}
	time.Sleep(time.Second)

	// A restart with the database down for 2 s (fast stop, start on the
	// same port), so that logins meet the outage and not only its end.
	began := time.Now()
	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL down and back in %.1fs", time.Since(began).Seconds())
	time.Sleep(3 * time.Second)
	results := append(logins[0].finish(), logins[1].finish()...)

	var continued, failedClosed int
	for i, s := range streams {
		code, errOut := s.wait(t, 2*time.Minute)
		tag := fmt.Sprintf("pgload%d", i)
		switch {
		case code == 0 && s.contains("done-"+tag):
			continued++
		case code != 0 && strings.Contains(errOut, "warden: "):
			failedClosed++
			t.Logf("session %d through %s failed closed: %q", i, nodes[i].id, strings.TrimSpace(errOut))
		default:
			t.Errorf("session %d through %s: exit %d, stderr %q, last lines %q", i, nodes[i].id, code, errOut, tail(s.output(), 3))
		}
	}
	var ok, refused int
	for _, r := range results {
		switch {
		case r.code == 0 && r.out == r.tag+"\n":
			ok++
		case r.code != 0 && strings.Contains(r.errOut, "warden: "):
			refused++
			t.Logf("login %s at %+.1fs from the restart refused: %q", r.tag, r.at.Sub(began).Seconds(), strings.TrimSpace(r.errOut))
		default:
			t.Errorf("login %s at %+.1fs from the restart: exit %d, stdout %q, stderr %q (neither ran nor failed closed with a warden: line)",
				r.tag, r.at.Sub(began).Seconds(), r.code, r.out, r.errOut)
		}
	}
	t.Logf("sessions in flight: %d continued, %d failed closed; logins during the restart: %d ran, %d refused with a warden: line",
		continued, failedClosed, ok, refused)

	// New logins work through both nodes.
	for _, n := range []*clusterNode{c.a, c.b} {
		if out, errOut, code := c.ssh(c.alice, n, "root@web01", "echo", "after-"+n.id); code != 0 || out != "after-"+n.id+"\n" {
			t.Errorf("login through %s after the restart: %d %q %q\n%s", n.id, code, out, errOut, n.gw.log.String())
		}
	}
	c.auditVerify(c.a)
	c.checkSessionEvents(len(streams)+len(results)+2, refused)

	// Every session a client saw start has a row.
	for i, s := range streams {
		if s.contains("start-pgload" + fmt.Sprint(i)) {
			c.sessionOf(fmt.Sprintf(`start-pgload%d;`, i))
		}
	}
	for _, r := range results {
		if r.code == 0 {
			c.sessionOf(r.tag + `$`)
		}
	}
}

// checkSessionEvents checks every session row of the store is ended and
// has exactly one session.start and one session.end event, and that there
// are at most max rows; refused is how many logins were refused, logged.
func (c *clusterBed) checkSessionEvents(max, refused int) {
	t := c.t
	t.Helper()
	ctx := context.Background()
	var rows []audit.Session
	var events []audit.Event
	// Every client has exited; the nodes end the last rows a moment later.
	// (A read error is retried: the reader's pool may hold a connection
	// the restart cut.) A row still open after a minute is reported below.
	deadline := time.Now().Add(time.Minute)
	for {
		var err error
		rows, err = c.reader().Sessions(ctx, audit.SessionFilter{})
		open := 0
		for _, s := range rows {
			if s.EndedAt.IsZero() {
				open++
			}
		}
		if err == nil {
			events, err = c.reader().Events(ctx, 0, 0)
		}
		if err == nil && (open == 0 || time.Now().After(deadline)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("read the store: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	starts, ends, refusals := map[string]int{}, map[string]int{}, 0
	for _, e := range events {
		if e.Type == "session.refused" && e.Actor == "alice" {
			refusals++
		}
		// Both carry the session in data.session_id (session.end's
		// subject is the target, or the ID for a recovered session).
		id, _ := e.Data["session_id"].(string)
		switch e.Type {
		case "session.start":
			starts[id]++
		case audit.EventSessionEnd:
			ends[id]++
		}
	}
	for _, s := range rows {
		if s.EndedAt.IsZero() || starts[s.ID] != 1 || ends[s.ID] != 1 {
			t.Errorf("session %s (%s, %s): ended %v (%s), %d session.start, %d session.end events; want ended, 1 and 1",
				s.ID, s.NodeID, s.User, !s.EndedAt.IsZero(), s.EndReason, starts[s.ID], ends[s.ID])
		}
		delete(starts, s.ID)
		delete(ends, s.ID)
	}
	if len(starts) != 0 || len(ends) != 0 {
		t.Errorf("session events without a session row: starts %v, ends %v", starts, ends)
	}
	if len(rows) > max {
		t.Errorf("%d session rows, want at most %d", len(rows), max)
	}
	// A login refused because the database is down leaves its audit event
	// only once the database is back: the node holds it and retries on its
	// own schedule (1 s backing off to 30 s; README "Events written
	// late"), so it may not be on the chain yet: the count is a figure,
	// not a check.
	t.Logf("%d session rows, %d events in the chain; %d session.refused events of alice for %d logins refused",
		len(rows), len(events), refusals, refused)
}

func tail(lines []string, n int) []string {
	if len(lines) > n {
		return lines[len(lines)-n:]
	}
	return lines
}
