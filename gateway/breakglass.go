package gateway

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/jit"
	"github.com/warden-gw/warden/notify"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/recorder"
	"github.com/warden-gw/warden/rotate"
)

// rotator replaces a break-glass role's static key on a host and in Vault.
// The gateway fills Host, Login, KVPath, Retire and OnFetch from the
// grant's recorded rotation; the implementation adds where the host keeps
// its keys (AuthorizedKeys, SSHDConfig).
type rotator interface {
	Rotate(ctx context.Context, t rotate.Target) (rotate.Result, error)
}

// rotationLedger is the rotations table; *jit.Service satisfies it.
type rotationLedger interface {
	EnsureRotation(ctx context.Context, g jit.Grant) (jit.Rotation, bool, error)
	OwedRotations(ctx context.Context) ([]jit.Rotation, error)
	BeginRotationAttempt(ctx context.Context, grantID int64, backoff func(attempt int) time.Duration) (jit.Rotation, bool, error)
	RetireKey(ctx context.Context, grantID int64, blob string) ([]string, error)
	FinishRotationAttempt(ctx context.Context, grantID int64, out jit.RotationOutcome) (jit.Rotation, error)
}

// notifier delivers alerts; *notify.Webhook satisfies it.
type notifier interface {
	Notify(ctx context.Context, ev notify.Event)
}

// rotationTimeout bounds one rotation (several SSH logins and Vault calls).
const rotationTimeout = 2 * time.Minute

// Retries of a rotation that failed or was cut short wait
// RotationRetryMin, doubling per attempt up to RotationRetryMax. Every
// RotationSweep the worker also re-reads the table, which picks up
// rotations owed by grants another process ended (warden reconcile
// --apply) while this gateway runs.
const (
	RotationRetryMin = time.Minute
	RotationRetryMax = time.Hour
	RotationSweep    = 10 * time.Minute
)

// RotationBackoff is the wait after attempt n (1, 2, ...) before the next.
func RotationBackoff(n int) time.Duration {
	d := RotationRetryMin
	for i := 1; i < n && d < RotationRetryMax; i++ {
		d *= 2
	}
	return min(d, RotationRetryMax)
}

// GrantEnded is the workflow's OnGrantEnd hook: the grant's live sessions
// close at once, and a rotation the grant owes becomes due now. It does
// not block: the rotation worker (runRotations, started by Serve) does the
// work.
func (s *Server) GrantEnded(g jit.Grant) {
	s.live.cancelGrant(g.ID, grantCause(g.EndReason))
	s.rot.ended(g)
	// The other nodes end their sessions of it too (cluster.go).
	s.publishGrantEnded(g)
}

// rotationQueue is the worker's memory: which grants' rotations are due
// when, and which grants ended since its last pass. The table is the
// truth; the queue only decides when to look at it again.
type rotationQueue struct {
	mu      sync.Mutex
	due     map[int64]time.Time // grant ID -> next attempt
	endedGs []jit.Grant
	wake    chan struct{}
}

func newRotationQueue() *rotationQueue {
	return &rotationQueue{due: map[int64]time.Time{}, wake: make(chan struct{}, 1)}
}

func (q *rotationQueue) ended(g jit.Grant) {
	q.mu.Lock()
	q.endedGs = append(q.endedGs, g)
	q.mu.Unlock()
	q.poke()
}

func (q *rotationQueue) poke() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

func (q *rotationQueue) set(id int64, at time.Time) {
	q.mu.Lock()
	q.due[id] = at
	q.mu.Unlock()
}

