package jit

import (
	"container/heap"
	"context"
	"errors"
	"time"
)

// retryDelay is how long a deadline job that could not write waits before
// it tries again. A grant whose expiry could not be recorded still gives no
// access after ExpiresAt (ActiveGrant and the session deadline see to
// that); only its record and alerts are late.
const retryDelay = 10 * time.Second

// job is the kind of work due at a deadline.
type job uint8

const (
	jobExpireRequest job = iota + 1 // a pending request reached its TTL
	jobWarnGrant                    // a grant ends in five minutes
	jobExpireGrant                  // a grant's window closed
)

func (j job) String() string {
	switch j {
	case jobExpireRequest:
		return "expire request"
	case jobWarnGrant:
		return "warn grant"
	case jobExpireGrant:
		return "expire grant"
	}
	return "unknown"
}

// deadline is one job due at a time.
type deadline struct {
	at  time.Time
	job job
	id  int64 // request or grant ID
}

type jobKey struct {
	job job
	id  int64
}

// timetable is a min-heap of deadlines, earliest first, holding at most one
// deadline per job and ID. Entries are never removed early: a job checks
// the row's state when it runs, so a revoked grant's expiry is a no-op.
type timetable struct {
	items []deadline
	keys  map[jobKey]bool
}

func newTimetable() timetable { return timetable{keys: map[jobKey]bool{}} }

func (t *timetable) Len() int { return len(t.items) }

// Less orders by time, then job and ID, so equal times run in a fixed order.
func (t *timetable) Less(i, j int) bool {
	a, b := t.items[i], t.items[j]
	if !a.at.Equal(b.at) {
		return a.at.Before(b.at)
	}
	if a.job != b.job {
		return a.job < b.job
	}
	return a.id < b.id
}

func (t *timetable) Swap(i, j int) { t.items[i], t.items[j] = t.items[j], t.items[i] }
func (t *timetable) Push(x any)    { t.items = append(t.items, x.(deadline)) }

func (t *timetable) Pop() any {
	last := t.items[len(t.items)-1]
	t.items = t.items[:len(t.items)-1]
	return last
}

// add queues d unless the same job for the same ID is already queued.
func (t *timetable) add(d deadline) {
	k := jobKey{d.job, d.id}
	if t.keys[k] {
		return
	}
	t.keys[k] = true
	heap.Push(t, d)
}

// due removes and returns the deadlines at or before now, earliest first.
func (t *timetable) due(now time.Time) []deadline {
	var out []deadline
	for len(t.items) > 0 && !now.Before(t.items[0].at) {
		d := heap.Pop(t).(deadline)
		delete(t.keys, jobKey{d.job, d.id})
		out = append(out, d)
	}
	return out
}

// next returns the earliest queued time.
func (t *timetable) next() (time.Time, bool) {
	if len(t.items) == 0 {
		return time.Time{}, false
	}
	return t.items[0].at, true
}

// schedule queues deadlines and wakes Run to re-arm its timer.
func (s *Service) schedule(ds ...deadline) {
	s.mu.Lock()
	for _, d := range ds {
		s.queue.add(d)
	}
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default: // a wake-up is already pending
	}
}

// Run ends requests and grants on time until ctx is done, then returns
// nil. It first ends grants the current policy no longer allows
// (Deprovision) and loads the deadlines of every pending request and
// running grant from the database, so a restart keeps them; deadlines that
// passed while the gateway was down are handled at once. There is no
// polling: Run sleeps until the earliest deadline or until a new request or
// grant is scheduled. Call it from one goroutine; it returns an error only
// when the initial load fails for another reason than ctx.
func (s *Service) Run(ctx context.Context) error {
	if err := s.load(ctx); err != nil {
		if ctx.Err() != nil {
			return nil // stopped while loading: not a failure
		}
		return err
	}
	for {
		s.mu.Lock()
		due := s.queue.due(s.now())
		s.mu.Unlock()
		for _, d := range due {
			s.do(ctx, d)
		}
		s.mu.Lock()
		at, ok := s.queue.next()
		s.mu.Unlock()
		var timer <-chan time.Time // nil: nothing to wait for but a wake-up
		if ok {
			timer = s.until(at)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.wake:
		case <-timer:
		}
	}
}

// load ends what the policy no longer allows and queues the deadlines
// stored in the database.
func (s *Service) load(ctx context.Context) error {
	if _, err := s.Deprovision(ctx); err != nil {
		return err
	}
	return s.Resync(ctx)
}

// Resync queues the deadlines of every pending request and running grant
// in the database, so that Run acts on those another gateway of the
// cluster created (it calls OnChange's functions, and the leader running
// Run resyncs). It is idempotent: the timetable holds one deadline per job
// and row, and a job re-reads its row before acting, so a deadline queued
// twice, or for a row that has moved on, writes nothing twice.
func (s *Service) Resync(ctx context.Context) error {
	q := dbQuerier{ctx, s.store.DB()}
	pending, err := listRequests(q, `state = ?`, StatePending)
	if err != nil {
		return err
	}
	pol := s.policy()
	for _, r := range pending {
		s.schedule(deadline{at: r.CreatedAt.Add(requestTTL(pol.Role(r.Role))), job: jobExpireRequest, id: r.ID})
	}
	running, err := listGrants(q, `ended_at IS NULL`)
	if err != nil {
		return err
	}
	for _, g := range running {
		s.scheduleGrant(g)
	}
	return nil
}

// do runs one due job. A job that fails to write is retried later; while
// ctx is done, nothing is retried.
func (s *Service) do(ctx context.Context, d deadline) {
	var err error
	switch d.job {
	case jobExpireRequest:
		err = s.expireRequestJob(ctx, d.id)
	case jobWarnGrant:
		err = s.warnGrantJob(ctx, d.id)
	case jobExpireGrant:
		err = s.expireGrantJob(ctx, d.id)
	}
	switch {
	case err == nil || ctx.Err() != nil:
	case errors.Is(err, ErrNotFound):
		// Rows are never deleted, so this is a damaged database; retrying
		// cannot help.
		s.log.Error("jit: deadline job for a missing row", "job", d.job.String(), "id", d.id, "err", err)
	default:
		s.log.Error("jit: deadline job failed; will retry", "job", d.job.String(), "id", d.id, "err", err)
		s.schedule(deadline{at: s.now().Add(retryDelay), job: d.job, id: d.id})
	}
}
