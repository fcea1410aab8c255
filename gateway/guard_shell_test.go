package gateway

import (
	"strings"
	"testing"
)

func TestReadsShellInput(t *testing.T) {
	for cmd, want := range map[string]bool{
		// Shells that read their commands from standard input.
		"sh": true, "bash": true, "/bin/bash": true, "  zsh  ": true, "dash -i": true, "bash -s": true,
		"bash -s arg1 arg2": true, "bash -l": true, "bash --norc --noprofile": true, "sh -o vi": true,
		"bash -": true, "exec bash": true, "exec -a x bash": true, "env bash": true, "env -i PATH=/bin sh": true,
		"/usr/bin/env sh": true, "FOO=1 bash": true, "nohup sh": true, "nice -n 5 bash": true,
		"timeout 60 sh": true, "busybox sh": true, "$SHELL": true, "exec $SHELL -l": true, `"$SHELL"`: true,
		"'ba''sh'": true, `\bash`: true, "b\\ash": true, "cd /tmp && sh": true, "true; bash": true,
		"cd /; exec sh": true, "false || sh": true, "echo | sh": true, "(sh)": true, "{ sh; }": true,
		"x=$(bash)": true, "if true; then bash; fi": true, "eval bash": true,
		"sh -c bash": true, "bash -c 'exec sh -i'": true, `sh -c "sudo -i"`: true, "bash -lc 'bash -s'": true,
		"su": true, "su -": true, "su - postgres": true, "su -l root": true, "runuser -u x": true,
		"su -c 'sh'": true, "sudo -i": true, "sudo -s": true, "sudo -u bob -s": true, "sudo -iu bob": true,
		"sudo bash": true, "sudo -u bob bash": true, "sudo su -": true, "doas -s": true, "doas sh": true,
		"newgrp": true, "newgrp staff": true, "chroot /srv/jail": true, "chroot /srv/jail sh": true,
		"script -q /dev/null": true, "script -c bash": true, "python3 x; sh": true,
		"which bash": false, // errs towards yes only in command position; this names no shell there
		// Commands whose input is data.
		"ls -la": false, "cat > /tmp/x": false, "bash script.sh": false, "sh -x deploy.sh arg": false,
		"bash -c 'ls -la'": false, "sh -c 'cat > x'": false, "su -c 'id'": false, "su - root -c id": false,
		"sudo -i ls": false, "sudo ls": false, "tar xf - -C /opt/bash": false, "rsync --server -e.Lsfx . /home/bash": false,
		"grep bash /etc/passwd": false, "echo sh": false, "scp -t /tmp": false, "chroot /srv/jail ls": false,
		"script -c id": false, "# sh": false, "": false, "apt install zsh": false,
	} {
		if got := readsShellInput(cmd); got != want {
			t.Errorf("readsShellInput(%q) = %v, want %v", cmd, got, want)
		}
	}
}

