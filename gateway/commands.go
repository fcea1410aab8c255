package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	gossh "golang.org/x/crypto/ssh"
)

// Warden's own command interface: `ssh -p 2222 GATEWAY COMMAND [ARGS...]`
// (CONTRACT §3). A user name without '@' selects it; what the name says does
// not matter, the key decides who the caller is.

// cmdEnv is what a command runs with.
type cmdEnv struct {
	s     *Server
	ident identity
	out   io.Writer
	json  bool
}

// command is one entry of the command interface.
type command struct {
	usage string
	help  string
	run   func(ctx context.Context, e *cmdEnv, args []string) error
}

// errUsage marks a usage error: exit status 2 and the command's usage.
var errUsage = errors.New("usage")

func (s *Server) commands() map[string]command {
	cmds := map[string]command{
		"whoami": {usage: "whoami [--json]", help: "your identity, groups, eligible roles and active grants", run: cmdWhoami},
		"hosts":  {usage: "hosts [--json]", help: "hosts and logins you may reach now, or after a request", run: cmdHosts},
		"help":   {usage: "help", help: "this list", run: cmdHelp},
	}
	cmds["clear-denial"] = clearDenialCommand // commands_cooldown.go
	for name, c := range s.jitCommands() {
		cmds[name] = c
	}
	for name, c := range s.exceptionCommands() {
		cmds[name] = c
	}
	for name, c := range s.sessionCommands() {
		cmds[name] = c
	}
	for name, c := range s.ssoCommands() { // commands_sso.go: login, logout
		cmds[name] = c
	}
	for name, c := range s.consoleCommands() { // commands_console.go: console
		cmds[name] = c
	}
	return cmds
}

// runCommand serves one command-interface channel: it waits for the exec (or
// shell, which shows help), runs the command, and exits with its status.
func (s *Server) runCommand(ctx context.Context, ident identity, name string, ch gossh.Channel, reqs <-chan *gossh.Request) {
	defer ch.Close()
	line, ok := s.awaitExec(ctx, ident, name, reqs)
	go gossh.DiscardRequests(reqs)
	if !ok {
		return
	}
	cl, err := s.parseCommandLine(line)
	status := uint32(0)
	e := &cmdEnv{s: s, ident: ident, out: ch, json: cl.json}
	switch {
	case err != nil:
		status = s.commandError(ctx, ch, ident, line, err, "")
	case cl.name == "":
		_ = cmdHelp(ctx, e, nil)
	default:
		if err := cl.cmd.run(ctx, e, cl.args); err != nil {
			status = s.commandError(ctx, ch, ident, line, err, cl.cmd.usage)
		}
	}
	_ = ch.CloseWrite()
	sendExitStatus(ch, status)
}

// commandLine is a parsed command-interface line.
type commandLine struct {
	name string // "" for an empty line (help)
	cmd  command
	args []string // after the name, without --json
	json bool
}

// parseCommandLine reads a command channel's exec line, which the client
// chooses byte for byte: its words as a POSIX shell splits them, the
// command, and --json. A failure is a usage error of one line that quotes
// at most a little of the input.
func (s *Server) parseCommandLine(line string) (commandLine, error) {
	args, err := splitArgs(line)
	if err != nil {
		return commandLine{}, fmt.Errorf("%w: %v", errUsage, err)
	}
	if len(args) == 0 {
		return commandLine{}, nil
	}
	cmd, found := s.commands()[args[0]]
	if !found {
		return commandLine{}, fmt.Errorf("%w: unknown command %q; run: ssh GATEWAY help", errUsage, truncate(args[0], 64))
	}
	cl := commandLine{name: args[0], cmd: cmd}
	cl.args, cl.json = takeFlag(args[1:], "--json")
	return cl, nil
}

// commandError reports a failed command on stderr and in the audit log.
func (s *Server) commandError(ctx context.Context, ch gossh.Channel, ident identity, line string, err error, usage string) uint32 {
	msg, status := s.commandRefusal(ctx, ident, line, err, usage)
	fmt.Fprintln(ch.Stderr(), msg)
	return status
}

// commandRefusal audits a failed command and returns the one line the
// caller sees and the exit status: the SSH channel and the console
// (console_commands.go) show the same line for the same refusal.
func (s *Server) commandRefusal(ctx context.Context, ident identity, line string, err error, usage string) (string, uint32) {
	data := map[string]any{"reason": err.Error()}
	if ident.clientAddr == consoleClientAddr {
		data["via"] = "console"
	}
	s.auditRefusal(ctx, "command.refused", "", ident.user.Name, truncate(line, 256), data)
	if errors.Is(err, errUsage) {
		msg := strings.TrimPrefix(err.Error(), "usage: ")
		if usage != "" {
			msg += " (usage: " + usage + ")"
		}
		return "warden: " + msg, 2
	}
	return userMessage(err), 1
}

