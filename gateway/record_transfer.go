package gateway

import (
	"context"
	"fmt"
	"strings"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/recorder"
	"github.com/warden-gw/warden/transfer"
)

// File transfers (sftp and legacy scp) are logged as file operations, not
// recorded as a terminal. That is only sound while the parser accounts for
// every byte: a session that claims to be a transfer must parse as one.
// When its parser stops, recording.on_failure decides, at once and before
// the chunk that did not parse is delivered:
//
//   - terminate (the default): the session ends with end_reason
//     recording_failed, the user is told on stderr, and a recording.failed
//     event names the cause; the chunk that was not delivered is kept in a
//     cast, so the auditor sees what was tried;
//   - continue: a cast is opened for the session and everything from that
//     chunk on, both ways, is recorded raw into it.
//
// Either way a command row says that the parser stopped, and why.

// transferSource is the command-log source of the session's transfer.
func (r *sessionRecord) transferSource() string {
	if r.sftp != nil {
		return "sftp"
	}
	return "scp"
}

// transferOutput feeds host→client stdout to the transfer's parser.
func (r *sessionRecord) transferOutput(p []byte) error {
	var ops []transfer.Op
	switch {
	case r.sftp != nil:
		ops = r.sftp.HostData(p)
	case r.scp != nil && !r.scpUp:
		ops = r.scp.Data(p)
	case r.scp != nil:
		// The host's one-byte answers tell a refused upload from file data.
		ops = r.scp.Reply(p)
	default:
		return nil
	}
	if err := r.logOps(ops); err != nil {
		return err
	}
	return r.afterParse(p, false)
}

// transferInput feeds client→host bytes to the transfer's parser.
func (r *sessionRecord) transferInput(p []byte) error {
	var ops []transfer.Op
	switch {
	case r.sftp != nil:
		ops = r.sftp.ClientData(p)
	case r.scp != nil && r.scpUp:
		ops = r.scp.Data(p)
	case r.scp != nil:
		ops = r.scp.Reply(p)
	default:
		return nil
	}
	if err := r.logOps(ops); err != nil {
		return err
	}
	return r.afterParse(p, true)
}

func (r *sessionRecord) logOps(ops []transfer.Op) error {
	for _, op := range ops {
		if err := r.logCommand(context.Background(), r.transferSource(), op.String()); err != nil {
			return err
		}
	}
	return nil
}

// parserErr is why the transfer's parser stopped, or nil.
func (r *sessionRecord) parserErr() error {
	switch {
	case r.sftp != nil:
		return r.sftp.Err()
	case r.scp != nil:
		return r.scp.Err()
	}
	return nil
}

// afterParse applies recording.on_failure once the parser has stopped. p
// was just fed (in: client→host); the error returned keeps it from being
// delivered. A chunk of the other direction fed after the failure is
// ignored by the parser and lands here too, so nothing passes unseen.
func (r *sessionRecord) afterParse(p []byte, in bool) error {
	perr := r.parserErr()
	if perr == nil {
		return nil
	}
	// Once makes every caller, in either pump, see stopErr as set.
	first := false
	r.stopOnce.Do(func() { first, r.stopErr = true, r.parserStopped(perr) })
	if r.stopErr != nil {
		if first && r.terminate {
			// Not delivered, but kept: the auditor sees what was tried.
			_ = r.recordRaw(p, in)
		}
		return r.stopErr // terminate, or the command log failed
	}
	return r.recordRaw(p, in)
}

// parserStopped logs the parser's failure: the audit event, the command
// row, and under terminate the error that ends the session. Under continue
// it returns nil unless the command log itself failed.
func (r *sessionRecord) parserStopped(perr error) error {
	ss := r.ss
	src := r.transferSource()
	policy := "continue"
	if r.terminate {
		policy = "terminate"
	}
	r.recordingFailed()
	ss.s.audit(context.Background(), "recording.failed", ss.ident.user.Name, ss.t.String(), map[string]any{
		"session_id": ss.id, "cause": perr.Error(), "protocol": src, "on_failure": policy,
	})
	note := fmt.Sprintf("(%s stream did not parse: %v; session terminated)", src, perr)
	if !r.terminate {
		note = fmt.Sprintf("(%s stream did not parse: %v; the rest of the session is recorded raw)", src, perr)
	}
	if err := r.logCommand(context.Background(), src, note); err != nil {
		return err
	}
	if !r.terminate {
		ss.s.log.Warn("transfer did not parse; recording raw (recording.on_failure: continue)", "session", ss.id, "err", perr)
		return nil
	}
	return &userError{
		msg:   fmt.Sprintf("the %s stream did not parse as %s; session terminated", src, protocolName(src)),
		cause: fmt.Errorf("%w: %v", errRecording, perr),
	}
}

func protocolName(src string) string {
	if src == "sftp" {
		return "SFTP"
	}
	return "the scp protocol"
}

// recordRaw writes p to the transfer's raw cast, opening it on first use.
func (r *sessionRecord) recordRaw(p []byte, in bool) error {
	if r.failed.Load() {
		return nil // on_failure: continue, and the cast already failed
	}
	w, err := r.rawCast()
	if err != nil {
		return r.castErr(err)
	}
	if in {
		return r.castErr(w.Input(p))
	}
	return r.castErr(w.Output(p))
}

// rawCast returns the transfer's raw cast, creating it the first time.
func (r *sessionRecord) rawCast() (*recorder.Writer, error) {
	if w := r.raw.Load(); w != nil {
		return w, nil
	}
	r.rawMu.Lock()
	defer r.rawMu.Unlock()
	if w := r.raw.Load(); w != nil {
		return w, nil
	}
	if r.rawErr != nil {
		return nil, r.rawErr
	}
	s := r.ss.s
	w, err := recorder.Create(s.Policy().DataDir, r.ss.castHeader(r.row), recorder.Options{Now: s.opt.Now})
	if err != nil {
		r.rawErr = err
		return nil, err
	}
	r.raw.Store(w)
	r.follow(w.RelPath())
	return w, nil
}

// closeTransfer logs the operations still open when the session ends.
func (r *sessionRecord) closeTransfer() error {
	switch {
	case r.sftp != nil:
		return r.logOps(r.sftp.Close())
	case r.scp != nil:
		return r.logOps(r.scp.Close())
	}
	return nil
}

// dropTransferEnv refuses, among the requests queued before the start, the
// env requests of a transfer session other than LANG and LC_*, which are
// all OpenSSH's clients send by default. The host's shell runs scp (or
// sshd runs sftp-server) under them, and a variable such as BASH_ENV or
// LD_PRELOAD, wherever a host's AcceptEnv lets it through, would run other
// code under the name of a transfer.
func (ss *session) dropTransferEnv() {
	kept := ss.queued[:0]
	for _, r := range ss.queued {
		if r.Type == "env" {
			var kv struct{ Name, Value string }
			if err := gossh.Unmarshal(r.Payload, &kv); err != nil || !localeVar(kv.Name) {
				ss.s.log.Info("env request refused for a file transfer", "user", ss.ident.user.Name, "target", ss.t.String(), "name", truncate(kv.Name, 64))
				if r.WantReply {
					_ = r.Reply(false, nil)
				}
				continue
			}
		}
		kept = append(kept, r)
	}
	ss.queued = kept
}

func localeVar(name string) bool {
	return name == "LANG" || strings.HasPrefix(name, "LC_")
}
