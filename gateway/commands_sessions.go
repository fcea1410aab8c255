package gateway

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/recorder"
)

// Session oversight over SSH (CONTRACT §3): sessions [--live], watch
// SESSION_ID (auditors: a read-only live view) and kill SESSION_ID
// (approvers and auditors).

func (s *Server) sessionCommands() map[string]command {
	return map[string]command{
		"sessions": {usage: "sessions [--live] [--json]", help: "recent sessions, or the live ones (auditors, approvers)", run: cmdSessions},
		"watch":    {usage: "watch SESSION_ID", help: "read-only live view of a session (auditors)", run: cmdWatch},
		"kill":     {usage: "kill SESSION_ID", help: "terminate a live session (approvers, auditors)", run: cmdKill},
	}
}

// isAuditor reports membership of the auditors group.
func (e *cmdEnv) isAuditor() bool { return e.ident.user.InAny([]string{"auditors"}) }

// overseer is an approver or an auditor: who may list and kill sessions.
func (e *cmdEnv) overseer() error {
	if e.isAuditor() || mayGovern(e.s.Policy(), e.ident.user) {
		return nil
	}
	return refusal("only approvers and auditors may see or end other users' sessions")
}

type liveOut struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Login     string    `json:"login"`
	Host      string    `json:"host"`
	Tenant    string    `json:"tenant"`
	Role      string    `json:"role"`
	GrantID   int64     `json:"grant_id,omitempty"`
	StartedAt time.Time `json:"started_at"`
	Live      bool      `json:"live"`
}

func cmdSessions(ctx context.Context, e *cmdEnv, args []string) error {
	if err := e.overseer(); err != nil {
		return err
	}
	pos, o, err := options(args)
	if err != nil {
		return err
	}
	if err := noArgs(pos); err != nil {
		return err
	}
	live := e.s.live.snapshot()
	list := []liveOut{}
	if o["--live"] != "" {
		for _, ss := range live {
			list = append(list, liveOut{ID: ss.id, User: ss.ident.user.Name, Login: ss.t.login, Host: ss.adm.host.Name,
				Tenant: ss.adm.host.Tenant, Role: ss.adm.role.Name, GrantID: ss.adm.grantID, StartedAt: ss.startedAt, Live: true})
		}
		sort.Slice(list, func(i, j int) bool { return list[i].StartedAt.Before(list[j].StartedAt) })
	} else {
		rows, err := e.s.opt.Store.Sessions(ctx, audit.SessionFilter{Limit: 50})
		if err != nil {
			return internalError("list sessions", err)
		}
		for _, r := range rows {
			_, isLive := live[r.ID]
			list = append(list, liveOut{ID: r.ID, User: r.User, Login: r.Login, Host: r.Host, Tenant: r.Tenant,
				Role: r.Role, GrantID: r.GrantID, StartedAt: r.StartedAt, Live: isLive})
		}
	}
	if e.json {
		return writeJSON(e.out, list)
	}
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTARTED\tUSER\tTARGET\tROLE\tLIVE")
	for _, l := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s@%s/%s\t%s\t%v\n", l.ID, l.StartedAt.UTC().Format(time.RFC3339), l.User, l.Login, l.Tenant, l.Host, l.Role, l.Live)
	}
	return tw.Flush()
}

func cmdKill(ctx context.Context, e *cmdEnv, args []string) error {
	if err := e.overseer(); err != nil {
		return err
	}
	id, err := oneSessionID(args)
	if err != nil {
		return err
	}
	if !e.s.Kill(id) {
		return refusal("session %s is not live", id)
	}
	e.s.audit(ctx, "session.killed", e.ident.user.Name, id, nil)
	fmt.Fprintf(e.out, "session %s terminated\n", id)
	return nil
}

func cmdWatch(ctx context.Context, e *cmdEnv, args []string) error {
	if !e.isAuditor() {
		return refusal("only auditors may watch sessions")
	}
	id, err := oneSessionID(args)
	if err != nil {
		return err
	}
	ss := e.s.live.get(id)
	var rec *sessionRecord
	if ss != nil {
		ss.mu.Lock()
		rec = ss.rec
		ss.mu.Unlock()
	}
	if rec == nil {
		return refusal("session %s is not live", id)
	}
	e.s.audit(ctx, "session.watched", e.ident.user.Name, id, nil)
	w := rec.watch()
	defer rec.unwatch(w)
	fmt.Fprintf(e.out, "warden: watching %s (%s as %s@%s); read-only, Ctrl-C to leave\r\n", id, ss.ident.user.Name, ss.t.login, ss.adm.host.Name)
	// The host chose these bytes: no clipboard writes, titles, links or
	// terminal reports reach the auditor's machine (recorder.ViewFilter).
	view := recorder.NewViewFilter(e.out)
	for {
		select {
		case b, ok := <-w.ch:
			if !ok {
				fmt.Fprintf(e.out, "\r\nwarden: session %s ended\r\n", id)
				return nil
			}
			if _, err := view.Write(b); err != nil {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
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

// watcher receives a copy of a session's output. A watcher that falls
// behind loses chunks rather than slowing the session down.
type watcher struct{ ch chan []byte }

// watchers is the set of live viewers of one session.
type watchers struct {
	n   atomic.Int32 // len(set), read without the lock on every chunk
	mu  sync.Mutex
	set map[*watcher]struct{}
}

func (r *sessionRecord) watch() *watcher {
	w := &watcher{ch: make(chan []byte, 64)}
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
	r.viewers.mu.Lock()
	defer r.viewers.mu.Unlock()
	if len(r.viewers.set) == 0 {
		return
	}
	b := append([]byte(nil), p...)
	for w := range r.viewers.set {
		select {
		case w.ch <- b:
		default:
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
