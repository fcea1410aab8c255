package gateway

import (
	"path"
	"strings"
	"unicode"
)

// Shells that read a pipe. An exec command is run by the login shell on
// the host as `$SHELL -c COMMAND`; when COMMAND starts another shell that
// reads its commands from standard input (`ssh host sh`, `bash -s`,
// `sudo -i`, `su -`, `exec $SHELL`), what the client sends are command
// lines, exactly as in a shell session without a terminal, so they are
// rebuilt, logged and checked the same way (see readsShellInput).
//
// A "no" here lets the client's input reach a shell unlogged and
// unchecked, so the decision fails closed: whatever this file cannot read
// with confidence as "no shell reads stdin" is a yes. A false yes only
// means that a command's input is logged and checked as command lines.

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
	"exec": {"-a": true}, "command": nil, "builtin": nil, "nohup": nil, "time": nil,
	"env":  {"-u": true, "-C": true, "--unset": true, "--chdir": true},
	"nice": {"-n": true, "--adjustment": true}, "setsid": nil, "busybox": nil, "toybox": nil,
	"stdbuf":  {"-i": true, "-o": true, "-e": true},
	"ionice":  {"-c": true, "-n": true, "-p": true, "-P": true, "-u": true},
	"timeout": {"-s": true, "-k": true, "--signal": true, "--kill-after": true},
	"chrt":    {"-p": true}, "taskset": {"-p": true, "-c": true},
	"sudo": {"-u": true, "-g": true, "-C": true, "-D": true, "-h": true, "-p": true, "-r": true, "-t": true, "-T": true, "-U": true,
		"--user": true, "--group": true, "--chdir": true, "--host": true, "--prompt": true, "--role": true, "--type": true},
	"doas": {"-u": true, "-C": true},
	// Reserved words and zsh precommand modifiers after which a command
	// starts.
	"then": nil, "do": nil, "else": nil, "elif": nil, "!": nil, "{": nil, "if": nil, "while": nil, "until": nil,
	"coproc": nil, "noglob": nil, "nocorrect": nil, "-": nil,
}

// maxShellDepth bounds the nesting of `sh -c 'sh -c ...'` followed.
const maxShellDepth = 4

// readsShellInput reports whether an exec command (as the login shell
// runs it) may start a shell that reads its commands from standard input.
// The command is split into simple commands at the shell's operators,
// redirections are dropped, and each command substitution is a simple
// command of its own (simpleCommands). The first word of each (after
// wrappers such as exec, env, sudo, nohup, and assignments) is looked at:
//   - a shell (shellNames, also versioned: bash5, zsh-5.9) reads stdin
//     unless it has a script operand (without -s); an operand that is
//     stdin itself (/dev/stdin, /dev/fd/0, -) or that expands does not
//     count; with -c its command string is read the same way, recursively;
//   - a word that expands in command position ($SHELL, $(echo sh),
//     `echo sh`, /bin/s?, {sh,}) may be any shell: yes;
//   - su and runuser start a shell unless given -c; sudo -s, sudo -i,
//     doas -s with no command do too; newgrp always; chroot with a
//     directory and nothing else; script unless given -c; ssh with no
//     remote command, or one that starts a shell;
//   - `. FILE` and `source FILE` read commands from stdin when FILE is
//     stdin; eval's words are a command line; BASH_ENV and ENV set
//     anywhere may make the next shell read stdin at its start.
//
// This is a guard rail: a program that starts a shell by other means (a
// script, an interpreter's pty module, a symlink to /dev/stdin made
// beforehand) is not recognised. It errs towards yes: any simple command
// of the line that starts a shell counts (`cd /x; sh`, `cat | sh`).
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
			if setsStartupFile(w) {
				return true
			}
			i++
			continue
		case w == "function":
			i += 2 // `function NAME { ...`: the body's first word follows
			continue
		case name == "env" && envSplitsString(words[i+1:]):
			// env -S 'sh -s' splits its argument into a command line of
			// its own; not followed: assume a shell.
			return true
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
	case expands(words[i]):
		// $SHELL, $(echo sh), `echo sh`, /bin/s?: the name is only known
		// on the host, and may be any shell.
		return true
	case isShellName(name):
		return shellReadsStdin(args, depth)
	case name == "eval":
		return readsShell(strings.Join(args, " "), depth+1)
	case name == "." || name == "source":
		for _, a := range args {
			if !strings.HasPrefix(a, "-") || a == "-" {
				return expands(a) || stdinOperand(a)
			}
		}
		return false
	case name == "export" || name == "declare" || name == "typeset" || name == "readonly" || name == "local":
		for _, a := range args {
			if setsStartupFile(a) {
				return true
			}
		}
		return false
	case name == "su" || name == "runuser" || name == "script":
		if cmd, ok := commandOption(args); ok {
			return readsShell(cmd, depth+1)
		}
		return true
	case name == "newgrp":
		return true
	case name == "ssh":
		return sshReadsShell(args, depth)
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

