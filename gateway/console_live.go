package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/warden-gw/warden/recorder"
)

// The console's live view and kill button (issue 10): the same oversight
// as `ssh gw watch` and `ssh gw kill`, through the same live registry and
// the same watchers, for a user the console has signed in. The console
// decides nothing itself: every check here is the SSH command's.

// ErrNoLiveSession is the one answer to a session the console's viewer may
// not watch or kill: another tenant's, one that ended or never existed, or
// any session at all for someone who oversees none. The console shows it
// as the same 404 as an unknown ID; the cause goes to the audit event.
var ErrNoLiveSession = errors.New("gateway: no live session that you can act on")

// BadReasonError is a kill reason that is missing, too long or carries
// control characters. BadInput is the one line to show the person (the
// console answers 400 with it).
type BadReasonError struct{ msg string }

func (e *BadReasonError) Error() string    { return "gateway: kill: " + e.msg }
func (e *BadReasonError) BadInput() string { return e.msg }

// maxKillReason bounds a kill reason, as jit bounds a deny reason.
const maxKillReason = 1024

// consoleTarget is liveSession for a console user: the live session id if
// user, as the current policy knows them, oversees its tenant. A refusal
// is audited as the SSH command's would be, and is ErrNoLiveSession
// whatever the cause.
func (s *Server) consoleTarget(ctx context.Context, user, verb, id string) (*session, sessionView, error) {
	refuse := func(cause string) (*session, sessionView, error) {
		s.auditRefusal(ctx, "command.refused", "", user, truncate(verb+" "+id, 256),
			map[string]any{"reason": cause, "via": "console"})
		return nil, sessionView{}, ErrNoLiveSession
	}
	pol := s.Policy()
	u := pol.User(user)
	if u == nil {
		return refuse("unknown user")
	}
	o := pol.OversightOf(u)
	if o.None() {
		return refuse("only approvers and auditors may see or end other users' sessions")
	}
	if _, err := oneSessionID([]string{id}); err != nil {
		return refuse("not a session ID")
	}
	ss := s.live.get(id)
	if ss == nil {
		return refuse("not live")
	}
	v := ss.view()
	if !o.Covers(v.Tenant) {
		return refuse("tenant " + v.Tenant + " not overseen")
	}
	return ss, v, nil
}

// KillSession ends a live session for a console user who oversees it, as
// `ssh gw kill ID --reason TEXT` does; the reason is required and goes to
// the audit event. A refusal is ErrNoLiveSession, a bad reason a
// *BadReasonError; both are audited.
func (s *Server) KillSession(ctx context.Context, user, id, reason string) error {
	if err := checkKillReason(reason, true); err != nil {
		s.auditRefusal(ctx, "command.refused", "", user, truncate("kill "+id, 256),
			map[string]any{"reason": err.Error(), "via": "console"})
		return &BadReasonError{msg: err.Error()}
	}
	if s.live.get(id) == nil {
		if _, err := oneSessionID([]string{id}); err == nil {
			// Held by another node? The same checks against its row.
			row, ok, err := s.remoteSession(ctx, id)
			if err != nil {
				s.log.Error("kill: other nodes' sessions not read", "session", id, "err", err)
			} else if ok {
				return s.consoleKillRemote(ctx, user, row, reason)
			}
		}
	}
	if _, _, err := s.consoleTarget(ctx, user, "kill", id); err != nil {
		return err
	}
	if !s.Kill(id) {
		s.auditRefusal(ctx, "command.refused", "", user, "kill "+id, map[string]any{"reason": "ended meanwhile", "via": "console"})
		return ErrNoLiveSession
	}
	s.audit(ctx, "session.killed", user, id, map[string]any{"reason": reason, "via": "console"})
	return nil
}

// checkKillReason checks a kill reason, which people read in the audit log
// and the console: printable UTF-8, at most maxKillReason bytes, and not
// empty when required.
func checkKillReason(reason string, required bool) error {
	switch {
	case required && len(reason) == 0 || len(reason) > 0 && len(trimSpace(reason)) == 0:
		return errors.New("a reason is required")
	case len(reason) > maxKillReason:
		return fmt.Errorf("the reason is %d bytes; at most %d are allowed", len(reason), maxKillReason)
	case !utf8.ValidString(reason):
		return errors.New("the reason is not valid UTF-8")
	}
	for _, r := range reason {
		if !unicode.IsPrint(r) {
			return errors.New("the reason has a control or invisible character")
		}
	}
	return nil
}

