package gateway

import (
	"context"
	"fmt"
	"io"
	"path"
	"strings"
	"unicode"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/recorder"
)

// Command guard rails (a role's commands.deny). An exec command that
// matches is refused before it reaches the host. A command line typed in a
// shell that matches is not sent: on a terminal its submitting key is
// swallowed, the host's line is cleared and the user is told why; in a
// shell without a terminal (ssh -T, piped input, ssh host sh) the session
// ends at that line. The rebuilder (recorder.LineBuilder) decides what the
// line is and what replaces it. This is a guard rail against mistakes, not
// a sandbox: what runs inside scripts, aliases, other interpreters or
// full-screen programs, and lines built by tab completion, are not seen.

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
	if !r.pipe {
		_, _ = io.WriteString(ss.ch, fmt.Sprintf("\r\nwarden: command denied by rule %s of role %s; not sent\r\n", l.Rule, ss.adm.role.Name))
		return nil
	}
	if len(send) > 0 {
		_, _ = ss.hostCh.Write(send)
	}
	ss.setEnd(endRefused)
	return refusal("command denied by rule %s of role %s; not sent, session ended", l.Rule, ss.adm.role.Name)
}

// Shells that read a pipe. An exec command is run by the login shell on
// the host as `$SHELL -c COMMAND`; when COMMAND starts another shell that
// reads its commands from standard input (`ssh host sh`, `bash -s`,
// `sudo -i`, `su -`, `exec $SHELL`), what the client sends are command
// lines, exactly as in a shell session without a terminal, so they are
// rebuilt, logged and checked the same way (see readsShellInput).

// shellNames start a shell: with no -c and no script operand it reads
// its commands from standard input.
var shellNames = map[string]bool{
	"sh": true, "bash": true, "rbash": true, "dash": true, "ash": true, "zsh": true, "rzsh": true,
	"ksh": true, "ksh93": true, "rksh": true, "mksh": true, "lksh": true, "pdksh": true, "oksh": true,
	"yash": true, "posh": true, "fish": true, "csh": true, "tcsh": true,
}

// wrappers run the command that follows their options; each maps to
// its options that take the next word as their argument.
var wrappers = map[string]map[string]bool{
	"exec": {"-a": true}, "command": nil, "builtin": nil, "nohup": nil, "time": nil, "eval": nil,
	"env":  {"-u": true, "-C": true, "-S": true, "--unset": true, "--chdir": true, "--split-string": true},
	"nice": {"-n": true, "--adjustment": true}, "setsid": nil, "busybox": nil,
	"stdbuf":  {"-i": true, "-o": true, "-e": true},
	"ionice":  {"-c": true, "-n": true, "-p": true, "-P": true, "-u": true},
	"timeout": {"-s": true, "-k": true, "--signal": true, "--kill-after": true},
	"chrt":    {"-p": true}, "taskset": {"-p": true, "-c": true},
	"sudo": {"-u": true, "-g": true, "-C": true, "-D": true, "-h": true, "-p": true, "-r": true, "-t": true, "-T": true, "-U": true,
		"--user": true, "--group": true, "--chdir": true, "--host": true, "--prompt": true, "--role": true, "--type": true},
	"doas": {"-u": true, "-C": true},
	// Reserved words after which a command starts.
	"then": nil, "do": nil, "else": nil, "!": nil, "{": nil, "if": nil, "while": nil, "until": nil,
}

// maxShellDepth bounds the nesting of `sh -c 'sh -c ...'` followed.
const maxShellDepth = 4

// readsShellInput reports whether an exec command (as the login shell
// runs it) may start a shell that reads its commands from standard input.
// The command is split into simple commands at the shell's operators, and
// the first word of each (after wrappers such as exec, env, sudo, nohup,
// and assignments) is looked at:
//   - a shell (shellNames, or a word that expands a variable, such as
//     $SHELL) reads stdin unless it has a script operand (without -s);
//     with -c its command string is read the same way, recursively;
//   - su and runuser start a shell unless given -c; sudo -s, sudo -i,
//     doas -s with no command do too; newgrp always; chroot with a
//     directory and nothing else; script unless given -c.
//
// This is a guard rail: a program that starts a shell by other means (a
// script, an interpreter's pty module) is not recognised. It errs towards
// yes: any simple command of the line that starts a shell counts (`cd /x;
// sh`, `cat | sh`), and so does a word that expands a variable in command
// position; a false yes only means that the command's input is logged
// and checked as command lines.
func readsShellInput(command string) bool { return readsShell(command, 0) }

func readsShell(command string, depth int) bool {
	if depth > maxShellDepth {
		return true // nesting this deep is no honest command: assume a shell
	}
	for _, words := range simpleCommands(command) {
		if startsShell(words, depth) {
			return true
		}
	}
	return false
}

