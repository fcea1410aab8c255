package cluster

import (
	"context"
	"errors"
	"fmt"
	"sync"
)

// MaxPayload bounds a message. PostgreSQL's NOTIFY refuses payloads of
// 8000 bytes or more; the rest of that is kept for the topic's framing.
const MaxPayload = 7000

// ErrTooLarge is a payload above MaxPayload: the sender must split it.
var ErrTooLarge = errors.New("cluster: message payload too large")

// Bus carries small messages to every node of the cluster, this one
// included. Delivery is at most once and in order per sender and topic;
// a subscriber that must not miss anything also registers a resync. A
// payload is at most MaxPayload bytes of valid UTF-8 without NUL bytes
// (ErrTooLarge, ErrPayload): callers send JSON.
type Bus interface {
	// Publish sends payload on topic to every subscriber on every node.
	// An error means the message may not have gone out: the caller fails
	// closed (e.g. a kill reports that it could not reach the cluster).
	Publish(ctx context.Context, topic string, payload []byte) error
	// Subscribe calls fn for each message on topic, in one goroutine per
	// bus (fn must not block for long). cancel stops the calls; after it
	// returns, fn is not running and will not run again. cancel must not
	// be called from inside fn.
	Subscribe(topic string, fn func(payload []byte)) (cancel func())
	// OnResync registers fn to run after the bus (re)connects, when
	// messages may have been lost: fn reads its state from the store again.
	OnResync(fn func())
}

// checkTopic accepts topics of lowercase letters, digits and '_', 1 to 40
// bytes: a topic becomes part of a PostgreSQL channel name.
func checkTopic(topic string) error {
	if len(topic) == 0 || len(topic) > 40 {
		return fmt.Errorf("cluster: topic %q: 1 to 40 bytes", topic)
	}
	for i := 0; i < len(topic); i++ {
		c := topic[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_') {
			return fmt.Errorf("cluster: topic %q: only a-z, 0-9 and _", topic)
		}
	}
	return nil
}

// Local is the bus of a node alone on its store: Publish hands the
// message to this process's subscribers, in one delivery goroutine so
// that fn never runs inside the publisher's locks. Close stops it.
type Local struct {
	mu     sync.Mutex
	subs   map[string]map[int]func([]byte)
	next   int
	queue  chan localMsg
	done   chan struct{}
	closed bool
	// running guards the callbacks: cancel waits for a running fn.
	running sync.Mutex
}

type localMsg struct {
	topic   string
	payload []byte
}

// NewLocal starts an in-process bus.
func NewLocal() *Local {
	l := &Local{subs: map[string]map[int]func([]byte){}, queue: make(chan localMsg, 1024), done: make(chan struct{})}
	go l.deliver()
	return l
}

func (l *Local) deliver() {
	defer close(l.done)
	for m := range l.queue {
		// The subscribers are read with running held, so a cancel that
		// has returned is never followed by a call.
		l.running.Lock()
		l.mu.Lock()
		fns := make([]func([]byte), 0, len(l.subs[m.topic]))
		for _, fn := range l.subs[m.topic] {
			fns = append(fns, fn)
		}
		l.mu.Unlock()
		for _, fn := range fns {
			fn(m.payload)
		}
		l.running.Unlock()
	}
}

// Publish implements Bus. It refuses what the PostgreSQL bus refuses, so
// that a node alone finds a payload the cluster could not carry.
func (l *Local) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := checkTopic(topic); err != nil {
		return err
	}
	if err := checkPayload(payload); err != nil {
		return err
	}
	m := localMsg{topic: topic, payload: append([]byte(nil), payload...)}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return errors.New("cluster: bus closed")
	}
	select {
	case l.queue <- m:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Subscribe implements Bus.
func (l *Local) Subscribe(topic string, fn func([]byte)) (cancel func()) {
	l.mu.Lock()
	if l.subs[topic] == nil {
		l.subs[topic] = map[int]func([]byte){}
	}
	id := l.next
	l.next++
	l.subs[topic][id] = fn
	l.mu.Unlock()
	return func() {
		l.mu.Lock()
		delete(l.subs[topic], id)
		l.mu.Unlock()
		l.running.Lock() // wait out a delivery in progress
		l.running.Unlock()
	}
}

// OnResync implements Bus: a local bus never disconnects.
func (l *Local) OnResync(func()) {}

// Close stops delivery after the messages already queued.
func (l *Local) Close() {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		close(l.queue)
	}
	l.mu.Unlock()
	<-l.done
}