// runRotations attempts every rotation owed by an ended grant until ctx is
// done: those in the table at start (restart recovery, a crash
// mid-rotation, grants ended by reconcile), those of grants that end
// while it runs, and retries after the backoff. Without a ledger it only
// waits.
func (s *Server) runRotations(ctx context.Context) {
	led := s.opt.Rotations
	if led == nil {
		<-ctx.Done()
		return
	}
	var lastSweep time.Time
	for {
		now := s.now()
		if lastSweep.IsZero() || !now.Before(lastSweep.Add(RotationSweep)) {
			if s.loadRotations(ctx, now) {
				lastSweep = now
			}
		}
		s.rot.mu.Lock()
		gs := s.rot.endedGs
		s.rot.endedGs = nil
		s.rot.mu.Unlock()
		for _, g := range gs {
			r, ok, err := led.EnsureRotation(ctx, g)
			switch {
			case err != nil:
				s.log.Error("break-glass rotation: read the grant's rotation", "grant", g.ID, "err", err)
				s.rot.set(g.ID, now.Add(RotationRetryMin))
			case ok && r.Owed():
				s.rot.set(g.ID, now) // the grant just ended: no reason to wait
			}
		}
		s.rot.mu.Lock()
		var ready []int64
		next := lastSweep.Add(RotationSweep)
		for id, at := range s.rot.due {
			if !now.Before(at) {
				ready = append(ready, id)
				delete(s.rot.due, id)
			} else if at.Before(next) {
				next = at
			}
		}
		s.rot.mu.Unlock()
		slices.Sort(ready)
		for _, id := range ready {
			if ctx.Err() != nil {
				return
			}
			s.attemptRotation(ctx, id)
		}
		if len(ready) > 0 {
			continue // attempts take time: look at the clock again
		}
		select {
		case <-ctx.Done():
			return
		case <-s.rot.wake:
		case <-s.opt.Until(next):
		}
	}
}

// loadRotations queues every owed rotation whose grant has ended, at its
// recorded next attempt. It reports whether the table could be read.
func (s *Server) loadRotations(ctx context.Context, now time.Time) bool {
	rs, err := s.opt.Rotations.OwedRotations(ctx)
	if err != nil {
		s.log.Error("break-glass rotation: read owed rotations", "err", err)
		return false
	}
	s.rot.mu.Lock()
	defer s.rot.mu.Unlock()
	for _, r := range rs {
		if !r.Due() {
			continue
		}
		if _, queued := s.rot.due[r.GrantID]; !queued {
			s.rot.due[r.GrantID] = r.NextAttemptAt
		}
	}
	return true
}

// attemptRotation runs one attempt of grant grantID's rotation from its
// recorded target and records the outcome: the row, a rotation.result
// audit event and an alert. A failure is queued again after the backoff;
// the attempt was counted (and its retry time stored) before it started,
// so a crash in the middle is retried on the next start.
func (s *Server) attemptRotation(ctx context.Context, grantID int64) {
	led := s.opt.Rotations
	r, ok, err := led.BeginRotationAttempt(ctx, grantID, RotationBackoff)
	if err != nil {
		s.log.Error("break-glass rotation: begin attempt", "grant", grantID, "err", err)
		s.rot.set(grantID, s.now().Add(RotationRetryMin))
		return
	}
	if !ok || !r.Due() {
		return
	}
	// The attempt runs to its end even when the gateway stops: a rotation
	// cut short may leave two keys authorized until the retry.
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), rotationTimeout)
	defer cancel()
	res, rerr := s.rotateRecorded(actx, r)
	out := jit.RotationOutcome{Err: rerr, OldFingerprint: res.OldFingerprint, NewFingerprint: res.NewFingerprint,
		Data: map[string]any{"old_version": res.OldVersion, "new_version": res.NewVersion, "steps": res.Steps}}
	if rerr != nil {
		out.Data["next_attempt_at"] = r.NextAttemptAt
	}
	if _, err := led.FinishRotationAttempt(actx, grantID, out); err != nil {
		s.log.Error("break-glass rotation: record outcome", "grant", grantID, "err", err)
	}
	if rerr != nil {
		s.rot.set(grantID, r.NextAttemptAt)
		s.log.Error("break-glass rotation failed", "grant", grantID, "role", r.Role, "attempt", r.Attempts, "err", rerr)
	}
	s.alertRotation(actx, r, res, rerr)
}

