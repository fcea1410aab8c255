package gateway

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/warden-gw/warden/audit"
)

// Audit events the database could not take. When the store fails (SQLite's
// disk full, PostgreSQL down), the gateway fails closed, but the events
// about those refusals used to be logged and lost, so the chain had no
// trace of what was refused while it could not be written. They are held
// here, in memory, and appended once the store takes writes again.
//
// Model: one mutex guards the queue; the retry loop (run) is the only
// goroutine that takes events off it, one at a time, removing an event only
// after the store committed it. While anything is held, every new event goes
// to the back of the queue instead of straight to the store, so a write that
// succeeds while older ones wait cannot overtake them: the chain keeps the
// order in which the gateway produced them (events written at the same
// moment by different goroutines had no order to keep). The recordings
// uploader's reports (recording.upload_failed, recording.gap) pass here
// too, through recstore's ReportTo. Events other packages append
// (session.start and session.end through StartSession and EndSession, the
// JIT workflow's) do not; those writers fail closed on their own errors.
//
// Timestamps: each event keeps the TS its caller set, when it happened.
// `warden audit verify` checks seq and the hash links, not that ts grows
// along the chain (it never could: callers stamp TS before the store's
// writer orders them), so a late event with its original time verifies.
// What shows that events came late is the audit.delayed event written
// right after them: how many were held, how many were dropped, and since
// and until when.
//
// The queue is bounded (maxHeldEvents). When it is full, the newest event is
// dropped, not the oldest: the held events then stay an unbroken record
// from the start of the outage, and whoever caused the outage, or acts
// during it, cannot push the record of what they did first out of the queue
// by making more noise afterwards. The drops are counted in audit.delayed.
//
// Only an event the store could not write for the database's sake is held.
// One it refuses for what it says (audit.ErrInvalid) would be refused again
// forever: it is logged and dropped, as before. An event written after the
// store was closed (audit.ErrClosed) is logged as lost: nothing will take
// it; at the final try, that store error ends the try like any other, and
// what is left is counted in one line.

// maxHeldEvents bounds the queue: at most about 10,000 events of a few
// hundred bytes each, a few MB.
const maxHeldEvents = 10000

// eventAuditDelayed is the type of the summary written once held events
// have been appended.
const eventAuditDelayed = "audit.delayed"

// Retry intervals: the first retry after an append failed, doubled after
// each pass that failed, up to the cap.
const (
	auditRetryFirst = time.Second
	auditRetryMax   = 30 * time.Second
)

// appendFunc appends one event to the chain (audit.Store.Append).
type appendFunc func(ctx context.Context, e audit.Event) error

// auditHold holds the events the store could not take. Its loop runs from
// start to the stop function start returns (Server.Serve).
type auditHold struct {
	append appendFunc
	log    *slog.Logger
	now    func() time.Time
	max    int
	// first and most are the retry intervals; after returns a channel that
	// fires after d (time.After; a test's own to fire at will).
	first, most time.Duration
	after       func(d time.Duration) <-chan time.Time

	mu      sync.Mutex
	held    []audit.Event
	late    int       // appended from the queue since the last audit.delayed
	dropped int       // dropped because the queue was full, since then
	since   time.Time // TS of the first of those
	closed  bool      // stop has run: nothing retries any more
	wake    chan struct{}
}

func newAuditHold(app appendFunc, log *slog.Logger, now func() time.Time) *auditHold {
	return &auditHold{append: app, log: log, now: now, max: maxHeldEvents,
		first: auditRetryFirst, most: auditRetryMax, after: time.After, wake: make(chan struct{}, 1)}
}

// invalidEvent reports whether the store refused an event for what it
// says: it would refuse it again, so it is dropped, never retried.
func invalidEvent(err error) bool { return errors.Is(err, audit.ErrInvalid) }

// pending reports whether anything is held or its audit.delayed is still
// to be written. q.mu must be held.
func (q *auditHold) pending() bool { return len(q.held) > 0 || q.late > 0 || q.dropped > 0 }