// isShellName knows a shell by its name, also versioned or in a variant
// (bash5, bash-5.2, zsh-5.9, bash-static, sh.distrib): a renamed copy of
// a shell must not pass for a program whose input is data.
func isShellName(name string) bool {
	if shellNames[name] || shellNames[strings.TrimRight(name, "0123456789.")] {
		return true
	}
	k := strings.IndexAny(name, "-.")
	return k > 0 && shellNames[name[:k]]
}

// shellReadsStdin reads a shell's arguments.
func shellReadsStdin(args []string, depth int) bool {
	for k := 0; k < len(args); k++ {
		a := args[k]
		cluster := len(a) > 1 && a[0] == '-' && a[1] != '-'
		switch {
		case expands(a):
			return true // an option or operand known only on the host (-s, /dev/stdin)
		case a == "-s" || cluster && strings.ContainsRune(a, 's'):
			return true // -s reads stdin even with operands (bash -es x)
		case a == "-c" || cluster && strings.ContainsRune(a, 'c'):
			if k+1 < len(args) {
				return readsShell(args[k+1], depth+1)
			}
			return false
		case a == "-o" || a == "+o" || a == "-O" || a == "+O" || a == "--rcfile" || a == "--init-file" || a == "--emulate":
			k++
		case cluster:
			// -eo pipefail: each o or O takes the next word, which is
			// not a script operand.
			k += strings.Count(a, "o") + strings.Count(a, "O")
		case a == "-" || a == "--":
			if k+1 >= len(args) {
				return true
			}
			return expands(args[k+1]) || stdinOperand(args[k+1])
		case !strings.HasPrefix(a, "-") && !strings.HasPrefix(a, "+"):
			// A script file: its own input is data, unless the script
			// is that input.
			return stdinOperand(a)
		}
	}
	return true
}

// stdinOperand reports a script operand that is, or may be, standard
// input: -, /dev/stdin, /dev/fd/0, /proc/self/fd/0, and so anything
// under /dev or /proc; and, for a shell started in /dev or /dev/fd, the
// relative names stdin or 0 (any file descriptor number). No script of
// an honest command lives there.
func stdinOperand(a string) bool {
	if a == "-" {
		return true
	}
	p := path.Clean(a)
	base := path.Base(p)
	return strings.HasPrefix(p, "/dev/") || strings.HasPrefix(p, "/proc/") ||
		base == "stdin" || strings.Trim(base, "0123456789") == ""
}

// expands reports a word whose value is known only on the host: a
// parameter or a substitution (substMark holds a '$'), a glob, or a
// brace expansion. Quotes do not hide these from it: a quoted '$' or '*'
// also counts, which only errs towards yes.
func expands(w string) bool {
	if strings.ContainsAny(w, "$`*?") {
		return true
	}
	if k := strings.IndexByte(w, '['); k >= 0 && strings.IndexByte(w[k:], ']') > 0 {
		return true
	}
	k := strings.IndexByte(w, '{')
	return k >= 0 && strings.IndexByte(w[k:], '}') > 0
}

// setsStartupFile reports an assignment to BASH_ENV or ENV: a shell
// started later reads that file first, and /dev/stdin is a file.
func setsStartupFile(w string) bool {
	return strings.HasPrefix(w, "BASH_ENV=") || strings.HasPrefix(w, "ENV=")
}

// envSplitsString reports env -S/--split-string among env's options.
func envSplitsString(args []string) bool {
	for _, a := range args {
		if !strings.HasPrefix(a, "-") {
			return false
		}
		if strings.HasPrefix(a, "--split-string") || len(a) > 1 && a[1] != '-' && strings.ContainsRune(a, 'S') {
			return true
		}
	}
	return false
}

// sshArgOptions are ssh's options that take the next word (or the rest
// of their cluster) as their argument.
const sshArgOptions = "BbcDEeFIiJLlmOoPpQRSWw"

// sshReadsShell reads an ssh run on the host: with no remote command the
// remote login shell reads its input from ours, and a remote command is
// read as one of ours. -N runs nothing and -s names a subsystem.
func sshReadsShell(args []string, depth int) bool {
	for k := 0; k < len(args); k++ {
		a := args[k]
		if a == "--" {
			k++
		} else if len(a) > 1 && a[0] == '-' {
			for j := 1; j < len(a); j++ {
				if a[j] == 'N' || a[j] == 's' {
					return false
				}
				if strings.IndexByte(sshArgOptions, a[j]) >= 0 {
					if j == len(a)-1 {
						k++
					}
					break
				}
			}
			continue
		}
		if k+1 >= len(args) {
			return true // no remote command: a login shell reads our input
		}
		return readsShell(strings.Join(args[k+1:], " "), depth+1)
	}
	return false // no destination: ssh only prints its usage
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
