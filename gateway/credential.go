package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/hostkey"
	"github.com/warden-gw/warden/jit"
	"github.com/warden-gw/warden/vault"
)

// begin turns an admitted, started channel into a running session: the
// session row, the recording, the command log of an exec, a fresh
// certificate, the host connection, and the channel's queued requests
// replayed on the host in order. Each step fails closed: an error refuses
// the session before any byte reaches the host.
func (ss *session) begin(ctx context.Context) error {
	s := ss.s
	row := ss.sessionRow()
	rec, err := ss.openRecord(row)
	if err != nil {
		return err
	}
	ss.mu.Lock() // watch (ssh gw watch) reads rec from another goroutine
	ss.rec = rec
	ss.mu.Unlock()
	row.RecordingPath = rec.relPath()
	if err := s.opt.Store.StartSession(ctx, row); err != nil {
		return &userError{msg: "session log unavailable; session refused", cause: fmt.Errorf("start session row: %w", err)}
	}
	ss.started = true
	s.opt.hooks.onStarted(ss.id)
	if ss.adm.grantID != 0 && s.opt.JIT != nil {
		// Marks the grant used; the first use of a break-glass grant
		// alerts (the workflow sends it).
		// It also re-checks the grant inside the store's writer, after
		// any revocation committed before it: the last word on whether
		// the grant still admits the session.
		if _, err := s.opt.JIT.RecordUse(ctx, ss.adm.grantID, ss.id, ss.t.login, ss.adm.host.Name); err != nil {
			if _, refused := jit.UserMessage(err); refused {
				return &userError{msg: fmt.Sprintf("grant %d ended before the session started", ss.adm.grantID), cause: err}
			}
			return internalError("record grant use", err)
		}
	}
	s.audit(ctx, "session.start", row.User, ss.t.String(), map[string]any{
		"session_id": ss.id, "role": row.Role, "tenant": row.Tenant, "kind": ss.kind,
		"client_addr": row.ClientAddr, "grant_id": row.GrantID, "policy_version": row.PolicyVersion,
	})
	if err := ss.guardExec(ctx); err != nil {
		return err
	}
	if err := ss.logStart(ctx); err != nil {
		return err
	}

	cred, err := ss.credential(ctx)
	if err != nil {
		ss.setEnd(endCredential)
		return err
	}
	if cred.Cert != nil {
		if err := s.opt.Store.SetSessionCert(ctx, ss.id, strconv.FormatUint(cred.Serial, 10)); err != nil {
			return internalError("store certificate serial", err)
		}
	}

	host, err := dialHost(ctx, ss.adm.host, ss.t.login, cred.Signer, s.opt.DialTimeout)
	if err != nil {
		return ss.dialError(ctx, err)
	}
	ss.host = host
	hostCh, hostReqs, err := host.OpenChannel("session", nil)
	if err != nil {
		ss.setEnd(endHostGone)
		return refusal("host %s refused the session: %v", ss.adm.host.Name, err)
	}
	ss.hostCh, ss.hostReqs = hostCh, hostReqs
	return ss.replayQueued()
}

// credential asks the signer for this session's certificate. Its lifetime
// is cert_ttl but never beyond the grant, so a certificate cannot outlive
// the access it stands for.
func (ss *session) credential(ctx context.Context) (*vault.Credential, error) {
	s := ss.s
	if path := ss.adm.role.Credential.VaultKV; path != "" {
		return ss.staticCredential(ctx, path)
	}
	ttl := certTTL(time.Duration(s.Policy().Credentials.CertTTL), s.now(), ss.adm.deadline)
	// Latency is measured with the real clock, not the injected one.
	began := time.Now()
	cred, err := s.opt.Signer.Sign(ctx, vault.SignRequest{
		SessionID: ss.id, User: ss.ident.user.Name, Login: ss.t.login, TTL: ttl, PTY: ss.pty != nil,
	})
	s.opt.Metrics.CredentialSigned(s.Policy().Credentials.Backend, time.Since(began), err)
	if err != nil {
		s.audit(ctx, "credential.failed", ss.ident.user.Name, ss.t.String(), map[string]any{
			"session_id": ss.id, "cause": err.Error(),
		})
		if errors.Is(err, vault.ErrUnavailable) {
			return nil, &userError{msg: "credential vault unavailable", cause: err}
		}
		return nil, internalError("sign certificate", err)
	}
	return cred, nil
}

// staticCredential is a break-glass role's own key from Vault KV, for hosts
// that must be reachable when the CA path is not (the emergency it is for).
// It is rotated when the grant ends, so its use is bounded by the grant.
func (ss *session) staticCredential(ctx context.Context, path string) (*vault.Credential, error) {
	s := ss.s
	if s.opt.StaticKeys == nil {
		return nil, internalError("static credential", errors.New("no Vault KV client configured"))
	}
	signer, err := s.opt.StaticKeys.Fetch(ctx, path)
	if err != nil {
		s.audit(ctx, "credential.failed", ss.ident.user.Name, ss.t.String(), map[string]any{
			"session_id": ss.id, "cause": err.Error(), "credential": "vault_kv",
		})
		return nil, &userError{msg: "credential vault unavailable", cause: err}
	}
	return &vault.Credential{Signer: signer}, nil
}

