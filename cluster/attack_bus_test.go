package cluster

import (
	"context"
	"crypto/rand"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// openNodeBus opens a bus as warden serve does for a node whose cluster
// key (derived from the gateway host key every node shares) is key.
func openNodeBus(t *testing.T, dsn string, key []byte) *Postgres {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := Open(ctx, dsn, Options{Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil)), Key: key})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(b.Close)
	return b
}

// Attack: PostgreSQL checks no privilege for NOTIFY or LISTEN, so any role
// that may connect to Warden's database (the README's SELECT-only
// auditors' role, or any role at all, since CREATE DATABASE grants CONNECT
// to PUBLIC) could publish on the cluster bus: a kill ending any session
// on any node, a grant_ended ending a grant's sessions, a watch_open that
// streams a live session to a topic it listens on. A node must act only
// on messages from a holder of the cluster's key, and not on one replayed
// by a listener who captured it.
func TestAttackConnectOnlyRoleCannotForgeOrReplayBusMessages(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := pg.Database(t)
	ro, err := pg.Server(t).CreateReadOnlyRole(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	a, b := openNodeBus(t, dsn, key), openNodeBus(t, dsn, key)
	in := make(inbox, 10)
	a.Subscribe("kill", in.fn)

	att, err := pgx.Connect(ctx, ro)
	if err != nil {
		t.Fatal(err)
	}
	defer att.Close(context.Background())
	forged := `{"session":"aaaaaaaaaaaaaaaaaaaaaaaaaa","actor":"mallory","reason":"forged"}`
	if _, err := att.Exec(ctx, `SELECT pg_notify('warden_kill', $1)`, forged); err != nil {
		t.Fatalf("the connect-only role could not NOTIFY (then the bus is safe from it): %v", err)
	}
	// Messages are delivered in order: had the forged one been taken, it
	// would come before this one.
	if err := b.Publish(ctx, "kill", []byte(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	if got := in.next(t); got != `{"n":1}` {
		t.Fatalf("a node took a message from a role holding no cluster key: %q", got)
	}

	// Replay: the role listens, captures a node's message, sends it again.
	if _, err := att.Exec(ctx, `LISTEN warden_kill`); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "kill", []byte(`{"n":2}`)); err != nil {
		t.Fatal(err)
	}
	if got := in.next(t); got != `{"n":2}` {
		t.Fatalf("got %q, want the second message", got)
	}
	n, err := att.WaitForNotification(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := att.Exec(ctx, `SELECT pg_notify('warden_kill', $1)`, n.Payload); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, "kill", []byte(`{"n":3}`)); err != nil {
		t.Fatal(err)
	}
	if got := in.next(t); got != `{"n":3}` {
		t.Fatalf("a node took a replayed message again: %q", got)
	}
}

// The seal binds the topic, the payload and the time, and only the key
// makes it: a message moved to another topic, altered, made with another
// key, or older than MaxSkew is refused; a sealed message opens once.
func TestAttackSealRefusesWhatTheKeyDidNotMake(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	key := make([]byte, 32)
	other := append([]byte(nil), key...)
	other[0] ^= 1
	s, err := newSealer(key, clock)
	if err != nil {
		t.Fatal(err)
	}
	mallory, _ := newSealer(other, clock)
	if _, err := newSealer(key[:31], nil); err == nil {
		t.Fatal("a 31-byte key accepted")
	}
	msg, err := s.seal("kill", []byte(`{"session":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	forged, _ := mallory.seal("kill", []byte(`{"session":"x"}`))
	head, rest, _ := strings.Cut(msg, ".")
	for name, m := range map[string]string{
		"unsealed":       `{"session":"x"}`,
		"other key":      forged,
		"payload edited": msg[:len(msg)-2] + `y"}`,
		"truncated":      head + "." + rest[:10],
	} {
		if p, err := s.open("kill", m); err == nil {
			t.Errorf("%s: opened as %q", name, p)
		}
	}
	if p, err := s.open("grant_ended", msg); err == nil {
		t.Errorf("moved to another topic: opened as %q", p)
	}
	// Too old, too new.
	now = now.Add(MaxSkew + time.Second)
	if _, err := s.open("kill", msg); err == nil {
		t.Error("a message older than MaxSkew opened")
	}
	now = now.Add(-2*MaxSkew - 2*time.Second)
	if _, err := s.open("kill", msg); err == nil {
		t.Error("a message from the future opened")
	}
	now = now.Add(MaxSkew + time.Second)
	if p, err := s.open("kill", msg); err != nil || string(p) != `{"session":"x"}` {
		t.Fatalf("the genuine message: %q, %v", p, err)
	}
	if _, err := s.open("kill", msg); err == nil {
		t.Error("the same message opened twice")
	}
	// Two identical payloads sent on purpose are two messages.
	msg2, _ := s.seal("kill", []byte(`{"session":"x"}`))
	if _, err := s.open("kill", msg2); err != nil {
		t.Errorf("a second message with the same payload: %v", err)
	}
	if len(msg2)-len(`{"session":"x"}`) != sealOverhead {
		t.Errorf("overhead %d, want %d", len(msg2)-len(`{"session":"x"}`), sealOverhead)
	}
}

// A node with another key (another host key: a node that should not be in
// this cluster, or the key of an old deployment) is not heard, and a bus
// without a key, such as a node from before messages were sealed, is not
// either; the nodes with the key hear each other.
func TestAttackBusOfAnotherKeyIsNotHeard(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := pg.Database(t)
	key, other := make([]byte, 32), make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	copy(other, key)
	other[31] ^= 0x80
	a, b := openNodeBus(t, dsn, key), openNodeBus(t, dsn, key)
	stranger, old := openNodeBus(t, dsn, other), openBus(t, dsn, nil, 0)
	in := make(inbox, 10)
	a.Subscribe("grant_ended", in.fn)
	for _, bus := range []*Postgres{stranger, old} {
		if err := bus.Publish(ctx, "grant_ended", []byte(`{"grant":1,"end_reason":"revoked"}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Publish(ctx, "grant_ended", []byte(`{"grant":2,"end_reason":"revoked"}`)); err != nil {
		t.Fatal(err)
	}
	if got := in.next(t); got != `{"grant":2,"end_reason":"revoked"}` {
		t.Fatalf("heard %q; want only the node with the key", got)
	}
	in.none(t, 300*time.Millisecond)
	if _, err := Open(ctx, dsn, Options{Key: key[:16]}); err == nil {
		t.Fatal("a 16-byte key accepted")
	}
}
