package gateway

import (
	"context"
	"fmt"
	"io"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// Command guard rails (a role's commands.deny). An exec command that
// matches is refused before it reaches the host; a line typed in a shell
// that matches is not sent: its Enter is swallowed, the host's line is
// cleared, and the user is told why. This is a guard rail against mistakes,
// not a sandbox: what runs inside scripts, aliases, other interpreters or
// full-screen programs, and lines built by tab completion, are not seen.

// clearLine is sent to the host in place of a denied line's Enter: end of
// line, kill to its start (readline, zsh and the tty driver all honour
// Ctrl-U), then an empty Enter so the shell shows a fresh prompt.
const clearLine = "\x05\x15\r"

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
	if err := ss.rec.logDenied(ctx, "exec", ss.command, rule); err != nil {
		return err
	}
	return refusal("command denied by rule %s of role %s", rule, ss.adm.role.Name)
}

// logDenied logs a refused command.
func (r *sessionRecord) logDenied(ctx context.Context, source, text, rule string) error {
	ss := r.ss
	err := ss.s.opt.Store.LogCommand(context.WithoutCancel(ctx), audit.Command{
		SessionID: ss.id, TS: ss.s.now(), User: ss.ident.user.Name, Login: ss.t.login,
		Host: ss.adm.host.Name, Tenant: ss.adm.host.Tenant, Source: source, Command: text,
		Action: "denied", Rule: rule,
	})
	if err != nil {
		return &userError{msg: "command log unavailable; session ended", cause: err}
	}
	ss.s.audit(ctx, "command.denied", ss.ident.user.Name, ss.t.String(), map[string]any{
		"session_id": ss.id, "source": source, "rule": rule, "role": ss.adm.role.Name,
	})
	return nil
}

// deniedLine handles a typed line the guard refused: it is logged, the user
// sees why, and the host gets what was typed before the Enter followed by
// clearLine instead of the Enter. Anything after the Enter in the same
// chunk (the rest of a paste) is dropped with it.
func (r *sessionRecord) deniedLine(p []byte, end int, text, rule string) ([]byte, error) {
	if err := r.logDenied(context.Background(), "shell", text, rule); err != nil {
		return nil, err
	}
	_, _ = io.WriteString(r.ss.ch, fmt.Sprintf("\r\nwarden: command denied by rule %s of role %s; not sent\r\n", rule, r.ss.adm.role.Name))
	out := make([]byte, 0, end+len(clearLine))
	out = append(append(out, p[:end]...), clearLine...)
	return out, nil
}
