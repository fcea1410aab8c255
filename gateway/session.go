package gateway

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
)

// Limits on what a client may ask of a pseudo-terminal. Larger values are
// mistakes or attacks on the host's and the player's memory.
const (
	maxTermDim  = 10000
	maxTermName = 64
)

// End reasons written to sessions.end_reason.
const (
	endExit           = "exit"
	endSignal         = "signal"
	endClientGone     = "client_disconnected"
	endHostGone       = "host_disconnected"
	endHostDown       = "host_unreachable"
	endHostKey        = "host_key_mismatch"
	endCredential     = "credential_failed"
	endRecording      = "recording_failed"
	endRefused        = "refused"
	endGrantExpired   = "grant_expired"
	endGrantRevoked   = "grant_revoked"
	endKilled         = "killed"
	endShutdown       = "shutdown"
	endInternal       = "internal_error"
	endHostRefusedReq = "host_refused"
	// endPolicyChanged (reload.go): a reloaded policy no longer entitles it.
)

// ptyRequest is the payload of "pty-req" (RFC 4254 §6.2).
type ptyRequest struct {
	Term     string
	Cols     uint32
	Rows     uint32
	WidthPx  uint32
	HeightPx uint32
	Modes    string
}

// windowChange is the payload of "window-change" (RFC 4254 §6.7).
type windowChange struct {
	Cols, Rows, WidthPx, HeightPx uint32
}

// session is one session channel: its own row, recording and host
// connection.
type session struct {
	s     *Server
	id    string
	ident identity
	t     target
	adm   admission
	port  string

	ch   gossh.Channel
	reqs <-chan *gossh.Request

	// Filled while the channel's first requests arrive.
	pty     *ptyRequest
	kind    string // shell, exec or subsystem
	command string // exec command or subsystem name
	queued  []*gossh.Request

	host     *gossh.Client
	hostCh   gossh.Channel
	hostReqs <-chan *gossh.Request

	rec       *sessionRecord
	started   bool // the session row exists
	startedAt time.Time
	openedAt  time.Time // when the channel was admitted and joined the registry

	// grantID is the grant the channel was admitted under, fixed at open
	// so that the registry can read it without a lock.
	grantID int64

	cancel context.CancelCauseFunc

	bytesIn, bytesOut atomic.Int64

	mu         sync.Mutex
	endReason  string
	exitStatus *int
}

// handleSession is the gliderlabs channel handler for "session" channels.
func (s *Server) handleSession(_ *gliderssh.Server, conn *gossh.ServerConn, nc gossh.NewChannel, gctx gliderssh.Context) {
	ident, ok := s.identify(conn)
	if !ok {
		s.audit(gctx, "session.refused", "", truncate(conn.User(), 256), map[string]any{
			"reason": "identity no longer in policy", "client_addr": conn.RemoteAddr().String(),
		})
		_ = nc.Reject(gossh.Prohibited, "warden: your key is no longer known")
		return
	}
	ch, reqs, err := nc.Accept()
	if err != nil {
		return
	}
	_, port, _ := net.SplitHostPort(conn.LocalAddr().String())
	t, err := parseTarget(conn.User())
	if err != nil {
		s.audit(gctx, "session.refused", ident.user.Name, truncate(conn.User(), 256), map[string]any{
			"reason": err.Error(), "client_addr": ident.clientAddr,
		})
		refuse(ch, reqs, nil, "warden: "+err.Error(), false, s.opt.RequestTimeout)
		return
	}
	if !t.direct {
		s.runCommand(gctx, ident, t.login, ch, reqs)
		return
	}
	adm, err := s.authorize(gctx, ident, t, port)
	if err != nil {
		s.audit(gctx, "session.refused", ident.user.Name, t.String(), map[string]any{
			"reason": err.Error(), "client_addr": ident.clientAddr,
		})
		s.logRefusal(err, ident, t)
		refuse(ch, reqs, nil, userMessage(err), false, s.opt.RequestTimeout)
		return
	}
	ss := &session{s: s, ident: ident, t: t, adm: adm, grantID: adm.grantID, port: port, ch: ch, reqs: reqs}
	ss.run(gctx)
}

func (s *Server) logRefusal(err error, ident identity, t target) {
	var ue *userError
	if errors.As(err, &ue) && ue.cause != nil {
		s.log.Error("session refused", "user", ident.user.Name, "target", t.String(), "err", err)
		return
	}
	s.log.Info("session refused", "user", ident.user.Name, "target", t.String(), "reason", err.Error())
}

// run drives one admitted session channel from its opening to its end.
//
// The session joins the live registry as soon as the channel is admitted,
// under a context whose deadline is the grant's end, because a client may
// wait up to RequestTimeout before it asks to start: a revocation, an
// expiry, a kill, deprovisioning or a shutdown must reach such a channel
// too, or a spare channel opened under a grant would outlive the grant.
// When the start request comes, the admission is checked again (recheck).
func (ss *session) run(connCtx context.Context) {
	s := ss.s
	id, err := newSessionID(s.opt.Rand)
	if err != nil {
		ss.refuse(connCtx, internalError("session id", err), endInternal)
		return
	}
	ss.id = id
	ss.openedAt = s.now()

	ctx, cancel := context.WithCancelCause(connCtx)
	defer cancel(nil)
	if !ss.adm.deadline.IsZero() {
		var stop context.CancelFunc
		ctx, stop = context.WithTimeoutCause(ctx, ss.adm.deadline.Sub(s.now()), errGrantExpired)
		defer stop()
	}
	ss.cancel = cancel
	s.live.add(ss)
	defer s.live.remove(ss)

	if !ss.awaitStart(ctx) {
		if connCtx.Err() == nil && ctx.Err() != nil {
			// Ended by the gateway before it started: say why.
			cause := context.Cause(ctx)
			ss.refuse(ctx, ss.endedBeforeStart(cause), endFor(cause))
			return
		}
		_ = ss.ch.Close()
		return
	}
	if err := ss.recheck(ctx); err != nil {
		ss.refuse(ctx, err, endRefused)
		return
	}
	ss.mu.Lock()
	ss.startedAt = s.now()
	ss.mu.Unlock()

	if err := ss.begin(ctx); err != nil {
		ss.refuse(ctx, err, endRefused)
		return
	}
	ss.bridge(ctx)
	ss.finish(ctx)
}

