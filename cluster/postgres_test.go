package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/warden-gw/warden/internal/pgtest"
)

// Two nodes on one database each receive both nodes' messages, their own
// included, and each node's messages in the order it sent them.
func TestPostgresBusesDeliverEachOthersMessagesInOrder(t *testing.T) {
	dsn := pg.Database(t)
	a, b := openBus(t, dsn, nil, 0), openBus(t, dsn, nil, 0)
	inA, inB := make(inbox, 200), make(inbox, 200)
	a.Subscribe("kill", inA.fn)
	b.Subscribe("kill", inB.fn)
	other := make(inbox, 10)
	b.Subscribe("other", other.fn)
	ctx := context.Background()
	const n = 40
	errc := make(chan error, 2)
	for _, node := range []struct {
		bus  *Postgres
		name string
	}{{a, "a"}, {b, "b"}} {
		go func() {
			for i := range n {
				if err := node.bus.Publish(ctx, "kill", fmt.Appendf(nil, `{"from":%q,"seq":%d}`, node.name, i)); err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	for range 2 {
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
	}
	for _, in := range []inbox{inA, inB} {
		seq := map[string]int{}
		for range 2 * n {
			var from string
			var i int
			m := in.next(t)
			if _, err := fmt.Sscanf(m, `{"from":%q,"seq":%d}`, &from, &i); err != nil {
				t.Fatalf("message %q: %v", m, err)
			}
			if i != seq[from] {
				t.Fatalf("from %s: got seq %d, want %d: out of order", from, i, seq[from])
			}
			seq[from]++
		}
	}
	other.none(t, 200*time.Millisecond)
}

// Topics outside [a-z0-9_]{1,40} and payloads NOTIFY cannot carry exactly
// are refused before anything is sent; a payload of exactly MaxPayload
// goes through.
func TestPostgresRefusesBadTopicsAndPayloads(t *testing.T) {
	b := openBus(t, pg.Database(t), nil, 0)
	ctx := context.Background()
	for _, topic := range []string{"", "Kill", "kill;drop", `kill"`, "a-b", "a b", strings.Repeat("a", 41), "ü"} {
		if err := b.Publish(ctx, topic, nil); err == nil {
			t.Errorf("topic %q accepted", topic)
		}
	}
	if err := b.Publish(ctx, "t", make([]byte, MaxPayload+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("large payload: %v", err)
	}
	in := make(inbox, 1)
	b.Subscribe("t", in.fn)
	big := strings.Repeat("é", MaxPayload/2) // 2 bytes each: exactly MaxPayload
	if err := b.Publish(ctx, "t", []byte(big)); err != nil {
		t.Fatalf("payload of MaxPayload bytes: %v", err)
	}
	if got := in.next(t); got != big {
		t.Fatalf("payload of MaxPayload bytes came back as %d bytes", len(got))
	}
}

// A cancelled subscriber is not called again, others go on, and a topic
// subscribed again after everyone left it is listened to again.
func TestPostgresSubscriberCancel(t *testing.T) {
	dsn := pg.Database(t)
	a, b := openBus(t, dsn, nil, 0), openBus(t, dsn, nil, 0)
	var after atomic.Bool
	var cancelled atomic.Bool
	got := make(inbox, 10)
	cancel := a.Subscribe("kill", func(p []byte) {
		if cancelled.Load() {
			after.Store(true)
		}
		got <- string(p)
	})
	stay := make(inbox, 10)
	a.Subscribe("grant_ended", stay.fn)
	ctx := context.Background()
	if err := b.Publish(ctx, "kill", []byte("1")); err != nil {
		t.Fatal(err)
	}
	if m := got.next(t); m != "1" {
		t.Fatalf("got %q", m)
	}
	cancel()
	cancelled.Store(true)
	if err := b.Publish(ctx, "kill", []byte("2")); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "grant_ended", []byte("3")); err != nil {
		t.Fatal(err)
	}
	if m := stay.next(t); m != "3" {
		t.Fatalf("other topic: %q", m)
	}
	got.none(t, 300*time.Millisecond)
	if after.Load() {
		t.Fatal("a cancelled subscriber was called")
	}
	again := make(inbox, 10)
	a.Subscribe("kill", again.fn)
	if err := b.Publish(ctx, "kill", []byte("4")); err != nil {
		t.Fatal(err)
	}
	if m := again.next(t); m != "4" {
		t.Fatalf("subscribed again: got %q", m)
	}
}

// Attack: payloads built to break out of the SQL or the framing (quotes,
// backslashes, a second statement, LISTEN syntax) arrive byte for byte;
// NUL bytes and invalid UTF-8 are refused with ErrPayload rather than
// mangled; a notification sent straight from SQL, even to the bus's own
// control channel, crashes nothing.
func TestPostgresPayloadsCannotBreakOut(t *testing.T) {
	dsn := pg.Database(t)
	a, b := openBus(t, dsn, nil, 0), openBus(t, dsn, nil, 0)
	in := make(inbox, 20)
	a.Subscribe("kill", in.fn)
	ctx := context.Background()
	for _, p := range []string{
		`'); SELECT pg_notify('warden_kill', 'forged'); --`,
		`"; UNLISTEN *; --`,
		`\'\\x00\\' $1 $$ E'\n'`,
		"{\"session\":\"x\",\"reason\":\"tab\there\\u0000\"}",
		"",
		"日本語 🚀",
	} {
		if err := b.Publish(ctx, "kill", []byte(p)); err != nil {
			t.Fatalf("publish %q: %v", p, err)
		}
		if got := in.next(t); got != p {
			t.Fatalf("sent %q, got %q", p, got)
		}
	}
	for _, p := range [][]byte{[]byte("a\x00b"), {0xff, 0xfe}, []byte("ok\xc3"), {0xed, 0xa0, 0x80}} {
		if err := b.Publish(ctx, "kill", p); !errors.Is(err, ErrPayload) {
			t.Errorf("payload %q: %v, want ErrPayload", p, err)
		}
	}
	// Straight from SQL: a stray message on a topic, and garbage on the
	// control channel of bus a.
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{`NOTIFY warden_kill, 'from sql'`, `SELECT pg_notify('` + a.ctl + `', 'garbage')`} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if got := in.next(t); got != "from sql" {
		t.Fatalf("got %q", got)
	}
	if err := b.Publish(ctx, "kill", []byte("still up")); err != nil {
		t.Fatal(err)
	}
	if got := in.next(t); got != "still up" {
		t.Fatalf("got %q", got)
	}
}

// The listener survives a PostgreSQL restart: Publish fails while the
// server is down, the listener reconnects by itself, runs the resyncs,
// listens to every topic again (one subscribed while down included), and
// the DSN's password never reaches the log.
func TestPostgresListenerSurvivesRestart(t *testing.T) {
	srv, dsn := pgtest.Own(t) // stopped after the buses close (cleanups run last first)
	ctx := context.Background()
	log := &logBuf{}
	a, b := openBus(t, dsn, log, 0), openBus(t, dsn, nil, 0)
	resyncs := make(chan struct{}, 10)
	a.OnResync(func() { resyncs <- struct{}{} })
	in := make(inbox, 10)
	a.Subscribe("kill", in.fn)
	if err := b.Publish(ctx, "kill", []byte("before")); err != nil {
		t.Fatal(err)
	}
	if m := in.next(t); m != "before" {
		t.Fatalf("got %q", m)
	}
	drain(resyncs)

	if err := srv.Halt(); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err := b.Publish(pctx, "kill", []byte("while down"))
	cancel()
	if err == nil {
		t.Fatal("Publish succeeded with the server down")
	}
	t.Logf("publish while down: %v", err)
	late := make(inbox, 10)
	a.Subscribe("grant_ended", late.fn) // returns at once: not connected
	down := time.Now()
	if err := srv.Resume(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-resyncs:
		t.Logf("listening again %v after the restart began", time.Since(down))
	case <-time.After(60 * time.Second): // a hang guard
		t.Fatalf("no resync after the restart; log:\n%s", log)
	}
	if err := b.Publish(ctx, "kill", []byte("after")); err != nil {
		t.Fatal(err)
	}
	if m := in.next(t); m != "after" {
		t.Fatalf("got %q", m)
	}
	if err := b.Publish(ctx, "grant_ended", []byte("late")); err != nil {
		t.Fatal(err)
	}
	if m := late.next(t); m != "late" {
		t.Fatalf("got %q", m)
	}
	u, _ := url.Parse(dsn)
	pw, _ := u.User.Password()
	if out := log.String(); !strings.Contains(out, "lost the listening connection") || strings.Contains(out, pw) {
		t.Fatalf("log (must tell of the loss, never the password):\n%s", out)
	}
}

func drain(c chan struct{}) {
	for {
		select {
		case <-c:
		default:
			return
		}
	}
}

// A wrong password fails Open at once with the server's reason, and
// neither password appears in the error.
func TestPostgresOpenRefusedNamesNoPassword(t *testing.T) {
	dsn := pg.Database(t)
	u, _ := url.Parse(dsn)
	pw, _ := u.User.Password()
	u.User = url.UserPassword(u.User.Username(), "wrong-"+pw)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := Open(ctx, u.String(), Options{})
	if err == nil {
		b.Close()
		t.Fatal("Open with a wrong password succeeded")
	}
	if ctx.Err() != nil || !strings.Contains(err.Error(), "password") || strings.Contains(err.Error(), pw) {
		t.Fatalf("Open: %v", err)
	}
}

// A subscriber too slow for its messages cannot make the bus hold them
// without bound: past the queue's limit they are dropped, with a log line,
// and the subscribers resync after the ones kept.
func TestPostgresSlowSubscriberResyncsInsteadOfQueueingForever(t *testing.T) {
	dsn := pg.Database(t)
	log := &logBuf{}
	a, b := openBus(t, dsn, log, 0), openBus(t, dsn, nil, 0)
	a.mu.Lock()
	a.maxQueue = 3
	a.mu.Unlock()
	resyncs := make(chan struct{}, 10)
	a.OnResync(func() { resyncs <- struct{}{} })
	entered, release := make(chan struct{}), make(chan struct{})
	a.Subscribe("block", func([]byte) {
		close(entered)
		<-release
	})
	got := make(inbox, 20)
	a.Subscribe("kill", got.fn)
	ctx := context.Background()
	if err := b.Publish(ctx, "block", nil); err != nil {
		t.Fatal(err)
	}
	<-entered      // the delivery goroutine is stuck in a subscriber
	drain(resyncs) // the first connection's, delivered before
	for i := range 10 {
		if err := b.Publish(ctx, "kill", fmt.Appendf(nil, "%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// 0 to 2 are queued, 3 to 9 dropped.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		a.mu.Lock()
		d := a.dropped
		a.mu.Unlock()
		if d == 7 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d messages dropped, want 7", d)
		}
	}
	close(release)
	for _, want := range []string{"0", "1", "2"} {
		if m := got.next(t); m != want {
			t.Fatalf("got %q, want %q", m, want)
		}
	}
	select {
	case <-resyncs:
	case <-time.After(30 * time.Second):
		t.Fatal("no resync after messages were dropped")
	}
	got.none(t, 200*time.Millisecond)
	if !strings.Contains(log.String(), `dropped=7`) {
		t.Fatalf("log:\n%s", log)
	}
}
