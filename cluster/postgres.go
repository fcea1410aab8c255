package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgxlisten"
)

// channelPrefix makes a topic a PostgreSQL channel name: "warden_kill".
// With topics of at most 40 bytes of [a-z0-9_], a channel is at most 47
// bytes, below PostgreSQL's 63-byte identifier limit, so it is never
// truncated into another topic's channel.
const channelPrefix = "warden_"

// ctlPrefix names each bus's own control channel. It does not start with
// channelPrefix, so no topic can name it.
const ctlPrefix = "wardenctl_"

// Defaults of Options.
const (
	defaultLeaderRetry = 2 * time.Second
	// reconnectMin and reconnectMax bound the listener's backoff: the
	// first retry after a drop waits reconnectMin, each failure doubles
	// it. The cap keeps a node that lost PostgreSQL for a while back on
	// the bus within a few seconds of its return.
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 2 * time.Second
	// subscribeWait bounds how long Subscribe waits for the listening
	// connection to LISTEN a new topic.
	subscribeWait = 10 * time.Second
	// maxQueue bounds the messages received and not yet delivered. Past
	// it, messages are dropped and the subscribers resync instead.
	maxQueue = 4096
)

// ErrPayload is a payload NOTIFY cannot carry: PostgreSQL takes it as text
// in the database's encoding, so it must be valid UTF-8 without NUL bytes.
// Callers send JSON, which is.
var ErrPayload = errors.New("cluster: message payload must be valid UTF-8 without NUL bytes")

// errClosed is Publish on a closed bus.
var errClosed = errors.New("cluster: bus closed")

// Options configures Open. The zero value is ready to use.
type Options struct {
	// Logger receives the bus's operational logs; nil means slog.Default().
	// The DSN is never logged: it may hold the database password.
	Logger *slog.Logger
	// LeaderRetry is how often a node that does not lead tries to take
	// the lead, and how often a leader checks its connection; 0 means 2 s.
	LeaderRetry time.Duration
	// Key, when set (at least MinKeyLen bytes, the same on every node),
	// authenticates every message (sign.go): what a role without it
	// publishes, or replays, is dropped. warden serve derives it from the
	// gateway host key, which every node of a cluster shares.
	Key []byte
}

// Postgres is the Bus and the Leader of nodes sharing a PostgreSQL store:
// LISTEN/NOTIFY on one channel per topic ("warden_" + topic), and
// session-level advisory locks for leadership.
//
// Concurrency: Publish and leadership checks use their own connections.
// One goroutine (pgxlisten's Listen) owns the listening connection and is
// the only one to LISTEN, UNLISTEN or register handlers; it queues what
// arrives. A second goroutine delivers the queue to the subscribers, one
// message at a time, and runs the resyncs. Close stops both and waits.
type Postgres struct {
	cfg      *pgx.ConnConfig // for the listening and leader connections
	pool     *pgxpool.Pool   // for Publish
	password string          // redacted from logged errors
	log      *slog.Logger
	retry    time.Duration
	ctl      string // this bus's control channel
	ln       *pgxlisten.Listener
	sealer   *sealer // nil: messages are not authenticated (no Options.Key)

	ctx  context.Context // ends at Close
	stop context.CancelFunc
	wg   sync.WaitGroup
	kick chan struct{} // wakes the delivery goroutine
	up   chan struct{} // closed at the first connection

	mu        sync.Mutex
	closed    bool
	subs      map[string]map[int]func([]byte) // by topic
	next      int
	resyncs   []func()
	listened  map[string]bool            // channels LISTENed on the current connection
	waiters   map[string][]chan struct{} // Subscribe calls waiting for their LISTEN
	connected bool                       // the listening connection is set up
	queue     []message                  // received, not yet delivered
	resync    bool                       // messages were dropped: run the resyncs after the queue
	fails     int                        // listener connections lost or failed in a row
	tried     bool                       // the listener has connected before
	everUp    bool                       // the listener has been set up before
	handled   map[string]bool            // channels given to ln.Handle; listen goroutine only
	running   sync.Mutex                 // held while subscribers' fns run
	dropped   int                        // messages dropped since the last log line
	maxQueue  int                        // the constant maxQueue; tests lower it
}

// message is a received notification, or a resync marker queued at a
// (re)connection, so that the resyncs run after the messages received
// before it and before those received after.
type message struct {
	topic   string
	payload []byte
	resync  bool
}

