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

func TestSimpleCommandsSplitsLikeAShell(t *testing.T) {
	got := simpleCommands(`a 'b c' "d \" e"\ f; g|h&&i $(j k) # l m` + "\nn")
	want := [][]string{{"a", "b c", `d " e f`}, {"g"}, {"h"}, {"i"}, {"j", "k"}, {"n"}}
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
	for _, s := range []string{"sh", "bash -c 'exec sh -i'", `sudo -u "a b" -s`, "env -i X=1 $SHELL", "a\\", "'", `"\`, "x; $(", "su -c"} {
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
