package gateway_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// TestAttackEnvRequestsRunNothing: a host whose AcceptEnv lets BASH_ENV
// and PROMPT_COMMAND through (a host admin's choice the gateway cannot
// see) would run them before the command and the first prompt: code that
// no deny rule checks and no command row shows. The gateway passes hosts
// only the locale, TZ and COLORTERM. The others are answered yes, as sshd
// answers names its AcceptEnv does not list (x/crypto's Setenv fails on
// no), dropped, and audited.
func TestAttackEnvRequestsRunNothing(t *testing.T) {
	b := newTestbed(t, bedOptions{hostExtra: "AcceptEnv PROMPT_COMMAND BASH_ENV TZ\n"})
	dir := t.TempDir()
	marker := filepath.Join(dir, "ran")
	script := filepath.Join(dir, "env.sh")
	if err := os.WriteFile(script, []byte("touch "+marker+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c := b.goClientAs(b.alice, "root@web01")
	s, err := c.NewSession()
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, kv := range [][2]string{{"BASH_ENV", script}, {"PROMPT_COMMAND", "touch " + marker}, {"TZ", "UTC0"}, {"LC_WARDEN_TEST", "kept"}} {
		if err := s.Setenv(kv[0], kv[1]); err != nil {
			t.Fatalf("setenv %s: %v", kv[0], err)
		}
	}
	var out bytes.Buffer
	s.Stdout = &out
	// bash -c reads BASH_ENV; an interactive bash -i runs PROMPT_COMMAND.
	if err := s.Run(`echo "tz=$TZ lc=$LC_WARDEN_TEST bash_env=${BASH_ENV-unset}"; bash -c true; echo exit | bash -i >/dev/null 2>&1`); err != nil {
		t.Fatalf("run: %v; output %q", err, out.String())
	}
	if want := "tz=UTC0 lc=kept bash_env=unset\n"; out.String() != want {
		t.Errorf("environment on the host %q, want %q", out.String(), want)
	}
	assertAbsent(t, marker)
	for _, name := range []string{"BASH_ENV", "PROMPT_COMMAND"} {
		e := b.waitEvent("request.refused", name)
		if e.Data["name"] != name || e.Data["reason"] != "variable not passed to hosts" {
			t.Errorf("event %+v", e)
		}
	}
}

// TestAttackSignalToACheckedShellIsRefused: a "signal" request (RFC 4254
// §6.9) sent on to the host would change the line its shell is editing
// (SIGINT makes readline drop it; sshd delivers signals for logins other
// than root) without a key the rebuilder sees, which would go on checking
// a line the host no longer has: "# " dropped by the signal, then
// "rm -rf /" typed, passes ^rm -rf / as the comment "# rm -rf /". So a
// shell whose lines are checked gets no signals; an exec that is not a
// shell still does.
func TestAttackSignalToACheckedShellIsRefused(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	c, _ := b.goClient("root@web01")
	for _, tc := range []struct {
		start   string
		payload []byte
		want    bool
	}{
		// The exec first: no refusal may exist yet when it is checked.
		{"exec", gossh.Marshal(struct{ C string }{"sleep 2"}), true},
		{"shell", nil, false},
	} {
		t.Run(tc.start, func(t *testing.T) {
			ch, reqs, err := c.OpenChannel("session", nil)
			if err != nil {
				t.Fatal(err)
			}
			go gossh.DiscardRequests(reqs)
			defer ch.Close()
			if ok, err := ch.SendRequest(tc.start, true, tc.payload); err != nil || !ok {
				t.Fatalf("%s: %v %v", tc.start, ok, err)
			}
			ok, err := ch.SendRequest("signal", true, gossh.Marshal(struct{ S string }{"INT"}))
			if err != nil {
				t.Fatal(err)
			}
			// For the exec, the answer is the host's: sshd refuses
			// signals to root's sessions. What matters is that the
			// gateway asked it, not that it said yes.
			if !tc.want && ok {
				t.Fatalf("signal to a checked shell answered yes")
			}
			if !tc.want {
				if e := b.waitEvent("request.refused", "lines are checked"); e.Data["request"] != "signal" {
					t.Errorf("event %+v", e)
				}
				return
			}
			for _, e := range b.events("request.refused") {
				if e.Data["request"] == "signal" {
					t.Errorf("the gateway refused a signal to an exec: %+v", e)
				}
			}
		})
	}
}
