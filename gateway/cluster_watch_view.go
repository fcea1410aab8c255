package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/recorder"
)

// The viewer's side of a remote live view (the protocol is in
// cluster_watch.go). The viewer's node decides, as for a local watch, who
// may see the session: the session's row in the store says which tenant
// it is of and which node holds it, and the viewer must oversee that
// tenant under this node's policy, checked again every second while the
// view runs. Every refusal gives the one answer of a local one (unknown,
// another tenant's, ended, on a dead node, or a holder that does not
// answer), and is audited with its cause.

// openSessionFinder is the store's lookup of a session open on a live node
// (audit.Reader.OpenSession).
type openSessionFinder interface {
	OpenSession(ctx context.Context, id string, aliveSince time.Time) (audit.Session, error)
}

// errNotLive is a session that is not open on another live node.
var errNotLive = errors.New("not live")

// remoteCandidate reports whether id is for the remote path: this node
// does not hold it and has a cluster to ask.
func (s *Server) remoteCandidate(id string) bool {
	return s.opt.Bus != nil && s.live.get(id) == nil
}

// lookup returns id's row if it is open on another node that is alive;
// errNotLive (or a store error, which refuses too) otherwise.
func (w *clusterWatch) lookup(ctx context.Context, id string) (audit.Session, error) {
	f, ok := w.s.opt.Store.(openSessionFinder)
	if !ok {
		return audit.Session{}, errNotLive // a store that cannot say: fail closed
	}
	row, err := f.OpenSession(ctx, id, w.s.now().Add(-liveNodeWithin))
	switch {
	case errors.Is(err, audit.ErrNotFound):
		return audit.Session{}, errNotLive
	case err != nil:
		return audit.Session{}, err
	case row.NodeID == "" || row.NodeID == w.s.Policy().NodeID:
		// Ours but not in the registry: it is ending, or was left open.
		return audit.Session{}, errNotLive
	}
	return row, nil
}

// remoteView is one remote watch, on the viewer's node.
type remoteView struct {
	w      *clusterWatch
	id     string // the watch ID
	row    audit.Session
	frames chan watchFrameMsg
	// ends gets the last frame (with end) apart from the others, so that
	// a viewer behind on its frames still learns that the view is over.
	ends  chan watchFrameMsg
	unsub func()
	hello watchFrameMsg // seq 0: the holder heard us; the terminal's size
	heard time.Time     // when hello came (the view's clock)
	once  sync.Once
}

// valid checks a frame from the bus; the holder is trusted, but what the
// viewer sees is still bounded and printable.
func (f *watchFrameMsg) valid() bool {
	if f.Seq < 0 || f.Dropped < 0 || len(f.Out) > maxFrameOut || len(f.End) > maxEndReason ||
		f.Cols < 0 || f.Rows < 0 || f.Cols > 10000 || f.Rows > 10000 {
		return false
	}
	for i := 0; i < len(f.End); i++ {
		if f.End[i] < ' ' || f.End[i] > '~' {
			return false
		}
	}
	return true
}

// openRemote asks the cluster for a view of row's session for viewer and
// waits for the holder's first frame. The error is errNoCluster when no
// node answered in time, or the holder's reason (e.g. "not started").
func (w *clusterWatch) openRemote(ctx context.Context, viewer string, row audit.Session) (*remoteView, error) {
	bus, t := w.s.opt.Bus, w.t()
	wid, err := newWatchID()
	if err != nil {
		return nil, err
	}
	v := &remoteView{w: w, id: wid, row: row, frames: make(chan watchFrameMsg, 256), ends: make(chan watchFrameMsg, 1)}
	// Subscribed before asking, so that no frame comes before we listen.
	// A frame that is invalid, or that finds the queue full (the viewer is
	// behind: the bus must not wait for it), is dropped; the gap it leaves
	// in seq counts it.
	w.addView(v)
	v.unsub = func() { w.dropView(wid) }
	msg, err := json.Marshal(watchOpenMsg{Watch: wid, Session: row.ID, Viewer: viewer, Node: w.s.Policy().NodeID})
	if err == nil {
		err = bus.Publish(ctx, topicWatchOpen, msg)
	}
	if err != nil {
		v.unsub()
		return nil, fmt.Errorf("ask the cluster: %w", err)
	}
	timer := time.NewTimer(t.Open)
	defer timer.Stop()
	select {
	case f := <-v.frames:
		v.hello, v.heard = f, t.Now()
		return v, nil
	case f := <-v.ends:
		v.close(ctx)
		return nil, errors.New(f.End)
	case <-timer.C:
		v.close(ctx)
		return nil, errNoCluster
	case <-ctx.Done():
		v.close(ctx)
		return nil, ctx.Err()
	}
}