func trimSpace(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// LiveSession describes live session id for a console user who may watch
// it (the live page's title and size), or refuses as WatchSession would.
func (s *Server) LiveSession(ctx context.Context, user, id string) (recorder.Header, error) {
	if s.remoteCandidate(id) {
		return s.liveSessionRemote(ctx, user, id) // held by another node (cluster_watch_view.go)
	}
	ss, v, err := s.consoleTarget(ctx, user, "watch", id)
	if err != nil {
		return recorder.Header{}, err
	}
	ss.mu.Lock()
	rec := ss.rec
	ss.mu.Unlock()
	cols, rows := 80, 24
	if rec != nil {
		cols, rows = rec.termSize()
	}
	return liveHeader(v, cols, rows), nil
}

func liveHeader(v sessionView, cols, rows int) recorder.Header {
	return recorder.Header{
		Version: 2, Width: cols, Height: rows, Timestamp: v.StartedAt.Unix(),
		Title: fmt.Sprintf("%s as %s@%s", v.User, v.Login, v.Host),
		Warden: recorder.Meta{SessionID: v.ID, User: v.User, Login: v.Login, Host: v.Host,
			Tenant: v.Tenant, Role: v.Role, GrantID: v.GrantID},
	}
}

// WatchSession starts a read-only live view of session id for a console
// user who oversees it, as `ssh gw watch ID` does, and audits it. The
// feed's frames are the session's output and resizes from now on; the
// session never waits for the viewer: a viewer that does not keep up
// loses frames, and the next frame it gets says how many (Dropped).
//
// The feed ends when the session ends, when ctx ends, or when user no
// longer oversees the session's tenant (checked every second, as for the
// SSH watch: a live view is access, and ends when the access does).
func (s *Server) WatchSession(ctx context.Context, user, id string) (recorder.Feed, error) {
	if s.remoteCandidate(id) {
		return s.watchSessionRemote(ctx, user, id) // held by another node (cluster_watch_view.go)
	}
	ss, v, err := s.consoleTarget(ctx, user, "watch", id)
	if err != nil {
		return recorder.Feed{}, err
	}
	ss.mu.Lock()
	rec := ss.rec
	ss.mu.Unlock()
	if rec == nil {
		s.auditRefusal(ctx, "command.refused", "", user, "watch "+id, map[string]any{"reason": "not started", "via": "console"})
		return recorder.Feed{}, ErrNoLiveSession
	}
	w := rec.watch()
	s.audit(ctx, "session.watched", user, id, map[string]any{"via": "console"})
	cols, rows := rec.termSize()
	h := liveHeader(v, cols, rows)
	out := make(chan recorder.Frame)
	var (
		mu  sync.Mutex
		end string
	)
	finish := func(why string) {
		rec.unwatch(w)
		mu.Lock()
		end = why
		mu.Unlock()
		close(out)
		s.audit(context.WithoutCancel(ctx), "session.watch_ended", user, id, map[string]any{"via": "console", "reason": why})
	}
	go s.pumpFeed(ctx, rec, w, out, user, v.Tenant, finish)
	return recorder.Feed{Header: h, Frames: out, End: func() string {
		mu.Lock()
		defer mu.Unlock()
		return end
	}}, nil
}

// pumpFeed moves a watcher's frames to a console feed until the session,
// the view or the viewer's oversight ends, then calls finish once. Its
// lifetime is the feed's: it returns when ctx ends even if nobody reads.
// Only this goroutine waits on the viewer; the session's bridge hands
// frames to w without waiting (sessionRecord.broadcast).
func (s *Server) pumpFeed(ctx context.Context, rec *sessionRecord, w *watcher, out chan<- recorder.Frame, user, tenant string, finish func(string)) {
	recheck := time.NewTicker(watchRecheck)
	defer recheck.Stop()
	oversees := func() bool {
		pol := s.Policy()
		u := pol.User(user)
		return u != nil && pol.OversightOf(u).Covers(tenant)
	}
	send := func(f recorder.Frame) bool {
		select {
		case out <- f:
			return true
		case <-ctx.Done():
			return false
		}
	}
	for {
		select {
		case <-recheck.C:
			if s.live.get(rec.ss.id) == nil && rec.watching(w) {
				// The session ended as the view began, after its watchers
				// were told (endWatch): nothing will close w.ch. (A
				// watcher that was told has left the set, and drains
				// w.ch to its close below.)
				finish("session ended")
				return
			}
			if !oversees() {
				s.auditRefusal(ctx, "command.refused", "", user, "watch "+rec.ss.id,
					map[string]any{"reason": "you no longer oversee this session; watch ended", "via": "console"})
				finish("you no longer oversee this session; watch ended")
				return
			}
		case f, ok := <-w.ch:
			if !ok {
				finish("session ended")
				return
			}
			if n := w.dropped.Swap(0); n > 0 {
				cols, rows := rec.termSize()
				if !send(recorder.Frame{Dropped: n, Cols: cols, Rows: rows}) {
					finish("viewer left")
					return
				}
			}
			if !send(f) {
				finish("viewer left")
				return
			}
		case <-ctx.Done():
			finish("viewer left")
			return
		}
	}
}

// termSize is the session's terminal size now: after the last resize, or
// as the pty asked for it, or 80x24 for a command without one.
func (r *sessionRecord) termSize() (cols, rows int) {
	if sz := r.size.Load(); sz != 0 {
		return int(sz >> 32), int(uint32(sz))
	}
	if p := r.ss.pty; p != nil && p.Cols > 0 && p.Rows > 0 {
		return int(p.Cols), int(p.Rows)
	}
	return 80, 24
}

// watching reports whether w is still among r's watchers.
func (r *sessionRecord) watching(w *watcher) bool {
	r.viewers.mu.Lock()
	defer r.viewers.mu.Unlock()
	_, ok := r.viewers.set[w]
	return ok
}