// TestReadsShellInputFailsClosed: spellings that start a shell reading
// stdin, which an earlier parser took for a script operand or a command
// whose input is data. Where the command cannot be read with confidence
// the answer is yes; ordinary commands stay no.
func TestReadsShellInputFailsClosed(t *testing.T) {
	for cmd, want := range map[string]bool{
		// Redirections are not operands, with or without a space.
		"sh 2>/dev/null": true, "sh 2> /dev/null": true, "sh>x": true, "sh >x": true, "bash </dev/stdin": true,
		"bash < /dev/stdin": true, "bash <<<x": true, "sh 2>&1": true, "sh &>/dev/null": true, "sh &> log": true,
		"bash >>log 2>>err": true, "sh <&0": true, "sh >&-": true, "sh {fd}>x": true, "2>/dev/null sh": true,
		"exec sh 2>/dev/null": true, "sudo -i 2>&1": true, "cd /tmp && sh 2>/dev/null": true, "sh>/dev/null;": true,
		// Operands that are standard input.
		"bash /dev/stdin": true, "sh /dev/fd/0": true, "bash /proc/self/fd/0": true, "sh -- -": true,
		"bash -- /dev/stdin": true, "bash //dev/./stdin": true, "bash /proc/1/fd/0": true, "sh /dev/fd/3 3<&0": true,
		"cd /dev && bash stdin": true, "cd /dev/fd; sh 0": true, ". /dev/stdin": true, "source /dev/fd/0": true,
		"bash -x /dev/stdin": true, "bash -es x.sh": true, "bash -eo pipefail": true,
		// Substitutions, parameters, globs and braces in command position.
		"$(echo sh)": true, "`echo bash`": true, "$(echo sh) -s": true, "env $(echo sh)": true,
		"sudo `echo sh`": true, "exec $(echo bash)": true, "true; $(echo sh)": true, "true && `echo sh`": true,
		"echo | $(echo sh)": true, "nohup $X": true, "${SHELL}": true, "${X:-sh}": true, "$'\x73h'": true,
		`"$(echo sh)"`: true, "/bin/s?": true, "/bin/s[h]": true, "/bin/da*": true, "{sh,}": true, "{sh,-s}": true,
		"bash $SCRIPT": true, "bash <(cat)": true, "sh -c \"$(cat)\"": true, "eval \"$(cat)\"": true,
		// Shells started inside substitutions, double quotes and eval.
		"echo \"$(sh)\"": true, "echo `sh`": true, "ls `echo \\`sh\\``": true, "cat <(sh)": true,
		"echo ${x:-$(sh)}": true, "echo $((1 + $(sh)))": true, "eval 'ls; sh'": true,
		// Spellings of a shell or a wrapper that were missed.
		"bash5": true, "bash-5.2": true, "zsh-5.9": true, "if false; then :; elif sh; then :; fi": true,
		"function f { sh; }; f": true, "toybox sh": true, "env -S 'sh -s'": true,
		"BASH_ENV=/dev/stdin bash x.sh": true, "export BASH_ENV=/dev/stdin; bash x.sh": true,
		"ssh db01": true, "ssh -T db01": true, "ssh -p 22 db01 sh": true, "ssh db01 'bash -s'": true,
		// Text that cannot be followed.
		"echo 'unterminated": true, "echo $(unterminated": true, "echo \"x": true,
		strings.Repeat("$(", 100) + "ls": true,
		// Commands whose input is data stay no.
		"ls -l /tmp": false, "cat file": false, "bash script.sh": false, "sh -c 'echo hi'": false,
		"python3 x.py 2>/dev/null": false, "ls 2>&1": false, "cat >/tmp/x 2>/dev/null": false, "ls -l >out": false,
		"bash script.sh 2>/dev/null": false, "bash script.sh </dev/null": false, "sh -x deploy.sh 2>&1": false,
		"echo $(date)": false, "echo \"$HOME\"": false, "ls $HOME": false, "echo `hostname`": false,
		"x=$(date) ls": false, "diff <(ls a) <(ls b)": false, "echo ${#x}": false, "echo $((1+2))": false,
		"[ -f x ] && cat x": false, "ls *.log": false, "tar czf - /etc 2>/dev/null": false,
		"ssh -N -L 1:a:2 db01": false, "ssh db01 uptime": false, ". ./env.sh": false, "eval 'ls -l'": false,
		"sudo systemctl restart nginx 2>&1": false, "'ls' -l": false, "export PATH=/bin": false,
	} {
		if got := readsShellInput(cmd); got != want {
			t.Errorf("readsShellInput(%q) = %v, want %v", cmd, got, want)
		}
	}
}

func TestSimpleCommandsSplitsLikeAShell(t *testing.T) {
	got := simpleCommands(`a 'b c' "d \" e"\ f; g|h&&i $(j k) 2>/dev/null # l m` + "\nn>x<y 2>&1 o")
	// A substitution is a command of its own, found before the one it
	// stands in; redirections and their targets are no words.
	want := [][]string{{"a", "b c", `d " e f`}, {"g"}, {"h"}, {"j", "k"}, {"i", substMark}, {"n", "o"}}
	if len(got) != len(want) {
		t.Fatalf("got %q", got)
	}
	for i := range want {
		if strings.Join(got[i], "|") != strings.Join(want[i], "|") {
			t.Fatalf("command %d: got %q, want %q", i, got[i], want[i])
		}
	}
}

func FuzzReadsShellInput(f *testing.F) {
	for _, s := range []string{"sh", "bash -c 'exec sh -i'", `sudo -u "a b" -s`, "env -i X=1 $SHELL", "a\\", "'", `"\`, "x; $(", "su -c", "sh 2>&1 <<<x", "`a \\`b\\``", "${x:-$(y)}", "<(a) >(b)"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		readsShellInput(cmd) // must return, whatever the nesting
		for _, words := range simpleCommands(cmd) {
			if len(words) == 0 {
				t.Fatal("empty simple command")
			}
		}
	})
}
