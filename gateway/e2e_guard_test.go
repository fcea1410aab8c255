package gateway_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestDeniedExecNeverReachesHost(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	marker := filepath.Join(t.TempDir(), "shutdown-ran")
	_, errOut, code := b.run(b.alice, "root@web01", "shutdown -h now; touch "+marker)
	if code != 1 || errOut != "warden: command denied by rule ^shutdown of role web-admin\n" {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Fatal("the denied command ran on the host")
	}
	s := b.lastSession("alice")
	cmds := b.commands(s.ID)
	if len(cmds) != 1 || cmds[0].Action != "denied" || cmds[0].Rule != "^shutdown" || cmds[0].Source != "exec" {
		t.Fatalf("command log %+v", cmds)
	}
	b.waitEvent("command.denied", "^shutdown")
}

func TestDeniedShellLineIsNotSent(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	victim := filepath.Join(t.TempDir(), "victim")
	if err := os.WriteFile(victim, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	p := b.alice.StartPTY(t, b.port, "root@web01", 100, 30)
	p.Send("export PS1='PROMPT> '\r")
	p.Expect(t, `PROMPT> $`, expectWait)
	// The rule matches the whole line as typed, editing included.
	p.Send("rm -rf /tmp/nothing-here" + strings.Repeat("\x7f", len("/tmp/nothing-here")) + "/ " + victim + "\r")
	p.Expect(t, `warden: command denied by rule \^rm -rf / of role web-admin; not sent`, expectWait)
	p.Expect(t, `PROMPT> $`, expectWait)
	p.Send("echo still-here\r")
	p.Expect(t, `still-here`, expectWait)
	p.Send("exit\r")
	if _, err := p.Wait(expectWait); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(victim); err != nil {
		t.Fatal("the denied line ran on the host")
	}
	s := b.lastSession("alice")
	var denied, allowed []string
	for _, c := range b.commands(s.ID) {
		if c.Action == "denied" {
			denied = append(denied, c.Command+" | "+c.Rule)
		} else {
			allowed = append(allowed, c.Command)
		}
	}
	if len(denied) != 1 || denied[0] != "rm -rf / "+victim+" | ^rm -rf /" {
		t.Fatalf("denied %q", denied)
	}
	if !contains(allowed, "echo still-here") {
		t.Fatalf("allowed %q", allowed)
	}
}