// awaitExec accepts a command channel's setup requests and returns the exec
// line ("" for a shell). What the command interface does not run (a
// subsystem such as `sftp gw`, a malformed exec, any other request) is
// answered no, and, as every refusal, audited within the user's refusal
// budget: agent and X11 forwarding as forward.refused, as on a host's
// session, the rest as command.refused.
func (s *Server) awaitExec(ctx context.Context, ident identity, sshUser string, reqs <-chan *gossh.Request) (string, bool) {
	timer := time.NewTimer(s.opt.RequestTimeout)
	defer timer.Stop()
	for {
		select {
		case r, ok := <-reqs:
			if !ok {
				return "", false
			}
			switch r.Type {
			case "exec":
				var p struct{ Value string }
				if err := gossh.Unmarshal(r.Payload, &p); err != nil {
					s.refuseCommandRequest(ctx, ident, r, "exec", "malformed exec request")
					continue
				}
				_ = r.Reply(true, nil)
				return p.Value, true
			case "shell":
				_ = r.Reply(true, nil)
				return "", true
			case "pty-req", "env":
				_ = r.Reply(true, nil)
			case "auth-agent-req@openssh.com", "x11-req":
				s.refuseForward(ident, truncate(sshUser, 256), r.Type)
				_ = r.Reply(false, nil)
			case "subsystem":
				var p struct{ Value string }
				_ = gossh.Unmarshal(r.Payload, &p)
				s.refuseCommandRequest(ctx, ident, r, "subsystem "+printable(p.Value, 64),
					"the command interface runs commands, not subsystems; for sftp name a host: LOGIN@HOST@GATEWAY")
			default:
				s.refuseCommandRequest(ctx, ident, r, truncate(r.Type, 64), "request not supported by the command interface")
			}
		case <-timer.C:
			return "", false
		}
	}
}

// refuseCommandRequest answers a command channel's request no and audits
// it as command.refused (subject: what was asked), within the budget.
func (s *Server) refuseCommandRequest(ctx context.Context, ident identity, r *gossh.Request, subject, reason string) {
	if s.auditRefusal(ctx, "command.refused", "", ident.user.Name, subject, map[string]any{
		"reason": reason, "request": truncate(r.Type, 64), "client_addr": ident.clientAddr,
	}) {
		s.log.Info("command channel request refused", "user", ident.user.Name, "request", truncate(r.Type, 64), "reason", reason)
	}
	_ = r.Reply(false, nil)
}