// Open connects to the PostgreSQL database of dsn (the store's) and starts
// listening. It returns once the listening connection is set up, so that
// messages published after a Subscribe are received, or with an error
// when ctx ends first or the database cannot be reached.
func Open(ctx context.Context, dsn string, opt Options) (*Postgres, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		// pgx redacts the password from parse errors only on a best-effort
		// basis, so its message is not repeated.
		return nil, errors.New("cluster: cannot parse the store's DSN (not shown: it may hold a password)")
	}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, errors.New("cluster: cannot parse the store's DSN (not shown: it may hold a password)")
	}
	// Keepalive probes find a connection whose peer went silent (a cut
	// link): without them a listener could wait forever on a dead socket
	// and miss every message. 5 s idle, then 3 probes 2 s apart.
	dialer := &net.Dialer{KeepAliveConfig: net.KeepAliveConfig{Enable: true, Idle: 5 * time.Second, Interval: 2 * time.Second, Count: 3}}
	cfg.DialFunc, pcfg.ConnConfig.DialFunc = dialer.DialContext, dialer.DialContext
	cfg.RuntimeParams["application_name"] = "warden cluster"
	pcfg.ConnConfig.RuntimeParams["application_name"] = "warden cluster publish"
	pcfg.MaxConns = 4
	p := &Postgres{
		cfg: cfg, password: cfg.Password, log: opt.Logger, retry: opt.LeaderRetry,
		kick: make(chan struct{}, 1), up: make(chan struct{}),
		subs: map[string]map[int]func([]byte){}, listened: map[string]bool{},
		waiters: map[string][]chan struct{}{}, handled: map[string]bool{}, maxQueue: maxQueue,
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	if p.retry <= 0 {
		p.retry = defaultLeaderRetry
	}
	if opt.Key != nil {
		if p.sealer, err = newSealer(opt.Key, nil); err != nil {
			return nil, err
		}
	}
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	p.ctl = ctlPrefix + hex.EncodeToString(b[:])
	if p.pool, err = pgxpool.NewWithConfig(ctx, pcfg); err != nil {
		return nil, fmt.Errorf("cluster: connect: %w", p.redact(err))
	}
	// A wrong password or an unreachable server is reported now, rather
	// than as a listener that never comes up.
	if err := p.pool.Ping(ctx); err != nil {
		p.pool.Close()
		return nil, fmt.Errorf("cluster: connect: %w", p.redact(err))
	}
	p.ctx, p.stop = context.WithCancel(context.Background())
	p.ln = &pgxlisten.Listener{
		Connect:        p.connectListener,
		LogError:       p.logListenError,
		ReconnectDelay: -1, // connectListener waits, with backoff
	}
	p.ln.Handle(p.ctl, ctlHandler{p})
	p.handled[p.ctl] = true
	p.wg.Add(2)
	go func() {
		defer p.wg.Done()
		p.ln.Listen(p.ctx) // returns when p.ctx ends
	}()
	go func() {
		defer p.wg.Done()
		p.deliver()
	}()
	select {
	case <-p.up:
		return p, nil
	case <-ctx.Done():
		p.Close()
		return nil, fmt.Errorf("cluster: waiting for the listening connection: %w", ctx.Err())
	}
}

// checkPayload refuses what NOTIFY cannot carry exactly.
func checkPayload(payload []byte) error {
	if len(payload) > MaxPayload {
		return ErrTooLarge
	}
	if !utf8Valid(payload) {
		return ErrPayload
	}
	return nil
}

// utf8Valid is valid UTF-8 without NUL: PostgreSQL's text refuses both.
func utf8Valid(b []byte) bool {
	return bytes.IndexByte(b, 0) < 0 && utf8.Valid(b)
}

// Publish implements Bus: pg_notify on the topic's channel, from a pooled
// connection. The payload is a query parameter, never part of the SQL.
func (p *Postgres) Publish(ctx context.Context, topic string, payload []byte) error {
	if err := checkTopic(topic); err != nil {
		return err
	}
	if err := checkPayload(payload); err != nil {
		return err
	}
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	if closed {
		return errClosed
	}
	msg := string(payload)
	if p.sealer != nil {
		var err error
		if msg, err = p.sealer.seal(topic, payload); err != nil {
			return fmt.Errorf("cluster: publish %s: %w", topic, err)
		}
	}
	err := p.notify(ctx, channelPrefix+topic, msg)
	if err != nil {
		return fmt.Errorf("cluster: publish %s: %w", topic, p.redact(err))
	}
	return nil
}

// notify sends one notification. A pooled connection that PostgreSQL
// dropped (a restart) fails before anything is sent; that is retried once
// on a fresh connection.
func (p *Postgres) notify(ctx context.Context, channel, payload string) error {
	_, err := p.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, payload)
	if err != nil && pgconn.SafeToRetry(err) && ctx.Err() == nil {
		_, err = p.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, channel, payload)
	}
	return err
}

