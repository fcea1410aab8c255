package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// The shared live registry and the kill of a session another node holds
// (issue 12). The local registry stays the truth for this node's
// sessions (it has those still opening, before their row exists); the
// other nodes' sessions are their open rows on live nodes
// (audit.Store.LiveSessions, audit.Reader.OpenSession). Oversight is checked against the row
// exactly as against a local session: same tenant scope, same one answer
// for a session the caller may not act on.

// remoteKillWait bounds how long a kill waits for the holder to end the
// session's row; remoteKillPoll is how often it looks.
const (
	remoteKillWait = 5 * time.Second
	remoteKillPoll = 100 * time.Millisecond
)

// KillFailedError is a kill of a session held by another node that did
// not happen: the cluster could not be reached, or the holder did not end
// it in time. BadInput is the one line to show the person (the console
// shows it as it shows a refused kill reason).
type KillFailedError struct{ msg string }

func (e *KillFailedError) Error() string    { return "gateway: kill: " + e.msg }
func (e *KillFailedError) BadInput() string { return e.msg }

// remoteSessions returns the open rows of the other live nodes in the
// tenants o covers. Alone, it returns none.
func (s *Server) remoteSessions(ctx context.Context, o policy.Oversight) ([]audit.Session, error) {
	cs, ok := s.clustered()
	if !ok {
		return nil, nil
	}
	var tenants []string
	if !o.All {
		tenants = o.Tenants
		if tenants == nil {
			tenants = []string{}
		}
	}
	rows, err := cs.LiveSessions(ctx, s.deadAfter(), tenants)
	if err != nil {
		return nil, err
	}
	out := rows[:0]
	for _, r := range rows {
		if r.NodeID != s.node && o.Covers(r.Tenant) { // the query scoped them; kept as a second lock
			out = append(out, r)
		}
	}
	return out, nil
}

// remoteSession returns the open row of session id if another live node
// holds it. A row of this node's that is not in the registry is not
// live here (it is ending), so it is not offered either.
func (s *Server) remoteSession(ctx context.Context, id string) (audit.Session, bool, error) {
	cs, ok := s.clustered()
	if !ok {
		return audit.Session{}, false, nil
	}
	row, err := cs.OpenSession(ctx, id, s.now().Add(-s.deadAfter()))
	if errors.Is(err, audit.ErrNotFound) {
		return audit.Session{}, false, nil
	}
	if err != nil {
		return audit.Session{}, false, err
	}
	if row.NodeID == s.node || !validNodeID(row.NodeID) { // the policy's node_id shape
		return audit.Session{}, false, nil
	}
	return row, true, nil
}

func (s *Server) deadAfter() time.Duration {
	if s.opt.NodeDeadAfter > 0 {
		return s.opt.NodeDeadAfter
	}
	return defaultNodeDeadAfter
}

// rowLive is what oversight shows of another node's open row.
func rowLive(r audit.Session, live bool) sessionView {
	return sessionView{ID: r.ID, User: r.User, Login: r.Login, Host: r.Host, Tenant: r.Tenant, Role: r.Role,
		GrantID: r.GrantID, StartedAt: r.StartedAt, Live: live, Node: r.NodeID}
}

// killRemote asks the node holding row's session to end it, then waits,
// up to remoteKillWait, for the row to close. It fails closed: a kill
// that could not be sent, or that the holder did not carry out in time,
// is reported as such, never as done.
func (s *Server) killRemote(ctx context.Context, actor string, row audit.Session, reason string) error {
	cs, ok := s.clustered()
	if !ok {
		return &KillFailedError{msg: "no cluster to reach"}
	}
	payload, err := json.Marshal(killMsg{Session: row.ID, Actor: actor, Reason: reason, Node: s.busNode})
	if err != nil {
		return &KillFailedError{msg: fmt.Sprintf("session %s: %v", row.ID, err)}
	}
	pctx, cancel := context.WithTimeout(ctx, remoteKillWait)
	defer cancel()
	if err := s.opt.Bus.Publish(pctx, topicKill, payload); err != nil {
		s.log.Error("kill not sent", "session", row.ID, "node", row.NodeID, "err", err)
		return &KillFailedError{msg: fmt.Sprintf("could not reach the cluster to end session %s on node %s; it was not terminated", row.ID, row.NodeID)}
	}
	tick := time.NewTicker(remoteKillPoll)
	defer tick.Stop()
	for {
		cur, err := cs.Session(pctx, row.ID)
		if err == nil && !cur.EndedAt.IsZero() {
			return nil
		}
		select {
		case <-tick.C:
		case <-pctx.Done():
			return &KillFailedError{msg: fmt.Sprintf("session %s is held by node %s, which did not end it in %s", row.ID, row.NodeID, remoteKillWait)}
		}
	}
}

// remoteIDs returns the IDs of the sessions the other live nodes hold,
// every tenant (the console scopes its rows itself).
func (s *Server) remoteIDs() []string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rows, err := s.remoteSessions(ctx, policy.Oversight{All: true})
	if err != nil {
		s.log.Error("live sessions of the other nodes not read", "err", err)
		return nil
	}
	ids := make([]string, 0, len(rows))
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	return ids
}

// consoleKillRemote is KillSession for a session another node holds:
// the same checks, against its row.
func (s *Server) consoleKillRemote(ctx context.Context, user string, row audit.Session, reason string) error {
	refuse := func(cause string) error {
		s.auditRefusal(ctx, "command.refused", "", user, truncate("kill "+row.ID, 256),
			map[string]any{"reason": cause, "via": "console", "node": row.NodeID})
		return ErrNoLiveSession
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
	if !o.Covers(row.Tenant) {
		return refuse("tenant " + row.Tenant + " not overseen")
	}
	if err := s.killRemote(ctx, user, row, reason); err != nil {
		s.auditRefusal(ctx, "command.refused", "", user, "kill "+row.ID,
			map[string]any{"reason": err.Error(), "via": "console", "node": row.NodeID})
		return err
	}
	s.audit(ctx, "session.killed", user, row.ID, map[string]any{"reason": reason, "via": "console", "node": row.NodeID})
	return nil
}