// dialError classifies a failed connection to the managed host. The host's
// name and a short cause reach the client; a host key mismatch is also an
// audit event of its own because it may be an attack.
func (ss *session) dialError(ctx context.Context, err error) error {
	h := ss.adm.host
	if errors.Is(err, hostkey.ErrMismatch) {
		ss.setEnd(endHostKey)
		ss.s.audit(ctx, "host_key.mismatch", ss.ident.user.Name, h.Tenant+"/"+h.Name, map[string]any{
			"session_id": ss.id, "cause": err.Error(),
		})
		return &userError{msg: fmt.Sprintf("host key verification failed for %s; session refused", h.Name), cause: err}
	}
	ss.setEnd(endHostDown)
	why := "connection failed"
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		why = "connection refused"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		why = "connection timed out"
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		why = "no route to host"
	case isAuthFailure(err):
		why = "the host did not accept Warden's certificate (is TrustedUserCAKeys set?)"
	}
	return &userError{msg: fmt.Sprintf("cannot reach host %s: %s", h.Name, why), cause: err}
}

// isAuthFailure reports x/crypto's "no method succeeded" error, which it
// does not export as a type.
func isAuthFailure(err error) bool {
	return strings.Contains(err.Error(), "unable to authenticate")
}

// replayQueued forwards the requests that arrived before the host was
// connected, in their order. Those the gateway answered early (pty-req,
// env, window-change; see acceptEarly) go without a reply to the client;
// the start request is answered with the host's answer. A pty is still
// asked for with want-reply: the client was told yes, so if the host says
// no, the user is told on stderr (once the session has started, when
// OpenSSH shows it) and the session runs without a terminal.
//
// The host's no comes before the start request is sent, and replayQueued
// runs before the bridge reads a byte of the client's input (begin, then
// bridge, in session.run): so the session's lines are rebuilt for a pipe
// (hostRefusedPTY) before anything typed could reach the host's shell.
func (ss *session) replayQueued() error {
	ptyRefused := false
	for i, r := range ss.queued {
		ok, err := ss.hostCh.SendRequest(r.Type, r.WantReply || r.Type == "pty-req", r.Payload)
		if err != nil {
			ss.queued = ss.queued[i:]
			ss.setEnd(endHostGone)
			return refusal("host %s closed the session", ss.adm.host.Name)
		}
		if r.WantReply {
			_ = r.Reply(ok, nil)
		}
		if r.Type == "pty-req" && !ok {
			ptyRefused = true
			if err := ss.rec.hostRefusedPTY(); err != nil {
				// The start request was not sent: the refusal answers it.
				ss.queued = ss.queued[i+1:]
				return err
			}
		}
		if isStart(r.Type) && !ok {
			ss.queued = nil
			ss.setEnd(endHostRefusedReq)
			return errHostRefusedStart
		}
	}
	ss.queued = nil
	if ptyRefused {
		ss.s.log.Info("host refused a pty the gateway had accepted", "session", ss.id, "host", ss.adm.host.Name)
		// "\r\n": the client put its terminal in raw mode when it was
		// told it has a pty. The notice goes into the recording too: it
		// explains why what follows is shown without a terminal.
		msg := []byte(fmt.Sprintf("warden: host %s refused a terminal (pty); the session runs without one\r\n", ss.adm.host.Name))
		if err := ss.rec.notice(msg); err != nil {
			return err
		}
		_, _ = ss.ch.Stderr().Write(msg)
	}
	return nil
}

// errHostRefusedStart means the host answered "no" to shell, exec or
// subsystem. The client has its answer already; nothing more is shown.
var errHostRefusedStart = errors.New("host refused to start the session")

// refuse ends a session that could not start: the audit event, the log line,
// the message to the client, and the session row when one was written.
func (ss *session) refuse(ctx context.Context, err error, reason string) {
	s := ss.s
	ss.setEnd(reason)
	ss.mu.Lock()
	why := ss.endReason // the first reason set (e.g. credential_failed), as the row will say
	ss.mu.Unlock()
	s.opt.Metrics.Refused("session.refused", why)
	s.audit(ctx, "session.refused", ss.ident.user.Name, ss.t.String(), map[string]any{
		"session_id": ss.id, "reason": err.Error(), "client_addr": ss.ident.clientAddr,
	})
	s.logRefusal(err, ss.ident, ss.t)
	if errors.Is(err, errHostRefusedStart) {
		sendExitStatus(ss.ch, 1)
		_ = ss.ch.Close()
		go gossh.DiscardRequests(ss.reqs)
	} else {
		refuse(ss.ch, ss.reqs, ss.queued, userMessage(err), ss.pty != nil, s.opt.RequestTimeout)
	}
	ss.queued = nil
	if ss.started {
		ss.finish(ctx)
	}
}
