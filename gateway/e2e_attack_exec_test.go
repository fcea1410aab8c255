package gateway_test

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gw/warden/internal/sshtest"
)

// frankBed is a testbed with frank, whose role denies exactly `id` and
// `shutdown` on web01.
func frankBed(t *testing.T) (*testbed, *sshtest.Client) {
	frank := newClient(t, filepath.Join(t.TempDir(), "frank"))
	b := newTestbed(t, bedOptions{
		extraGroups: "  - name: ops\n",
		extraUsers:  fmt.Sprintf("  - name: frank\n    keys: [%q]\n    groups: [ops]\n", authorizedKey(frank.PublicKey)),
		extraRoles: `  - name: ops-root
    tenant: acme
    hosts: {names: [web01]}
    logins: [root]
    members: [ops]
    commands: {deny: ['^id$', '^shutdown$']}
`,
	})
	return b, frank
}

// TestAttackExecNULDoesNotSlipPastDenyRules: an exec request's command is
// an SSH string, which may hold NUL bytes that OpenSSH's client never
// sends. sshd takes the command as a C string: it ignores a NUL at the end
// and drops the connection for one inside. The gateway matched deny rules
// against the whole string, so `id\x00` slipped past a rule `^id$` and
// sshd ran `id`. A command with a NUL is refused before any rule or host.
func TestAttackExecNULDoesNotSlipPastDenyRules(t *testing.T) {
	b, frank := frankBed(t)
	c := b.goClientAs(frank, "root@web01")
	if out, errOut, code := runGoErr(c, "id"); code != 1 || strings.Contains(out, "uid=") || !strings.Contains(errOut, "command denied by rule ^id$") {
		t.Fatalf("id: %d %q %q", code, out, errOut)
	}
	for _, cmd := range []string{"id\x00", "id\x00\x00", "true\x00; id"} {
		s, err := c.NewSession()
		if err != nil {
			t.Fatal(err)
		}
		var out strings.Builder
		s.Stdout = &out
		err = s.Run(cmd)
		s.Close()
		if err == nil || strings.Contains(out.String(), "uid=") {
			t.Fatalf("%q ran: %v %q", cmd, err, out.String())
		}
	}
	b.waitEvent("session.refused", "command contains a NUL byte")
	for _, s := range b.sessionsOf("frank") {
		for _, cmd := range b.commands(s.ID) {
			if strings.Contains(cmd.Command, "\x00") && cmd.Action != "denied" {
				t.Fatalf("a command with a NUL was allowed: %+v", cmd)
			}
		}
	}
}