// rotateRecorded rotates the key the grant recorded at its start, on the
// host and login it recorded. The current policy only supplies how to
// reach and verify that host; a host no longer in the policy fails the
// attempt loudly instead of skipping it.
func (s *Server) rotateRecorded(ctx context.Context, r jit.Rotation) (rotate.Result, error) {
	if s.opt.Rotator == nil {
		return rotate.Result{}, fmt.Errorf("no rotator configured (Vault KV)")
	}
	if r.Host == "" || r.Login == "" {
		return rotate.Result{}, fmt.Errorf("the grant recorded no single host and login to rotate on: %s", r.LastError)
	}
	h, err := s.Policy().ResolveHost(r.Tenant + "/" + r.Host)
	if err != nil {
		return rotate.Result{}, fmt.Errorf("host %s of tenant %s is no longer in the policy, so its key cannot be rotated: restore the host or rotate %s by hand", r.Host, r.Tenant, r.KVPath)
	}
	return s.opt.Rotator.Rotate(ctx, rotate.Target{
		Host: h, Login: r.Login, KVPath: r.KVPath, Retire: r.Retire,
		OnFetch: func(ctx context.Context, k gossh.PublicKey) error {
			_, err := s.opt.Rotations.RetireKey(ctx, r.GrantID, base64.StdEncoding.EncodeToString(k.Marshal()))
			return err
		},
	})
}

// alertRotation tells the webhook how an attempt went.
func (s *Server) alertRotation(ctx context.Context, r jit.Rotation, res rotate.Result, err error) {
	if s.opt.Notifier == nil {
		return
	}
	fields := map[string]any{"grant_id": r.GrantID, "tenant": r.Tenant, "role": r.Role, "host": r.Host, "login": r.Login,
		"kv_path": r.KVPath, "attempt": r.Attempts, "ok": err == nil, "new_fingerprint": res.NewFingerprint}
	text := fmt.Sprintf("break-glass credential of %s rotated after grant %d", notify.Escape(r.Role), r.GrantID)
	if err != nil {
		fields["error"] = err.Error()
		fields["next_attempt_at"] = r.NextAttemptAt
		text = fmt.Sprintf(":rotating_light: break-glass credential of %s NOT rotated after grant %d (attempt %d, rotation owed, next try %s): %s",
			notify.Escape(r.Role), r.GrantID, r.Attempts, r.NextAttemptAt.UTC().Format(time.RFC3339), notify.Escape(err.Error()))
	}
	s.opt.Notifier.Notify(ctx, notify.Event{Type: notify.TypeRotationResult, Text: text, Fields: fields})
}

// printOwedRotations adds to `grants` the rotations owed by ended grants
// that u may know about: their owner, and whoever oversees the grant's
// tenant (its approvers and auditors, policy.OversightOf). Nothing is
// printed when none is owed.
func (s *Server) printOwedRotations(ctx context.Context, w io.Writer, u *policy.User) error {
	if s.opt.Rotations == nil {
		return nil
	}
	rs, err := s.opt.Rotations.OwedRotations(ctx)
	if err != nil {
		return internalError("list owed rotations", err)
	}
	pol := s.Policy()
	o := pol.OversightOf(pol.User(u.Name))
	var lines []string
	for _, r := range rs {
		if !r.Due() || !(r.User == u.Name || o.Covers(r.Tenant)) {
			continue
		}
		last := ""
		if r.LastError != "" {
			last = "; last error: " + recorder.Quote(r.LastError)
		}
		lines = append(lines, fmt.Sprintf("rotation owed: grant %d (%s) key %s on %s@%s, %s after %d attempt(s), next try %s%s",
			r.GrantID, recorder.Quote(r.Role), recorder.Quote(r.KVPath), recorder.Quote(r.Login), recorder.Quote(r.Host), r.State,
			r.Attempts, r.NextAttemptAt.UTC().Format(time.RFC3339), last))
	}
	for _, l := range lines {
		if _, err := fmt.Fprintln(w, l); err != nil {
			return err
		}
	}
	return nil
}