// splitArgs splits a command line the way a POSIX shell would for words,
// single and double quotes, and backslashes; nothing is expanded.
func splitArgs(line string) ([]string, error) {
	var args []string
	var cur strings.Builder
	inWord, quote := false, byte(0)
	for i := 0; i < len(line); i++ {
		c := line[i]
		switch {
		case quote == '\'':
			if c == '\'' {
				quote = 0
			} else {
				cur.WriteByte(c)
			}
		case quote == '"':
			switch {
			case c == '"':
				quote = 0
			case c == '\\' && i+1 < len(line) && strings.IndexByte(`"\$`+"`", line[i+1]) >= 0:
				i++
				cur.WriteByte(line[i])
			default:
				cur.WriteByte(c)
			}
		case c == '\'' || c == '"':
			quote, inWord = c, true
		case c == '\\' && i+1 < len(line):
			i++
			cur.WriteByte(line[i])
			inWord = true
		case c == ' ' || c == '\t' || c == '\n':
			if inWord {
				args = append(args, cur.String())
				cur.Reset()
				inWord = false
			}
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	if quote != 0 {
		return nil, errors.New("unterminated quote")
	}
	if inWord {
		args = append(args, cur.String())
	}
	return args, nil
}

// takeFlag removes a boolean flag from args and reports whether it was there.
func takeFlag(args []string, flag string) ([]string, bool) {
	out := args[:0:0]
	found := false
	for _, a := range args {
		if a == flag {
			found = true
			continue
		}
		out = append(out, a)
	}
	return out, found
}

func noArgs(args []string) error {
	if len(args) > 0 {
		return fmt.Errorf("%w: unexpected argument %q", errUsage, truncate(args[0], 64))
	}
	return nil
}

func cmdHelp(_ context.Context, e *cmdEnv, _ []string) error {
	cmds := e.s.commands()
	names := make([]string, 0, len(cmds))
	for n := range cmds {
		names = append(names, n)
	}
	sort.Strings(names)
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "Warden commands (ssh -p PORT GATEWAY COMMAND):")
	for _, n := range names {
		fmt.Fprintf(tw, "  %s\t%s\n", cmds[n].usage, cmds[n].help)
	}
	fmt.Fprintln(tw, "To reach a host: ssh -p PORT LOGIN@HOST@GATEWAY")
	return tw.Flush()
}

type whoamiOut struct {
	User        string      `json:"user"`
	Fingerprint string      `json:"fingerprint"`
	Source      string      `json:"source"` // "yaml" or "scim:DIRECTORY"
	State       string      `json:"state"`  // "active": only active users authenticate
	Groups      []string    `json:"groups"`
	Standing    []string    `json:"standing_roles"`
	Eligible    []string    `json:"eligible_roles"`
	Grants      []grantOut  `json:"active_grants"`
	SignIns     []signInOut `json:"sign_ins,omitempty"` // commands_sso.go; with single sign-on only
}

func cmdWhoami(ctx context.Context, e *cmdEnv, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	u := e.ident.user
	w := whoamiOut{User: u.Name, Fingerprint: e.ident.fingerprint, Source: u.SourceOf(), State: "active", Groups: append([]string{}, u.Groups...),
		Standing: []string{}, Eligible: []string{}, Grants: []grantOut{}}
	if j := e.s.opt.JIT; j != nil {
		gs, err := j.Grants(ctx, u.Name, true)
		if err != nil {
			return jitError(err)
		}
		for _, g := range gs {
			w.Grants = append(w.Grants, grantOut{Grant: g, SecondsLeft: int64(g.Remaining(e.s.now()) / time.Second)})
		}
	}
	for _, r := range e.s.Policy().Roles {
		switch {
		case !r.Privileged && !r.BreakGlass && u.InAnyFor(r, r.Members):
			w.Standing = append(w.Standing, r.Name)
		case (r.Privileged || r.BreakGlass) && u.InAnyFor(r, r.Eligible):
			w.Eligible = append(w.Eligible, r.Name)
		}
	}
	w.SignIns = e.s.signIns(ctx, e.ident)
	if e.json {
		return writeJSON(e.out, w)
	}
	var grants []string
	for _, g := range w.Grants {
		grants = append(grants, fmt.Sprintf("%s (grant %d, %s left)", g.Role, g.ID, time.Duration(g.SecondsLeft)*time.Second))
	}
	fmt.Fprintf(e.out, "user:        %s\nkey:         %s\nsource:      %s (%s)\ngroups:      %s\nstanding:    %s\neligible:    %s\ngrants:      %s\n",
		w.User, w.Fingerprint, w.Source, w.State, joinOrNone(w.Groups), joinOrNone(w.Standing), joinOrNone(w.Eligible), joinOrNone(grants))
	for _, b := range w.SignIns {
		fmt.Fprintf(e.out, "signed in:   %s until %s\n", b.Fingerprint, b.ExpiresAt.UTC().Format(time.RFC3339))
	}
	return nil
}

type hostOut struct {
	Host       string   `json:"host"`
	Tenant     string   `json:"tenant"`
	Logins     []string `json:"logins"`
	Role       string   `json:"role"`
	NeedsGrant bool     `json:"needs_grant"`
	GrantID    int64    `json:"grant_id,omitempty"` // the active grant that admits it now
}

func cmdHosts(ctx context.Context, e *cmdEnv, args []string) error {
	if err := noArgs(args); err != nil {
		return err
	}
	list := []hostOut{}
	for _, a := range e.s.Policy().Reachable(e.ident.user) {
		h := hostOut{Host: a.Host.Name, Tenant: a.Host.Tenant, Logins: a.Logins, Role: a.Role.Name, NeedsGrant: a.NeedsGrant}
		if a.NeedsGrant && e.s.opt.JIT != nil {
			g, ok, err := e.s.opt.JIT.ActiveGrant(ctx, e.ident.user.Name, a.Role.Name)
			if err != nil {
				return jitError(err)
			}
			if ok {
				h.NeedsGrant, h.GrantID = false, g.ID
			}
		}
		list = append(list, h)
	}
	if e.json {
		return writeJSON(e.out, list)
	}
	tw := tabwriter.NewWriter(e.out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "TENANT\tHOST\tLOGINS\tROLE\tACCESS")
	for _, h := range list {
		access := "now"
		switch {
		case h.NeedsGrant:
			access = "after request"
		case h.GrantID != 0:
			access = fmt.Sprintf("now (grant %d)", h.GrantID)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", h.Tenant, h.Host, strings.Join(h.Logins, ","), h.Role, access)
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func joinOrNone(s []string) string {
	if len(s) == 0 {
		return "(none)"
	}
	return strings.Join(s, ", ")
}
