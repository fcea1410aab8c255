package gateway

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/recorder"
)

// Session oversight over SSH (CONTRACT §3): sessions [--live], watch
// SESSION_ID (a read-only live view) and kill SESSION_ID. Each is scoped by
// tenant: one client's approvers never see or end another client's
// sessions (policy.Config.OversightOf).

func (s *Server) sessionCommands() map[string]command {
	return map[string]command{
		"sessions": {usage: "sessions [--live] [--json]", help: "recent sessions, or the live ones, of the tenants you oversee", run: cmdSessions},
		"watch":    {usage: "watch SESSION_ID", help: "read-only live view of a session of a tenant you oversee", run: cmdWatch},
		"kill":     {usage: "kill SESSION_ID [--reason TEXT]", help: "terminate a live session of a tenant you oversee", run: cmdKill},
	}
}

// oversight returns the tenants the caller oversees under the current
// policy, or a refusal for someone who oversees none. The refusal does not
// depend on any ID the caller gave, so it reveals nothing about it.
func (e *cmdEnv) oversight() (policy.Oversight, error) {
	pol := e.s.Policy()
	o := pol.OversightOf(pol.User(e.ident.user.Name))
	if o.None() {
		return o, refusal("only approvers and auditors may see or end other users' sessions")
	}
	return o, nil
}

// noSession is the one answer to a session ID the caller may not act on,
// whether it exists in another tenant, has ended or never existed: the
// answer must not tell one client that another's session exists. cause
// goes to the audit event only.
func noSession(id, cause string) error {
	return &userError{msg: fmt.Sprintf("no live session %s that you can act on", id), cause: errors.New(cause)}
}

// liveSession returns the live session id if the caller oversees its tenant.
func (e *cmdEnv) liveSession(o policy.Oversight, id string) (*session, sessionView, error) {
	ss := e.s.live.get(id)
	if ss == nil {
		return nil, sessionView{}, noSession(id, "not live")
	}
	v := ss.view()
	if !o.Covers(v.Tenant) {
		return nil, sessionView{}, noSession(id, "tenant "+v.Tenant+" not overseen")
	}
	return ss, v, nil
}

// sessionView is what oversight reads of a live session, copied under the
// session's lock (the start re-check replaces its admission).
type sessionView struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Login     string    `json:"login"`
	Host      string    `json:"host"`
	Tenant    string    `json:"tenant"`
	Role      string    `json:"role"`
	GrantID   int64     `json:"grant_id,omitempty"`
	StartedAt time.Time `json:"started_at"`
	Live      bool      `json:"live"`
	// State is "running", or "opening" for a channel admitted but not
	// started yet (it is live: a revocation or kill ends it too).
	State string `json:"state,omitempty"`
	// Node is the gateway node that holds (or held) the session.
	Node string `json:"node,omitempty"`
}

func (ss *session) view() sessionView {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	v := sessionView{ID: ss.id, User: ss.ident.user.Name, Login: ss.t.login, Host: ss.adm.host.Name,
		Tenant: ss.adm.host.Tenant, Role: ss.adm.role.Name, GrantID: ss.grantID, StartedAt: ss.startedAt,
		Live: true, State: "running", Node: ss.s.node}
	if v.StartedAt.IsZero() {
		v.StartedAt, v.State = ss.openedAt, "opening"
	}
	return v
}

