package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
)

// The browser console (package console) decides nothing itself: every
// request list, approval, denial, revocation and kill it offers runs here,
// through the very commands of the SSH command interface, as the signed-in
// user. So the rules of approve (not one's own request, approver of the
// role, the tenant, two distinct approvers for break-glass, cooldowns) and
// the tenant scoping of every listing hold in the browser because the same
// code runs, and a refusal is the same line, with the same audit event, as
// over SSH.

// consoleClientAddr stands where an SSH identity has the client's address
// and key fingerprint: it marks what the console ran (audit events say
// "via": "console").
const consoleClientAddr = "console"

// consoleCommands are the commands the console may run. Those that bind a
// terminal or a key (watch streams to a terminal; login, logout and
// console manage SSH keys and sign-ins) stay SSH-only, as does anything
// added to the command interface later until it is listed here.
var consoleCommands = map[string]bool{
	"whoami": true, "hosts": true,
	"requests": true, "approve": true, "deny": true,
	"grants": true, "revoke": true,
	"exceptions": true,
	"sessions":   true, "kill": true,
}

// CommandError is a command the console ran and the gateway refused. Its
// text is the one line the SSH user would have read on stderr.
type CommandError struct {
	Line     string // "warden: ...", as on stderr
	Status   int    // the SSH exit status: 1 refused, 2 usage error
	internal bool
}

func (e *CommandError) Error() string { return e.Line }

// ExitStatus is the status `ssh gw ...` would have exited with.
func (e *CommandError) ExitStatus() int { return e.Status }

// Internal reports an internal failure (the database, say), whose line
// says only that; the cause is in the log and the audit event.
func (e *CommandError) Internal() bool { return e.internal }

// RunCommand runs one command of the SSH command interface as user, as if
// they had typed `ssh gw ARGS...`, and returns what it printed on stdout
// (console.Commands). The user is looked up in the policy in force at this
// moment: one removed since they signed in to the console is refused. A
// refusal is a *CommandError and leaves the same command.refused event as
// over SSH.
func (s *Server) RunCommand(ctx context.Context, user string, args []string) ([]byte, error) {
	line := quoteArgs(args)
	u := s.Policy().User(user)
	if u == nil {
		s.auditRefusal(ctx, "command.refused", "", user, truncate(line, 256),
			map[string]any{"reason": "user no longer in policy", "via": "console"})
		return nil, &CommandError{Line: "warden: your account is no longer known", Status: 1}
	}
	// The identity the SSH path builds after authentication, with the
	// console in place of the key and the client's address.
	ident := identity{user: u, fingerprint: consoleClientAddr, clientAddr: consoleClientAddr}
	cl, err := s.parseCommandLine(line)
	switch {
	case err != nil:
	case cl.name == "" || !consoleCommands[cl.name]:
		err = fmt.Errorf("%w: %q is not available in the console; run it over ssh", errUsage, truncate(cl.name, 64))
	}
	if err == nil {
		var out bytes.Buffer
		e := &cmdEnv{s: s, ident: ident, out: &out, json: cl.json}
		if err = cl.cmd.run(ctx, e, cl.args); err == nil {
			return out.Bytes(), nil
		}
	}
	msg, status := s.commandRefusal(ctx, ident, line, err, cl.cmd.usage)
	var ue *userError
	internal := !errors.Is(err, errUsage) && (!errors.As(err, &ue) || strings.HasPrefix(ue.msg, "internal error"))
	if internal {
		s.log.Error("console command failed", "user", user, "command", truncate(line, 256), "err", err)
	}
	return nil, &CommandError{Line: msg, Status: int(status), internal: internal}
}

// quoteArgs joins args into the line an SSH client would send, each word
// single-quoted, so that parseCommandLine splits it back into exactly these
// words and the audit event shows what ran.
func quoteArgs(args []string) string {
	q := make([]string, len(args))
	for i, a := range args {
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:/@=+") == "" {
			q[i] = a // nothing a shell would split or expand
			continue
		}
		q[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	return strings.Join(q, " ")
}