// close tells the holder the viewer left and stops listening.
func (v *remoteView) close(ctx context.Context) {
	v.once.Do(func() {
		msg, _ := json.Marshal(watchCtlMsg{Watch: v.id})
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
		defer cancel()
		if err := v.w.s.opt.Bus.Publish(pctx, topicWatchClose, msg); err != nil {
			v.w.s.log.Warn("remote watch: watch_close not sent; the holder stops on its own", "watch", v.id, "err", err)
		}
		v.unsub()
	})
}

// keepAlive publishes watch_keep every Keep until stop is called; it runs
// apart from the pump so that a viewer slow to read does not lose its view.
func (v *remoteView) keepAlive(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		msg, _ := json.Marshal(watchCtlMsg{Watch: v.id})
		tk := time.NewTicker(v.w.t().Keep)
		defer tk.Stop()
		for {
			select {
			case <-tk.C:
				pctx, pcancel := context.WithTimeout(ctx, 2*time.Second)
				if err := v.w.s.opt.Bus.Publish(pctx, topicWatchKeep, msg); err != nil && ctx.Err() == nil {
					v.w.s.log.Warn("remote watch: keep-alive not sent", "watch", v.id, "err", err)
				}
				pcancel()
			case <-ctx.Done():
				return
			}
		}
	}()
	return func() { cancel(); <-done }
}

// pump hands the holder's frames to emit, as recorder.Frames (resizes,
// drop notices, output), until the session or the view ends, and returns
// why. refused is set when the viewer lost the right to watch (oversees,
// called every Tick, said no). emit returning false means the viewer left.
func (v *remoteView) pump(ctx context.Context, emit func(recorder.Frame) bool, oversees func() bool) (end string, refused bool) {
	t := v.w.t()
	defer v.keepAlive(ctx)()
	tick := time.NewTicker(t.Tick)
	defer tick.Stop()
	last, heard := v.hello.Seq, v.heard
	cols, rows := v.hello.Cols, v.hello.Rows
	// show hands one frame to emit; false means the viewer left.
	show := func(f watchFrameMsg) bool {
		if f.Seq <= last {
			return true // a repeat, or late: counted as lost already
		}
		// A gap in seq is frames lost on the way, or by a viewer behind.
		dropped := f.Dropped + (f.Seq - last - 1)
		last = f.Seq
		if f.Cols > 0 && f.Rows > 0 && (f.Cols != cols || f.Rows != rows) {
			cols, rows = f.Cols, f.Rows
			if !emit(recorder.Frame{Cols: cols, Rows: rows}) {
				return false
			}
		}
		if dropped > 0 && !emit(recorder.Frame{Dropped: dropped, Cols: cols, Rows: rows}) {
			return false
		}
		return len(f.Out) == 0 || emit(recorder.Frame{Output: f.Out})
	}
	for {
		select {
		case f := <-v.frames:
			heard = t.Now()
			if !show(f) {
				return "viewer left", false
			}
		case f := <-v.ends:
			// The frames queued before it come first.
			for more := true; more; {
				select {
				case g := <-v.frames:
					if !show(g) {
						return "viewer left", false
					}
				default:
					more = false
				}
			}
			if !show(f) {
				return "viewer left", false
			}
			return f.End, false
		case <-tick.C:
			if !oversees() {
				return "you no longer oversee this session; watch ended", true
			}
			if t.Now().Sub(heard) > t.Expire {
				return "the gateway holding the session stopped answering", false
			}
		case <-ctx.Done():
			return "viewer left", false
		}
	}
}