func cmdSessions(ctx context.Context, e *cmdEnv, args []string) error {
	o, err := e.oversight()
	if err != nil {
		return err
	}
	pos, opts, err := options(args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	live := e.s.live.snapshot()
	// The sessions the other live nodes hold, by their open rows.
	remote, err := e.s.remoteSessions(ctx, o)
	if err != nil {
		return internalError("list the other nodes' sessions", err)
	}
	list := []sessionView{}
	if opts["--live"] != "" {
		for _, ss := range live {
			if v := ss.view(); o.Covers(v.Tenant) {
				list = append(list, v)
			}
		}
		for _, r := range remote {
			if _, ok := live[r.ID]; !ok {
				list = append(list, rowLive(r, true))
			}
		}
		sort.Slice(list, func(i, j int) bool { return list[i].StartedAt.Before(list[j].StartedAt) })
	} else {
		f := audit.SessionFilter{Limit: 50}
		if !o.All {
			f.Tenants = o.Tenants
		}
		rows, err := e.s.opt.Store.Sessions(ctx, f)
		if err != nil {
			return internalError("list sessions", err)
		}
		elsewhere := map[string]bool{}
		for _, r := range remote {
			elsewhere[r.ID] = true
		}
		for _, r := range rows {
			_, isLive := live[r.ID]
			v := rowLive(r, isLive || elsewhere[r.ID])
			if o.Covers(v.Tenant) { // the filter did it; kept as a second lock
				list = append(list, v)
			}
		}
	}
	if e.json {
		return writeJSON(e.out, list)
	}
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTARTED\tUSER\tTARGET\tROLE\tLIVE\tNODE")
	for _, l := range list {
		live := fmt.Sprint(l.Live)
		if l.State == "opening" {
			live = "opening"
		}
		node := l.Node
		if node == "" {
			node = "-" // a row from before node IDs
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s@%s/%s\t%s\t%s\t%s\n", l.ID, l.StartedAt.UTC().Format(time.RFC3339), l.User, l.Login, l.Tenant, l.Host, l.Role, live, node)
	}
	return tw.Flush()
}

func cmdKill(ctx context.Context, e *cmdEnv, args []string) error {
	o, err := e.oversight()
	if err != nil {
		return err
	}
	pos, opts, err := options(args, "--reason")
	if err != nil {
		return err
	}
	id, err := oneSessionID(pos)
	if err != nil {
		return err
	}
	reason := opts["--reason"]
	if err := checkKillReason(reason, false); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if _, _, err := e.liveSession(o, id); err != nil {
		// Not held here: perhaps by another node (cluster_kill.go).
		return e.killElsewhere(ctx, o, id, reason, err)
	}
	if !e.s.Kill(id) {
		return noSession(id, "ended meanwhile")
	}
	var data map[string]any
	if reason != "" {
		data = map[string]any{"reason": reason}
	}
	e.s.audit(ctx, "session.killed", e.ident.user.Name, id, data)
	fmt.Fprintf(e.out, "session %s terminated\n", id)
	return nil
}

func cmdWatch(ctx context.Context, e *cmdEnv, args []string) error {
	o, err := e.oversight()
	if err != nil {
		return err
	}
	id, err := oneSessionID(args)
	if err != nil {
		return err
	}
	if e.s.remoteCandidate(id) {
		return e.watchRemote(ctx, o, id) // held by another node (cluster_watch_view.go)
	}
	ss, v, err := e.liveSession(o, id)
	if err != nil {
		return err
	}
	ss.mu.Lock()
	rec := ss.rec
	ss.mu.Unlock()
	if rec == nil {
		return noSession(id, "not started")
	}
	e.s.audit(ctx, "session.watched", e.ident.user.Name, id, nil)
	w := rec.watch()
	defer rec.unwatch(w)
	defer e.s.audit(context.WithoutCancel(ctx), "session.watch_ended", e.ident.user.Name, id, map[string]any{"via": "ssh"})
	fmt.Fprintf(e.out, "warden: watching %s (%s as %s@%s); read-only, Ctrl-C to leave\r\n", id, v.User, v.Login, v.Host)
	// The host chose these bytes: no clipboard writes, titles, links or
	// terminal reports reach the auditor's machine (recorder.ViewFilter).
	view := recorder.NewViewFilter(e.out)
	// The watcher's oversight is checked again while the watch runs: a
	// live view is access, and it must end when the access does (the
	// watcher leaves the approvers' group, loses their key), not when the
	// watched session does, hours later.
	recheck := time.NewTicker(watchRecheck)
	defer recheck.Stop()
	for {
		select {
		case <-recheck.C:
			if !e.stillOversees(v.Tenant) {
				return refusal("you no longer oversee this session; watch ended")
			}
		case f, ok := <-w.ch:
			if !ok {
				fmt.Fprintf(e.out, "\r\nwarden: session %s ended\r\n", id)
				return nil
			}
			if f.Output == nil {
				continue // a terminal keeps its own size
			}
			if _, err := view.Write(f.Output); err != nil {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// watchRecheck is how often a running watch checks that its watcher still
// oversees the session's tenant.
const watchRecheck = time.Second

// stillOversees reports whether the caller, as the current policy knows
// them, still holds the key they connected with and oversees tenant.
func (e *cmdEnv) stillOversees(tenant string) bool {
	ident, ok := e.s.reidentify(e.ident)
	if !ok {
		return false
	}
	pol := e.s.Policy()
	return pol.OversightOf(pol.User(ident.user.Name)).Covers(tenant)
}

func oneSessionID(args []string) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("%w: give one SESSION_ID", errUsage)
	}
	id := args[0]
	if len(id) != 26 || !validName(id) {
		return "", fmt.Errorf("%w: %q is not a session ID", errUsage, truncate(id, 32))
	}
	return id, nil
}

// watcher receives a copy of a session's output and resizes. A watcher
// that falls behind loses frames rather than slowing the session down;
// dropped counts them, so that a view can say so (the console does).
type watcher struct {
	ch      chan recorder.Frame
	dropped atomic.Int64
}

// watchers is the set of live viewers of one session.
type watchers struct {
	n   atomic.Int32 // len(set), read without the lock on every chunk
	mu  sync.Mutex
	set map[*watcher]struct{}
}

func (r *sessionRecord) watch() *watcher {
	w := &watcher{ch: make(chan recorder.Frame, 64)}
	r.viewers.mu.Lock()
	if r.viewers.set == nil {
		r.viewers.set = map[*watcher]struct{}{}
	}
	r.viewers.set[w] = struct{}{}
	r.viewers.n.Add(1)
	r.viewers.mu.Unlock()
	return w
}

func (r *sessionRecord) unwatch(w *watcher) {
	r.viewers.mu.Lock()
	if _, ok := r.viewers.set[w]; ok {
		delete(r.viewers.set, w)
		r.viewers.n.Add(-1)
		close(w.ch)
	}
	r.viewers.mu.Unlock()
}

// show copies output to the watchers, if any; the copy is needed because
// the bridge reuses its buffer.
func (r *sessionRecord) show(p []byte) {
	if r.viewers.n.Load() == 0 {
		return // the common case: nobody watching, no lock on the byte path
	}
	r.broadcast(recorder.Frame{Output: append([]byte(nil), p...)})
}

// broadcast hands f to every watcher without ever waiting: a full
// watcher loses it and counts the loss.
func (r *sessionRecord) broadcast(f recorder.Frame) {
	r.viewers.mu.Lock()
	defer r.viewers.mu.Unlock()
	for w := range r.viewers.set {
		select {
		case w.ch <- f:
		default:
			w.dropped.Add(1)
		}
	}
}

// endWatch tells the watchers the session ended.
func (r *sessionRecord) endWatch() {
	r.viewers.mu.Lock()
	defer r.viewers.mu.Unlock()
	for w := range r.viewers.set {
		delete(r.viewers.set, w)
		r.viewers.n.Add(-1)
		close(w.ch)
	}
}

// killElsewhere ends session id held by another live node, with the same
// oversight check against its row as against a local session, and the
// same answer (notHere) for a session the caller may not act on. The kill
// is reported done only once the row is ended; every outcome is audited
// (session.killed with the node, or command.refused by the caller).
func (e *cmdEnv) killElsewhere(ctx context.Context, o policy.Oversight, id, reason string, notHere error) error {
	row, ok, err := e.s.remoteSession(ctx, id)
	if err != nil {
		return internalError("find session "+id, err)
	}
	if !ok {
		return notHere
	}
	if !o.Covers(row.Tenant) {
		return noSession(id, "tenant "+row.Tenant+" not overseen (node "+row.NodeID+")")
	}
	if err := e.s.killRemote(ctx, e.ident.user.Name, row, reason); err != nil {
		var kf *KillFailedError
		if errors.As(err, &kf) {
			return &userError{msg: kf.msg}
		}
		return internalError("kill "+id, err)
	}
	data := map[string]any{"node": row.NodeID}
	if reason != "" {
		data["reason"] = reason
	}
	e.s.audit(ctx, "session.killed", e.ident.user.Name, id, data)
	fmt.Fprintf(e.out, "session %s terminated\n", id)
	return nil
}
