package gateway

import (
	"context"
	"fmt"
	"io"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/recorder"
)

// Command guard rails (a role's commands.deny). An exec command that
// matches is refused before it reaches the host. A command line typed in a
// shell that matches is not sent: on a terminal its submitting key is
// swallowed, the host's line is cleared and the user is told why; in a
// shell without a terminal (ssh -T, piped input, ssh host sh, or a host
// that refused the pty the client asked for) the session ends at that
// line. The rebuilder (recorder.LineBuilder) decides what the line is and
// what replaces it. This is a guard rail against mistakes, not
// a sandbox: what runs inside scripts, aliases, other interpreters or
// full-screen programs, and lines built by tab completion, are not seen.
// Which exec commands are a shell reading its input, whose lines are
// checked the same way, is decided in guard_shell.go.

// denyRule returns the first deny rule of r that text matches, or "".
func denyRule(r *policy.Role, text string) string {
	for i, re := range r.Commands.Deny {
		if re.MatchString(text) {
			if i < len(r.Commands.DenySource) {
				return r.Commands.DenySource[i]
			}
			return re.String()
		}
	}
	return ""
}

// guardExec refuses an exec command that a deny rule matches; the attempt
// is logged with action "denied" and its rule.
func (ss *session) guardExec(ctx context.Context) error {
	if ss.kind != "exec" {
		return nil
	}
	rule := denyRule(ss.adm.role, ss.command)
	if rule == "" {
		return nil
	}
	if err := ss.rec.logDenied(ctx, "exec", ss.command, rule, ss.rec.lastEventOffset()); err != nil {
		return err
	}
	return refusal("command denied by rule %s of role %s", rule, ss.adm.role.Name)
}

// logDenied logs a refused command at offset (seconds into the cast; nil:
// none).
func (r *sessionRecord) logDenied(ctx context.Context, source, text, rule string, offset *float64) error {
	ss := r.ss
	err := ss.s.opt.Store.LogCommand(context.WithoutCancel(ctx), audit.Command{
		SessionID: ss.id, TS: ss.s.now(), User: ss.ident.user.Name, Login: ss.t.login,
		Host: ss.adm.host.Name, Tenant: ss.adm.host.Tenant, Source: source, Command: text,
		Action: "denied", Rule: rule, Offset: offset,
	})
	if err != nil {
		return &userError{msg: "command log unavailable; session ended", cause: err}
	}
	ss.s.opt.Metrics.Refused("command.denied", source)
	ss.s.audit(ctx, "command.denied", ss.ident.user.Name, ss.t.String(), map[string]any{
		"session_id": ss.id, "source": source, "rule": rule, "role": ss.adm.role.Name,
	})
	return nil
}

// deniedLine handles a line the guard refused; send is what the rebuilder
// left of the chunk to send. It is logged, and the user sees why.
//
// On a terminal, send holds what was typed before the submitting key and
// the keys that make the host's line editor drop the line: the user is at
// the keyboard and decides what to type next.
//
// Without a terminal the session ends. The lines before the denied one are
// sent (they were allowed), the denied line and everything after it are
// not. Going on without the line would run the rest of a script in a state
// its author did not intend (a refused cd, then an rm in the wrong place;
// a refused line inside an if or a here-document), so the stream stops at
// the refusal, as `set -e` would.
func (r *sessionRecord) deniedLine(at *float64, l recorder.Line, send []byte) error {
	ss := r.ss
	if err := r.logDenied(context.Background(), "shell", l.Text, l.Rule, at); err != nil {
		return err
	}
	why := fmt.Sprintf("command denied by rule %s of role %s", l.Rule, ss.adm.role.Name)
	if l.Rule == recorder.TooLongRule {
		// No rule matched: the line outgrew what the gateway follows, so
		// the rules could not be asked about it whole, and it fails closed.
		why = fmt.Sprintf("line too long to check against the rules of role %s", ss.adm.role.Name)
	}
	if !r.pipe {
		_, _ = io.WriteString(ss.ch, "\r\nwarden: "+why+"; not sent\r\n")
		return nil
	}
	if len(send) > 0 {
		_, _ = ss.hostCh.Write(send)
	}
	ss.setEnd(endRefused)
	return refusal("%s; not sent, session ended", why)
}