// Subscribe implements Bus. The first subscriber of a topic asks the
// listening connection to LISTEN its channel and waits (up to 10 s) until
// it does, so that a message published after Subscribe returns is
// received; while the connection is down it does not wait: the next
// connection LISTENs every subscribed topic and then runs the resyncs. A
// topic Publish would refuse is logged and never delivered.
func (p *Postgres) Subscribe(topic string, fn func([]byte)) (cancel func()) {
	if err := checkTopic(topic); err != nil {
		p.log.Error("cluster: subscribe refused", "err", err)
		return func() {}
	}
	ch := channelPrefix + topic
	p.mu.Lock()
	if p.subs[topic] == nil {
		p.subs[topic] = map[int]func([]byte){}
	}
	id := p.next
	p.next++
	p.subs[topic][id] = fn
	var wait chan struct{}
	if !p.listened[ch] && !p.closed {
		wait = make(chan struct{})
		p.waiters[ch] = append(p.waiters[ch], wait)
	}
	connected := p.connected
	p.mu.Unlock()
	cancel = func() {
		p.mu.Lock()
		delete(p.subs[topic], id)
		if len(p.subs[topic]) == 0 {
			delete(p.subs, topic) // UNLISTENed at the next reconcile
		}
		p.mu.Unlock()
		p.running.Lock() // wait out a delivery in progress
		p.running.Unlock()
	}
	if wait == nil {
		return cancel
	}
	defer p.dropWaiter(ch, wait)
	ctx, stop := context.WithTimeout(p.ctx, subscribeWait)
	defer stop()
	if err := p.notify(ctx, p.ctl, "sync"); err != nil || !connected {
		return cancel // the next connection LISTENs it
	}
	select {
	case <-wait:
	case <-ctx.Done():
		if p.ctx.Err() == nil {
			p.log.Warn("cluster: subscribe: the listening connection did not confirm in time; it will at its next connection", "topic", topic)
		}
	}
	return cancel
}

func (p *Postgres) dropWaiter(ch string, w chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	ws := p.waiters[ch]
	for i, x := range ws {
		if x == w {
			p.waiters[ch] = append(ws[:i:i], ws[i+1:]...)
			break
		}
	}
	if len(p.waiters[ch]) == 0 {
		delete(p.waiters, ch)
	}
}

// OnResync implements Bus: fn runs in the delivery goroutine after each
// (re)connection of the listener, once its channels are listened to, and
// after messages were dropped for lack of room.
func (p *Postgres) OnResync(fn func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.resyncs = append(p.resyncs, fn)
}

// enqueue queues a received message for delivery.
func (p *Postgres) enqueue(m message) {
	p.mu.Lock()
	if len(p.queue) >= p.maxQueue && !m.resync {
		// A subscriber too slow: rather than grow without bound, drop and
		// let every subscriber read its state again.
		p.resync = true
		p.dropped++
		p.mu.Unlock()
		p.wake()
		return
	}
	p.queue = append(p.queue, m)
	p.mu.Unlock()
	p.wake()
}

func (p *Postgres) wake() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// deliver is the delivery goroutine.
func (p *Postgres) deliver() {
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.kick:
		}
		for p.ctx.Err() == nil {
			p.mu.Lock()
			batch, resync, dropped := p.queue, p.resync, p.dropped
			p.queue, p.resync, p.dropped = nil, false, 0
			p.mu.Unlock()
			if len(batch) == 0 && !resync {
				break
			}
			if dropped > 0 {
				p.log.Warn("cluster: subscribers too slow; messages dropped, resyncing", "dropped", dropped)
			}
			for _, m := range batch {
				if m.resync {
					p.runResyncs()
				} else {
					p.call(m)
				}
			}
			if resync {
				p.runResyncs()
			}
		}
	}
}

// call runs the subscribers of m's topic. The subscriber list is read
// while running is held, so a cancel that returned is never called after.
func (p *Postgres) call(m message) {
	p.running.Lock()
	defer p.running.Unlock()
	p.mu.Lock()
	fns := make([]func([]byte), 0, len(p.subs[m.topic]))
	for _, fn := range p.subs[m.topic] {
		fns = append(fns, fn)
	}
	p.mu.Unlock()
	for _, fn := range fns {
		fn(m.payload)
	}
}

func (p *Postgres) runResyncs() {
	p.mu.Lock()
	fns := append([]func(){}, p.resyncs...)
	p.mu.Unlock()
	for _, fn := range fns {
		if p.ctx.Err() != nil {
			return
		}
		fn()
	}
}

// Close stops listening, ends every Lead (their jobs' contexts end and
// Close waits for the jobs to return), and closes the connections. It must
// not be called from a subscriber or a led job.
func (p *Postgres) Close() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	for ch, ws := range p.waiters {
		for _, w := range ws {
			close(w)
		}
		delete(p.waiters, ch)
	}
	p.mu.Unlock()
	p.stop()
	p.wg.Wait()
	p.pool.Close()
}

// redact removes the password from an error's text: connection errors may
// quote parts of the DSN.
func (p *Postgres) redact(err error) error {
	if err == nil || p.password == "" || !strings.Contains(err.Error(), p.password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), p.password, "[redacted]"))
}

var (
	_ Bus    = (*Postgres)(nil)
	_ Leader = (*Postgres)(nil)
)
