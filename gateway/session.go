package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
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

	host     *hostConn
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
	gc := gateConnOf(gctx)
	if gc == nil || !gc.holdSession() {
		s.auditRefusal(gctx, "session.refused", "too many sessions", connUser(conn), truncate(conn.User(), 256), map[string]any{
			"reason": "too many sessions on this connection", "client_addr": conn.RemoteAddr().String(),
		})
		_ = nc.Reject(gossh.ResourceShortage, fmt.Sprintf("warden: too many sessions on this connection (at most %d)", maxSessionsPerConn))
		return
	}
	defer gc.releaseSession()
	if signInOnly(conn) { // an unknown key: `login` and nothing else (commands_sso.go)
		// Bounded per connection above and by the sign-in limits per
		// source and in all; such connections name no user to count.
		s.handleSignIn(gctx, conn, nc)
		return
	}
	user := connUser(conn)
	if !s.users.holdChannel(user) {
		s.auditRefusal(gctx, "session.refused", "too many sessions", user, truncate(conn.User(), 256), map[string]any{
			"reason": "too many sessions for the user", "client_addr": conn.RemoteAddr().String(),
		})
		_ = nc.Reject(gossh.ResourceShortage, fmt.Sprintf("warden: too many sessions for %s (at most %d)", user, s.users.maxChans))
		return
	}
	defer s.users.releaseChannel(user)
	ident, ok := s.identify(conn)
	if !ok {
		s.auditRefusal(gctx, "session.refused", "identity no longer in policy", connUser(conn), truncate(conn.User(), 256), map[string]any{
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
		s.auditRefusal(gctx, "session.refused", "bad target", ident.user.Name, truncate(conn.User(), 256), map[string]any{
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
		if s.auditRefusal(gctx, "session.refused", "not authorized", ident.user.Name, t.String(), map[string]any{
			"reason": err.Error(), "client_addr": ident.clientAddr,
		}) {
			s.logRefusal(err, ident, t)
		}
		refuse(ch, reqs, nil, userMessage(err), false, s.opt.RequestTimeout)
		return
	}
	s.opt.hooks.onAdmitted()
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
		reason := endRefused
		if connCtx.Err() == nil && ctx.Err() != nil {
			// Ended by the gateway while it started (a reload, a
			// revocation, a kill): that is what happened, and what the
			// client and the row must say, not the failure the
			// cancellation provoked (a row not written, a dial cut short).
			cause := context.Cause(ctx)
			err, reason = ss.endedBeforeStart(cause), endFor(cause)
			ss.mu.Lock()
			ss.endReason = reason
			ss.mu.Unlock()
		}
		ss.refuse(ctx, err, reason)
		if ss.host != nil {
			// Dialled, then refused (the host said no to the start): the
			// connection and its goroutines end with the channel.
			_ = ss.host.Close()
		}
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
	case errors.Is(cause, errDeprovisioned):
		return refusal("access removed by the directory; session refused")
	case errors.Is(cause, errShutdown):
		return refusal("gateway restarting; session refused")
	case errors.Is(cause, errStoreLost):
		return refusal("the gateway lost its database; session refused")
	case isPolicyChange(cause):
		return refusal("access removed by a policy change; session refused")
	}
	return refusal("session ended before it started")
}

// awaitStart reads the channel's requests up to and including the one that
// starts it (shell, exec or subsystem). It returns false if the channel
// closed, never started, or ctx ended first (revocation, expiry, kill or
// shutdown).
//
// Nobody waits on the gateway: the host is not connected before the start
// request, and many clients (x/crypto's RequestPty and Setenv, paramiko's
// get_pty, PuTTY) wait for the answer to pty-req or env before they send
// it. So pty-req, env and window-change are answered at once, on their own
// merits (well formed, within bounds), and queued to be forwarded to the
// host in their order when it is connected (replayQueued). The start
// request itself is answered with the host's answer.
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
				// A second pty-req would make sshd drop the whole
				// connection ("you already have a pty").
				if err := gossh.Unmarshal(r.Payload, &p); err != nil || !validPTY(p) || ss.pty != nil {
					ss.refuseRequest(r, "malformed or absurd terminal, or a second one")
					continue
				}
				// The host gets the modes the line rebuilder models,
				// not the client's (ttymodes.go).
				modes, err := safeModes(p.Modes)
				if err != nil {
					ss.refuseRequest(r, "malformed terminal modes")
					continue
				}
				p.Modes = modes
				r.Payload = gossh.Marshal(&p)
				if ss.acceptEarly(r) {
					ss.pty = &p
				}
			case "env":
				var kv struct{ Name, Value string }
				if err := gossh.Unmarshal(r.Payload, &kv); err != nil || !validEnvName(kv.Name) {
					ss.refuseRequest(r, "malformed variable name")
					continue
				}
				if !passedEnv(kv.Name) {
					ss.dropEnv(r, kv.Name)
					continue
				}
				ss.acceptEarly(r)
			case "window-change":
				var w windowChange
				if err := gossh.Unmarshal(r.Payload, &w); err != nil || w.Cols > maxTermDim || w.Rows > maxTermDim {
					ss.refuseRequest(r, "malformed or absurd terminal")
					continue
				}
				if ss.acceptEarly(r) && ss.pty != nil && w.Cols > 0 && w.Rows > 0 {
					ss.pty.Cols, ss.pty.Rows = w.Cols, w.Rows // the cast header's size
				}
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

// Bounds of what a channel may queue before it starts: OpenSSH sends a
// pty-req and a dozen env requests at most. Without them a client could
// make the gateway hold any number of requests for RequestTimeout.
const (
	maxEarlyRequests = 128
	maxEarlyBytes    = 64 << 10
)

// acceptEarly answers a request that came before the start with yes and
// queues it for the host, or answers no when the queue is full. The queued
// copy has WantReply unset: the client has its answer, and no second one
// may ever reach it (a stray reply would be taken as the answer to its next
// request). replayQueued still asks the host about a pty, to tell the user
// if the host refuses one. Consecutive window-changes keep only the last.
func (ss *session) acceptEarly(r *gossh.Request) bool {
	early := &gossh.Request{Type: r.Type, Payload: r.Payload}
	if n := len(ss.queued); r.Type == "window-change" && n > 0 && ss.queued[n-1].Type == "window-change" {
		ss.queued[n-1] = early
		_ = r.Reply(true, nil)
		return true
	}
	size := len(r.Payload)
	for _, q := range ss.queued {
		size += len(q.Payload)
	}
	if len(ss.queued) >= maxEarlyRequests || size > maxEarlyBytes {
		ss.refuseRequest(r, "too many or too large requests before the session started")
		return false
	}
	ss.queued = append(ss.queued, early)
	_ = r.Reply(true, nil)
	return true
}

// validEnvName accepts the names a shell could export: sshd would set
// anything, but a name with '=' or a NUL changes what the host's
// environment means.
func validEnvName(name string) bool {
	if name == "" || len(name) > 256 {
		return false
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c == '=' || c <= 0x20 || c >= 0x7f {
			return false
		}
	}
	return true
}

// startRequest records what the channel asks to run. A malformed payload,
// a subsystem other than sftp or a command with a NUL byte is refused and
// the channel may try again.
//
// Why NUL: sshd reads the command as a C string, ignoring a NUL at its end
// (and dropping the connection for one inside), while deny rules and the
// command log see the whole SSH string. `id\x00` would slip past a rule
// `^id$` and run `id`. No OpenSSH client can send one.
func (ss *session) startRequest(r *gossh.Request) bool {
	ss.kind = r.Type
	switch r.Type {
	case "exec", "subsystem":
		var p struct{ Value string }
		if err := gossh.Unmarshal(r.Payload, &p); err != nil {
			// Bad input from an authenticated client: refused, and on
			// the record within the user's budget like every refusal.
			ss.refuseRequest(r, "malformed "+r.Type+" request")
			return false
		}
		if r.Type == "subsystem" && p.Value != "sftp" {
			ss.s.auditRefusal(context.Background(), "session.refused", "subsystem not allowed", ss.ident.user.Name, ss.t.String(), map[string]any{
				"reason": "subsystem not allowed", "subsystem": truncate(p.Value, 64),
			})
			_ = r.Reply(false, nil)
			return false
		}
		if r.Type == "exec" && strings.IndexByte(p.Value, 0) >= 0 {
			ss.s.auditRefusal(context.Background(), "session.refused", "command contains a NUL byte", ss.ident.user.Name, ss.t.String(), map[string]any{
				"reason": "command contains a NUL byte", "command": printable(p.Value, 256),
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
// they would open paths around the recorder; anything else before the
// start is refused as request.refused.
func (ss *session) otherRequest(r *gossh.Request) {
	switch r.Type {
	case "auth-agent-req@openssh.com", "x11-req":
		ss.s.refuseForward(ss.ident, ss.t.String(), r.Type)
	default:
		// Before the start (after it, such requests go to the host):
		// answered no, and on the record within the user's budget, as
		// every refusal is.
		ss.refuseRequest(r, "request not supported before the session starts")
		return
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

// passedEnv reports whether an env request's variable goes to the host:
// the locale, the time zone and the colour hint, which OpenSSH's clients
// send and which run nothing. Any other name could, wherever a host's
// AcceptEnv lets it through: BASH_ENV, ENV, PROMPT_COMMAND or PS1 run
// shell code before the first prompt, LD_PRELOAD a library, outside the
// command log and the deny rules. The gateway, not each host's sshd_config,
// decides what an admin's session may bring.
func passedEnv(name string) bool {
	return localeVar(name) || name == "TZ" || name == "COLORTERM"
}

// dropEnv answers an env request for a variable not passed to hosts with
// yes, as sshd answers a name its AcceptEnv does not list (clients such as
// x/crypto's Setenv fail on no), and forwards nothing. It is audited as a
// refusal within the user's budget.
func (ss *session) dropEnv(r *gossh.Request, name string) {
	if ss.s.auditRefusal(context.Background(), "request.refused", r.Type, ss.ident.user.Name, ss.t.String(), map[string]any{
		"session_id": ss.id, "request": "env", "name": truncate(name, 64), "reason": "variable not passed to hosts",
		"client_addr": ss.ident.clientAddr,
	}) {
		ss.s.log.Info("env request dropped", "session", ss.id, "user", ss.ident.user.Name, "name", truncate(name, 64))
	}
	_ = r.Reply(true, nil)
}

// refuseRequest answers a channel request "no" and audits it within the
// user's refusal budget (each costs the client one packet), logging only
// what it audits.
func (ss *session) refuseRequest(r *gossh.Request, reason string) {
	if ss.s.auditRefusal(context.Background(), "request.refused", r.Type, ss.ident.user.Name, ss.t.String(), map[string]any{
		"session_id": ss.id, "request": truncate(r.Type, 64), "reason": reason, "client_addr": ss.ident.clientAddr,
	}) {
		ss.s.log.Info("channel request refused", "session", ss.id, "user", ss.ident.user.Name, "request", truncate(r.Type, 64), "reason", reason)
	}
	_ = r.Reply(false, nil)
}

var (
	errGrantExpired = errors.New("grant expired")
	errGrantRevoked = errors.New("grant revoked")
	errKilled       = errors.New("session killed")
	errShutdown     = errors.New("gateway restarting")
	// errStoreLost ends the sessions of a node cut off from the shared
	// store for longer than the others wait before taking it for dead
	// (Server.StoreLost): they are about to end its rows as interrupted,
	// so it ends the sessions themselves rather than run them unrecorded
	// in the cluster's eyes.
	errStoreLost = errors.New("the gateway lost its database")
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
	case errors.Is(cause, errDeprovisioned):
		return endDeprovisioned
	case errors.Is(cause, errShutdown):
		return endShutdown
	case errors.Is(cause, errStoreLost):
		return audit.EndInterrupted
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
