package gateway_test

import (
	"bufio"
	"context"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/recorder"
)

// The console's data: a session that showed DROP TABLE on screen is found
// by the output index once it has ended, its commands carry offsets into
// its recording that a player can seek to, and its evidence checks out.
func TestSessionOutputIndexedAndCommandsSeekable(t *testing.T) {
	// Each reading of this clock is at least a microsecond after the one
	// before, so a marker stamped by the clock after the event that showed
	// its line can never share that event's time by luck.
	b := newTestbed(t, bedOptions{configure: func(_ *testbed, o *gateway.Options) { o.Now = steppingClock() }})
	p := b.alice.StartPTY(t, b.port, "root@web01", 100, 30)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	// The phrase is printed by the host, not typed: only the screen has
	// it, so only the output index can find it.
	p.Send("printf '%s %s %s\\n' DROP TABLE customers\r")
	p.Expect(t, `DROP TABLE customers`, expectWait)
	// The marker's text differs from the typed line, so its echo cannot
	// match: exit is typed only after the sleep has ended.
	p.Send("sleep 1; echo slept-$((1+1))\r")
	p.Expect(t, `slept-2`, expectWait)
	p.Send("exit\r")
	if code, err := p.Wait(expectWait); err != nil || code != 0 {
		t.Fatalf("exit code %d, err %v; output %q", code, err, p.Output())
	}
	s := b.lastSession("alice")

	// Indexed by the store's indexer after the end, with no other help.
	ctx := context.Background()
	deadline := time.Now().Add(expectWait)
	for {
		page, err := b.store.SearchSessions(ctx, audit.SessionQuery{OutputContains: "drop table customers"})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Sessions) == 1 && page.Sessions[0].ID == s.ID {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("session %s not found by its output: %+v", s.ID, page.Sessions)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, q := range []audit.SessionQuery{
		{OutputContains: "DROP TABLE orders"},
		{OutputContains: "drop table customers", Tenants: []string{"globex"}},
		{OutputContains: "drop table customers", User: "bob"},
	} {
		if page, err := b.store.SearchSessions(ctx, q); err != nil || len(page.Sessions) != 0 {
			t.Errorf("%+v: %v %+v", q, err, page.Sessions)
		}
	}
	if page, err := b.store.SearchSessions(ctx, audit.SessionQuery{CommandContains: "SLEEP 1;", User: "alice"}); err != nil ||
		len(page.Sessions) != 1 || page.Sessions[0].ID != s.ID {
		t.Errorf("command search: %v %+v", err, page.Sessions)
	}

	// Each command's offset lies within the recording and they increase.
	// More exactly, each is stamped where a player shows it: at the time
	// its Enter reached the gateway, at or before the input event that
	// carried it (readline's lines, settled at Enter), or at the output
	// event that echoed it (the first line, typed before the shell read
	// it). The clock steps, so a stamp read after either event would be
	// later than it, and for exit, which the last output follows, past
	// the recording's end.
	events := castEvents(t, filepath.Join(b.data, filepath.FromSlash(s.RecordingPath)))
	if len(events) == 0 {
		t.Fatal("empty cast")
	}
	dur := events[len(events)-1].Time
	cmds := b.commands(s.ID)
	if len(cmds) != 4 {
		t.Fatalf("commands %+v", shellRows(cmds))
	}
	prev := -1.0
	for _, c := range cmds {
		if c.Offset == nil || *c.Offset <= prev || *c.Offset > dur {
			t.Fatalf("command %q offset %v: want increasing, within 0..%v", c.Command, derefOffset(c.Offset), dur)
		}
		prev = *c.Offset
		atInput := slices.ContainsFunc(events, func(e recorder.Event) bool {
			return e.Code == "i" && strings.Contains(e.Data, c.Command) && *c.Offset <= e.Time+5e-7
		})
		// Half a microsecond: the event's text and the offset's float
		// may round differently; stepped stamps are a microsecond apart.
		atEcho := slices.ContainsFunc(events, func(e recorder.Event) bool {
			return e.Code == "o" && math.Abs(e.Time-*c.Offset) < 5e-7
		})
		if !atInput && !atEcho {
			t.Errorf("command %q offset %v is neither at its input nor at an output event: %+v", c.Command, *c.Offset, events)
		}
	}
	// sleep 1 ran for a second, and exit was typed after it.
	if gap := *cmds[3].Offset - *cmds[2].Offset; gap < 1 {
		t.Errorf("exit only %.3fs after sleep 1", gap)
	}

	check, err := b.store.CheckSession(ctx, b.data, s.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !check.Match || check.FileSHA256 != s.RecordingSHA256 {
		t.Fatalf("check: %+v", check)
	}
}

// Markers that no echo settles lie inside the recording too: an exec
// command, run or refused, sits at the cast's start, before everything
// its host printed (nothing, for true), and a refused typed line at or
// before the input event that carried its Enter. The clock steps, so a
// stamp read later would fall after these events.
func TestMarkersWithoutEchoInsideRecording(t *testing.T) {
	b := newTestbed(t, bedOptions{configure: func(_ *testbed, o *gateway.Options) { o.Now = steppingClock() }})
	offsetOf := func(s audit.Session, command string) (float64, []recorder.Event) {
		t.Helper()
		for _, c := range b.commands(s.ID) {
			if c.Command == command {
				if c.Offset == nil {
					t.Fatalf("command %q has no offset", command)
				}
				return *c.Offset, castEvents(t, filepath.Join(b.data, filepath.FromSlash(s.RecordingPath)))
			}
		}
		t.Fatalf("command %q not logged: %+v", command, shellRows(b.commands(s.ID)))
		return 0, nil
	}

	if _, errOut, code := b.run(b.alice, "root@web01", "true"); code != 0 {
		t.Fatalf("true: exit %d, %s", code, errOut)
	}
	if off, events := offsetOf(b.waitSessionEnded(b.lastSession("alice").ID), "true"); off != 0 {
		t.Errorf("exec true at %v, want the cast's start; events %+v", off, events)
	}
	if _, errOut, code := b.run(b.alice, "root@web01", "shutdown -h now"); code == 0 || !strings.Contains(errOut, "command denied") {
		t.Fatalf("shutdown: exit %d, %s", code, errOut)
	}
	if off, events := offsetOf(b.waitSessionEnded(b.lastSession("alice").ID), "shutdown -h now"); off != 0 {
		t.Errorf("refused exec at %v, want the cast's start; events %+v", off, events)
	}

	p := b.alice.StartPTY(t, b.port, "root@web01", 100, 30)
	p.Send("export PS1='SH> '\r")
	p.Expect(t, `SH> $`, expectWait)
	p.Send("shutdown -h now\r")
	p.Expect(t, `warden: command denied by rule \^shutdown of role web-admin; not sent`, expectWait)
	p.Send("exit\r")
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	off, events := offsetOf(b.waitSessionEnded(b.lastSession("alice").ID), "shutdown -h now")
	if !slices.ContainsFunc(events, func(e recorder.Event) bool {
		return e.Code == "i" && strings.Contains(e.Data, "shutdown -h now") && off <= e.Time+5e-7
	}) {
		t.Errorf("refused line at %v, after the input event that carried it: %+v", off, events)
	}
}

// steppingClock is the wall clock, except that each reading is at least a
// microsecond after the previous one.
func steppingClock() func() time.Time {
	var mu sync.Mutex
	var last time.Time
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t := time.Now()
		if next := last.Add(time.Microsecond); t.Before(next) {
			t = next
		}
		last = t
		return t
	}
}

// castEvents returns a cast's events, in order.
func castEvents(t *testing.T, path string) []recorder.Event {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	sc.Scan() // header
	var events []recorder.Event
	for sc.Scan() {
		ev, err := recorder.ParseEvent(sc.Bytes())
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, ev)
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("cast %s: %v", path, err)
	}
	return events
}

// A file transfer has no player: its file operations are its command rows,
// without offsets, and it has nothing in the output index.
func TestTransferSessionListsFileOperations(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	local, remote := t.TempDir(), remoteDir(t)
	src, _ := randomFile(t, local, "up.bin", 4096)
	b.scp(src, sshtest.Remote("root@web01", remote+"/up.bin"))
	s := b.lastSession("alice")
	cmds := b.commands(s.ID)
	var ops []string
	for _, c := range cmds {
		if c.Offset != nil {
			t.Errorf("transfer row %q has offset %v", c.Command, *c.Offset)
		}
		if c.Source == "sftp" {
			ops = append(ops, c.Command)
		}
	}
	if !containsPrefix(ops, "put "+remote+"/up.bin") {
		t.Fatalf("file operations %q", ops)
	}
	check, err := b.store.CheckSession(context.Background(), b.data, s.ID)
	if err != nil || !check.Match || check.RecordingPath != "" {
		t.Fatalf("check %+v, %v", check, err)
	}
	if n, err := b.store.IndexPending(context.Background()); err != nil || n != 0 {
		t.Errorf("a transfer was indexed: %d, %v", n, err)
	}
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

func derefOffset(p *float64) any {
	if p == nil {
		return nil
	}
	return *p
}