// endedBeforeStart is the refusal for a channel whose context ended, by
// cause, before its start request came.
func (ss *session) endedBeforeStart(cause error) error {
	switch {
	case errors.Is(cause, errGrantExpired):
		return refusal("grant %d expired before the session started", ss.grantID)
	case errors.Is(cause, errGrantRevoked):
		return refusal("grant %d ended before the session started", ss.grantID)
	case errors.Is(cause, errKilled):
		return refusal("session terminated by an administrator")
	case errors.Is(cause, errShutdown):
		return refusal("gateway restarting; session refused")
	case isPolicyChange(cause):
		return refusal("access removed by a policy change; session refused")
	}
	return refusal("session ended before it started")
}

// awaitStart reads the channel's requests up to and including the one that
// starts it (shell, exec or subsystem), answering those that concern only
// the gateway and queueing the rest to forward in order once the host is
// connected. It returns false if the channel closed, never started, or ctx
// ended first (revocation, expiry, kill or shutdown).
func (ss *session) awaitStart(ctx context.Context) bool {
	timer := time.NewTimer(ss.s.opt.RequestTimeout)
	defer timer.Stop()
	for {
		select {
		case r, ok := <-ss.reqs:
			if !ok {
				return false
			}
			switch r.Type {
			case "pty-req":
				var p ptyRequest
				if err := gossh.Unmarshal(r.Payload, &p); err != nil || !validPTY(p) {
					ss.s.log.Info("pty request refused", "user", ss.ident.user.Name, "target", ss.t.String())
					_ = r.Reply(false, nil)
					continue
				}
				ss.pty = &p
				ss.queued = append(ss.queued, r)
			case "env":
				ss.queued = append(ss.queued, r)
			case "shell", "exec", "subsystem":
				if !ss.startRequest(r) {
					continue
				}
				ss.queued = append(ss.queued, r)
				return true
			default:
				ss.otherRequest(r)
			}
		case <-timer.C:
			return false
		case <-ctx.Done():
			return false
		}
	}
}

// startRequest records what the channel asks to run. A malformed payload
// or a subsystem other than sftp is refused and the channel may try again.
func (ss *session) startRequest(r *gossh.Request) bool {
	ss.kind = r.Type
	switch r.Type {
	case "exec", "subsystem":
		var p struct{ Value string }
		if err := gossh.Unmarshal(r.Payload, &p); err != nil {
			_ = r.Reply(false, nil)
			return false
		}
		if r.Type == "subsystem" && p.Value != "sftp" {
			ss.s.audit(context.Background(), "session.refused", ss.ident.user.Name, ss.t.String(), map[string]any{
				"reason": "subsystem not allowed", "subsystem": truncate(p.Value, 64),
			})
			_ = r.Reply(false, nil)
			return false
		}
		ss.command = p.Value
	}
	return true
}

// otherRequest answers a request that is neither part of a session's setup
// nor forwarded: agent and X11 forwarding are refused and logged because
// they would open paths around the recorder.
func (ss *session) otherRequest(r *gossh.Request) {
	switch r.Type {
	case "auth-agent-req@openssh.com", "x11-req":
		ss.s.refuseForward(ss.ident, ss.t.String(), r.Type)
	}
	_ = r.Reply(false, nil)
}

func validPTY(p ptyRequest) bool {
	if len(p.Term) > maxTermName || p.Cols > maxTermDim || p.Rows > maxTermDim {
		return false
	}
	for i := 0; i < len(p.Term); i++ {
		if c := p.Term[i]; c <= 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

var (
	errGrantExpired = errors.New("grant expired")
	errGrantRevoked = errors.New("grant revoked")
	errKilled       = errors.New("session killed")
	errShutdown     = errors.New("gateway restarting")
)

// endFor maps the cause of a cancelled session context to its end reason.
func endFor(cause error) string {
	switch {
	case errors.Is(cause, errGrantExpired):
		return endGrantExpired
	case errors.Is(cause, errGrantRevoked):
		return endGrantRevoked
	case errors.Is(cause, errKilled):
		return endKilled
	case errors.Is(cause, errShutdown):
		return endShutdown
	case isPolicyChange(cause):
		return endPolicyChanged
	}
	return endClientGone
}

// setEnd records why the session ended; the first reason wins.
func (ss *session) setEnd(reason string) {
	ss.mu.Lock()
	if ss.endReason == "" {
		ss.endReason = reason
	}
	ss.mu.Unlock()
}

func (ss *session) sessionRow() audit.Session {
	return audit.Session{
		ID: ss.id, User: ss.ident.user.Name, Login: ss.t.login, Host: ss.adm.host.Name,
		Tenant: ss.adm.host.Tenant, Role: ss.adm.role.Name, GrantID: ss.adm.grantID,
		ClientAddr: ss.ident.clientAddr, StartedAt: ss.startedAt, PolicyVersion: ss.adm.policy,
	}
}