// watchRemote is `ssh gw watch ID` for a session another node holds.
func (e *cmdEnv) watchRemote(ctx context.Context, o policy.Oversight, id string) error {
	w := e.s.watches
	row, err := w.lookup(ctx, id)
	if errors.Is(err, errNotLive) {
		return noSession(id, "not live")
	}
	if err != nil {
		return internalError("look up session", err)
	}
	if !o.Covers(row.Tenant) {
		return noSession(id, "tenant "+row.Tenant+" not overseen")
	}
	user := e.ident.user.Name
	rv, err := w.openRemote(ctx, user, row)
	if err != nil {
		return noSession(id, "node "+row.NodeID+": "+err.Error())
	}
	defer rv.close(ctx)
	e.s.audit(ctx, "session.watched", user, id, map[string]any{"via": "ssh", "node": row.NodeID})
	end := "viewer left"
	defer func() {
		e.s.audit(context.WithoutCancel(ctx), "session.watch_ended", user, id, map[string]any{"via": "ssh", "node": row.NodeID, "reason": end})
	}()
	fmt.Fprintf(e.out, "warden: watching %s (%s as %s@%s, on %s); read-only, Ctrl-C to leave\r\n", id, row.User, row.Login, row.Host, row.NodeID)
	// As for a local watch: the host chose these bytes (recorder.ViewFilter).
	view := recorder.NewViewFilter(e.out)
	var refused bool
	end, refused = rv.pump(ctx, func(f recorder.Frame) bool {
		if f.Dropped > 0 {
			fmt.Fprintf(view, "\r\nwarden: %d frames not shown (the view fell behind)\r\n", f.Dropped)
		}
		if f.Output == nil {
			return true // a terminal keeps its own size
		}
		_, err := view.Write(f.Output)
		return err == nil
	}, func() bool { return e.stillOversees(row.Tenant) })
	switch {
	case refused:
		return refusal("%s", end)
	case end == "session ended":
		fmt.Fprintf(e.out, "\r\nwarden: session %s ended\r\n", id)
	case end != "viewer left":
		fmt.Fprintf(e.out, "\r\nwarden: watch of %s ended: %s\r\n", id, end)
	}
	return nil
}