// write appends e, or holds it when the store fails or other events are
// already held. It does not report the outcome: the event is about
// something that was already refused or ended, and the store's failure is
// the caller's own concern where it writes rows.
func (q *auditHold) write(ctx context.Context, e audit.Event) {
	q.mu.Lock()
	if q.pending() && !q.closed {
		q.hold(e)
		q.mu.Unlock()
		return
	}
	q.mu.Unlock()
	err := q.append(context.WithoutCancel(ctx), e)
	if err == nil {
		return
	}
	if invalidEvent(err) {
		q.log.Error("audit event not written", "type", e.Type, "actor", e.Actor, "subject", e.Subject, "err", err)
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed || errors.Is(err, audit.ErrClosed) {
		q.log.Error("audit event lost: the database did not take it and the gateway is stopping",
			"type", e.Type, "actor", e.Actor, "subject", e.Subject, "err", err)
		return
	}
	q.log.Warn("audit event not written; held until the database takes it", "type", e.Type, "actor", e.Actor,
		"subject", e.Subject, "err", err)
	q.hold(e)
}

// hold puts e at the back of the queue, or counts it as dropped when the
// queue is full. q.mu must be held.
func (q *auditHold) hold(e audit.Event) {
	if e.TS.IsZero() {
		e.TS = q.now() // the store would stamp it with the time of the late append
	}
	if !q.pending() {
		q.since = e.TS
		select {
		case q.wake <- struct{}{}:
		default:
		}
	}
	if len(q.held) >= q.max {
		if q.dropped == 0 {
			q.log.Error("audit events held for the database exceed the bound; newer ones are dropped and counted",
				"held", len(q.held), "since", q.since)
		}
		q.dropped++
		return
	}
	q.held = append(q.held, e)
}

// start runs the retry loop until the returned stop is called. stop then
// tries once more to write what is held and logs what is lost.
func (q *auditHold) start() (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.run(ctx)
	}()
	return func() {
		cancel()
		<-done
		q.flush(context.Background())
		q.mu.Lock()
		defer q.mu.Unlock()
		q.closed = true
		if q.pending() {
			q.log.Error("audit events lost: the database did not take them before the gateway stopped",
				"held", len(q.held), "dropped", q.dropped, "since", q.since)
		}
	}
}

// run waits for held events and retries them, first after q.first, then
// backing off up to q.most, until ctx ends.
func (q *auditHold) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-q.wake:
		}
		for wait := q.first; ; wait = min(2*wait, q.most) {
			select {
			case <-ctx.Done():
				return
			case <-q.after(wait):
			}
			if q.flush(ctx) {
				break
			}
		}
	}
}

// flush appends the held events in order, then the audit.delayed summary,
// and reports whether all of it was written. The summary is written under
// q.mu, once the queue is seen empty: an event produced meanwhile waits for
// that one append (the store has just taken the others) and then goes
// straight to the store, after the summary, instead of opening a period of
// its own.
func (q *auditHold) flush(ctx context.Context) bool {
	for {
		q.mu.Lock()
		if len(q.held) == 0 {
			defer q.mu.Unlock()
			return q.summarize(ctx)
		}
		h := q.held[0]
		q.mu.Unlock()
		err := q.append(ctx, h)
		if err != nil && !invalidEvent(err) {
			return false // the store still fails (or is closed): try again later
		}
		q.mu.Lock()
		q.held[0] = audit.Event{}
		q.held = q.held[1:]
		if len(q.held) == 0 {
			q.held = nil // let go of the backing array
		}
		if err == nil {
			q.late++
		}
		q.mu.Unlock()
		if err != nil {
			q.log.Error("audit event not written", "type", h.Type, "actor", h.Actor, "subject", h.Subject, "err", err)
		}
	}
}

// summarize writes audit.delayed for the events held since q.since and
// reports whether it was written (or nothing was owed). q.mu must be held
// and the queue empty.
func (q *auditHold) summarize(ctx context.Context) bool {
	if q.late == 0 && q.dropped == 0 {
		return true
	}
	until := q.now()
	err := q.append(ctx, audit.Event{TS: until, Type: eventAuditDelayed, Actor: "warden", Subject: "audit_events",
		Data: map[string]any{
			"held":    q.late,
			"dropped": q.dropped,
			"since":   q.since.UTC().Format(time.RFC3339Nano),
			"until":   until.UTC().Format(time.RFC3339Nano),
		}})
	if err != nil && !invalidEvent(err) {
		return false
	}
	if err != nil {
		q.log.Error("audit event not written", "type", eventAuditDelayed, "held", q.late, "dropped", q.dropped, "err", err)
	} else {
		q.log.Info("held audit events written", "held", q.late, "dropped", q.dropped, "since", q.since)
	}
	q.late, q.dropped = 0, 0
	return true
}