// startsShell looks at one simple command.
func startsShell(words []string, depth int) bool {
	// Skip assignments and wrappers with their options.
	i := 0
	for i < len(words) {
		w := words[i]
		name := path.Base(w)
		switch {
		case isAssignment(w):
			i++
			continue
		case hasKey(wrappers, name):
			if (name == "sudo" || name == "doas") && shellOption(words[i+1:], wrappers[name]) {
				return true
			}
			i++
			for i < len(words) && strings.HasPrefix(words[i], "-") {
				if wrappers[name][words[i]] {
					i++
				}
				i++
			}
			if name == "timeout" && i < len(words) {
				i++ // the duration
			}
			if name == "nice" || name == "chrt" || name == "taskset" {
				for i < len(words) && isNumberish(words[i]) {
					i++
				}
			}
			continue
		}
		break
	}
	if i >= len(words) {
		return false
	}
	name, args := path.Base(words[i]), words[i+1:]
	switch {
	case shellNames[name] || strings.HasPrefix(words[i], "$"):
		return shellReadsStdin(args, depth)
	case name == "su" || name == "runuser" || name == "script":
		if cmd, ok := commandOption(args); ok {
			return readsShell(cmd, depth+1)
		}
		return true
	case name == "newgrp":
		return true
	case name == "chroot":
		operands := 0
		for _, a := range args {
			if !strings.HasPrefix(a, "-") {
				operands++
			}
		}
		return operands <= 1 || startsShell(args[1:], depth+1)
	}
	return false
}

// shellReadsStdin reads a shell's arguments.
func shellReadsStdin(args []string, depth int) bool {
	for k := 0; k < len(args); k++ {
		a := args[k]
		switch {
		case a == "-s":
			return true
		case a == "-c" || (len(a) > 1 && a[0] == '-' && a[1] != '-' && strings.ContainsRune(a, 'c')):
			if k+1 < len(args) {
				return readsShell(args[k+1], depth+1)
			}
			return false
		case a == "-o" || a == "+o" || a == "-O" || a == "+O" || a == "--rcfile" || a == "--init-file":
			k++
		case a == "-" || a == "--":
			return k+1 >= len(args)
		case !strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "+"):
			return false // a script file; its own input is data
		}
	}
	return true
}

// commandOption finds -c CMD, --command CMD or --command=CMD.
func commandOption(args []string) (string, bool) {
	for k, a := range args {
		switch {
		case a == "-c" || a == "--command" || a == "--session-command":
			if k+1 < len(args) {
				return args[k+1], true
			}
			return "", true
		case strings.HasPrefix(a, "--command="):
			return strings.TrimPrefix(a, "--command="), true
		}
	}
	return "", false
}

// shellOption reports sudo -s/-i or doas -s without a command after the
// options.
func shellOption(args []string, withArg map[string]bool) bool {
	shell := false
	for k := 0; k < len(args); k++ {
		a := args[k]
		if !strings.HasPrefix(a, "-") {
			return false // a command follows: it is looked at as one
		}
		switch {
		case a == "--shell" || a == "--login":
			shell = true
		case withArg[a]:
			k++
		case len(a) > 1 && a[1] != '-':
			// A cluster such as -iu bob: flags up to one that takes an
			// argument, which is the rest of the cluster or the next word.
			for j := 1; j < len(a); j++ {
				if a[j] == 's' || a[j] == 'i' {
					shell = true
				}
				if withArg["-"+a[j:j+1]] {
					if j == len(a)-1 {
						k++
					}
					break
				}
			}
		}
	}
	return shell
}

func hasKey(m map[string]map[string]bool, k string) bool {
	_, ok := m[k]
	return ok
}

func isAssignment(w string) bool {
	k := strings.IndexByte(w, '=')
	if k <= 0 {
		return false
	}
	for _, r := range w[:k] {
		if r != '_' && !unicode.IsLetter(r) && !unicode.IsDigit(r) {
			return false
		}
	}
	return true
}

func isNumberish(w string) bool {
	return w != "" && strings.Trim(w, "0123456789-+.,") == ""
}

// simpleCommands splits a command line into its simple commands' words,
// the way a POSIX shell splits them: quotes and backslashes are removed,
// the operators ; & | ( ) ` and newline end a command, and so do the
// $( and ${ that start a substitution. It does not expand anything.
func simpleCommands(command string) [][]string {
	var cmds [][]string
	var words []string
	var word strings.Builder
	inWord := false
	endWord := func() {
		if inWord {
			words = append(words, word.String())
			word.Reset()
			inWord = false
		}
	}
	endCmd := func() {
		endWord()
		if len(words) > 0 {
			cmds = append(cmds, words)
			words = nil
		}
	}
	for i := 0; i < len(command); i++ {
		c := command[i]
		switch {
		case c == '\\' && i+1 < len(command):
			i++
			if command[i] != '\n' {
				word.WriteByte(command[i])
				inWord = true
			}
		case c == '\'':
			k := strings.IndexByte(command[i+1:], '\'')
			if k < 0 {
				k = len(command) - i - 1
			}
			word.WriteString(command[i+1 : i+1+k])
			inWord = true
			i += k + 1
		case c == '"':
			inWord = true
			for i++; i < len(command) && command[i] != '"'; i++ {
				if command[i] == '\\' && i+1 < len(command) && strings.IndexByte("$`\"\\\n", command[i+1]) >= 0 {
					i++
				}
				word.WriteByte(command[i])
			}
		case c == '$' && i+1 < len(command) && command[i+1] == '(':
			endCmd()
			i++
		case strings.IndexByte(";&|()`\n", c) >= 0:
			endCmd()
		case c == ' ' || c == '\t':
			endWord()
		case c == '#' && !inWord:
			// A comment runs to the end of the line.
			for i < len(command) && command[i] != '\n' {
				i++
			}
			endCmd()
		default:
			word.WriteByte(c)
			inWord = true
		}
	}
	endCmd()
	return cmds
}