// remoteConsoleTarget is consoleTarget for a session another node holds:
// the same checks, refusals and audit, against the session's row.
func (s *Server) remoteConsoleTarget(ctx context.Context, user, verb, id string) (audit.Session, error) {
	refuse := func(cause string) (audit.Session, error) {
		s.auditRefusal(ctx, "command.refused", "", user, truncate(verb+" "+id, 256),
			map[string]any{"reason": cause, "via": "console"})
		return audit.Session{}, ErrNoLiveSession
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
	row, err := s.watches.lookup(ctx, id)
	if err != nil {
		return refuse(err.Error()) // "not live", or a store error: refused all the same
	}
	if !o.Covers(row.Tenant) {
		return refuse("tenant " + row.Tenant + " not overseen")
	}
	return row, nil
}

func rowView(row audit.Session) sessionView {
	return sessionView{ID: row.ID, User: row.User, Login: row.Login, Host: row.Host, Tenant: row.Tenant,
		Role: row.Role, GrantID: row.GrantID, StartedAt: row.StartedAt, Live: true, State: "running"}
}

// liveSessionRemote is LiveSession for a session another node holds: the
// holder's first frame gives the terminal's size; the view closes at once.
func (s *Server) liveSessionRemote(ctx context.Context, user, id string) (recorder.Header, error) {
	row, err := s.remoteConsoleTarget(ctx, user, "watch", id)
	if err != nil {
		return recorder.Header{}, err
	}
	rv, err := s.watches.openRemote(ctx, user, row)
	if err != nil {
		s.auditRefusal(ctx, "command.refused", "", user, "watch "+id,
			map[string]any{"reason": "node " + row.NodeID + ": " + err.Error(), "via": "console"})
		return recorder.Header{}, ErrNoLiveSession
	}
	rv.close(ctx)
	return liveHeader(rowView(row), rv.hello.Cols, rv.hello.Rows), nil
}

// watchSessionRemote is WatchSession for a session another node holds.
func (s *Server) watchSessionRemote(ctx context.Context, user, id string) (recorder.Feed, error) {
	row, err := s.remoteConsoleTarget(ctx, user, "watch", id)
	if err != nil {
		return recorder.Feed{}, err
	}
	rv, err := s.watches.openRemote(ctx, user, row)
	if err != nil {
		s.auditRefusal(ctx, "command.refused", "", user, "watch "+id,
			map[string]any{"reason": "node " + row.NodeID + ": " + err.Error(), "via": "console"})
		return recorder.Feed{}, ErrNoLiveSession
	}
	s.audit(ctx, "session.watched", user, id, map[string]any{"via": "console", "node": row.NodeID})
	out := make(chan recorder.Frame)
	var (
		mu  sync.Mutex
		end string
	)
	oversees := func() bool {
		pol := s.Policy()
		u := pol.User(user)
		return u != nil && pol.OversightOf(u).Covers(row.Tenant)
	}
	// The goroutine lives as long as the view: it returns when the
	// session ends, the viewer's oversight ends, or ctx ends.
	go func() {
		why, refused := rv.pump(ctx, func(f recorder.Frame) bool {
			select {
			case out <- f:
				return true
			case <-ctx.Done():
				return false
			}
		}, oversees)
		rv.close(ctx)
		if refused {
			s.auditRefusal(ctx, "command.refused", "", user, "watch "+id, map[string]any{"reason": why, "via": "console"})
		}
		mu.Lock()
		end = why
		mu.Unlock()
		close(out)
		s.audit(context.WithoutCancel(ctx), "session.watch_ended", user, id,
			map[string]any{"via": "console", "node": row.NodeID, "reason": why})
	}()
	return recorder.Feed{Header: liveHeader(rowView(row), rv.hello.Cols, rv.hello.Rows), Frames: out, End: func() string {
		mu.Lock()
		defer mu.Unlock()
		return end
	}}, nil
}

// addView routes the frames of watch v.id to v; the node's frames topic is
// subscribed at the first view (before anything is asked, so that no frame
// comes before we listen) and kept while the node serves.
func (w *clusterWatch) addView(v *remoteView) {
	w.framesOnce.Do(func() {
		w.unsubFrames = w.s.opt.Bus.Subscribe(framesTopic(w.s.Policy().NodeID), w.frame)
	})
	w.vmu.Lock()
	if w.views == nil {
		w.views = map[string]*remoteView{}
	}
	w.views[v.id] = v
	w.vmu.Unlock()
}

func (w *clusterWatch) dropView(id string) {
	w.vmu.Lock()
	delete(w.views, id)
	w.vmu.Unlock()
}

// frame hands a frame to its view. A frame that is invalid, for no view of
// this node (one that ended), or that finds the view's queue full (the
// viewer is behind: the bus must not wait for it), is dropped; the gap it
// leaves in seq counts it.
func (w *clusterWatch) frame(p []byte) {
	var f watchFrameMsg
	if err := decodeMsg(p, &f); err != nil || !f.valid() || !validWatchID(f.Watch) {
		w.s.log.Warn("remote watch: bad frame", "err", err)
		return
	}
	w.vmu.Lock()
	v := w.views[f.Watch]
	w.vmu.Unlock()
	if v == nil {
		return
	}
	ch := v.frames
	if f.End != "" {
		ch = v.ends
	}
	select {
	case ch <- f:
	default:
	}
}
