package gateway_test

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/warden-gw/warden/internal/sshtest"
)

// TestAttackHostNamesOfOtherTenantsStayHidden: an acme admin probes host
// names through the user name LOGIN@HOST. The answers must not tell that
// globex exists or which hosts it has: a host of a tenant where the caller
// holds no role is refused exactly as one that does not exist, and a name
// that two tenants share means the one the caller may reach. Someone with
// roles in both is still asked to choose.
//
//	alice  sysadmins  standing root on acme/web01 only
//	frank  ops        standing root on acme/web01 and globex/web01, globex/db01
func TestAttackHostNamesOfOtherTenantsStayHidden(t *testing.T) {
	frank := newClient(t, filepath.Join(t.TempDir(), "frank"))
	b := newTestbed(t, bedOptions{
		tenants: func(h *sshtest.Host) string {
			return fmt.Sprintf("  - name: globex\n    hosts:\n      - name: web01\n        address: %q\n        host_key: %q\n      - name: db01\n        address: %q\n        host_key: %q\n",
				h.Addr, authorizedKey(h.HostKey), h.Addr, authorizedKey(h.HostKey))
		},
		extraGroups: "  - name: ops\n",
		extraUsers:  fmt.Sprintf("  - name: frank\n    keys: [%q]\n    groups: [ops]\n", authorizedKey(frank.PublicKey)),
		extraRoles: `  - name: globex-ops
    tenant: globex
    hosts: {names: [web01, db01]}
    logins: [root]
    members: [ops]
  - name: acme-ops
    tenant: acme
    hosts: {names: [web01]}
    logins: [root]
    members: [ops]
`,
	})
	frank.TrustHost("127.0.0.1:"+b.port, b.hostKey)

	for _, tc := range []struct{ probe, control string }{
		{"root@db01", "root@nosuch"},
		{"root@globex/db01", "root@nosuch/db01"},
		{"root@globex/web01", "root@acme/nosuch"},
		{"postgres@globex/db01", "postgres@nosuch"},
	} {
		_, probe, pcode := b.run(b.alice, tc.probe, "true")
		_, control, ccode := b.run(b.alice, tc.control, "true")
		want := "warden: unknown host " + tc.probe[len("root@"):] + "\n"
		if tc.probe[0] == 'p' {
			want = "warden: unknown host " + tc.probe[len("postgres@"):] + "\n"
		}
		if pcode != 1 || probe != want || ccode != 1 {
			t.Errorf("%s: %d %q (control %s: %d %q), want %q", tc.probe, pcode, probe, tc.control, ccode, control, want)
		}
	}
	// The shared name means alice's own web01.
	if out, errOut, code := b.run(b.alice, "root@web01", "echo reached"); code != 0 || out != "reached\n" {
		t.Fatalf("alice on web01: %d %q %q", code, out, errOut)
	}
	if s := b.lastSession("alice"); s.Tenant != "acme" || s.Host != "web01" {
		t.Fatalf("alice's session went to %s/%s", s.Tenant, s.Host)
	}
	// frank may reach both: he must choose, and is shown both.
	if _, errOut, code := b.run(frank, "root@web01", "true"); code != 1 ||
		errOut != "warden: host web01 exists in several tenants; use one of: acme/web01, globex/web01\n" {
		t.Fatalf("frank on web01: %d %q", code, errOut)
	}
	if out, errOut, code := b.run(frank, "root@globex/web01", "echo reached"); code != 0 || out != "reached\n" {
		t.Fatalf("frank on globex/web01: %d %q %q", code, out, errOut)
	}
	// The auditor still learns what was probed.
	b.waitEvent("session.refused", "tenant globex")
}

// TestAttackRoleNamesOfOtherTenantsStayHidden: `request ROLE` must not
// tell whether a role exists in a tenant where the caller has nothing to
// request: another client's standing role, another client's privileged
// role and a role that does not exist get the same answer.
func TestAttackRoleNamesOfOtherTenantsStayHidden(t *testing.T) {
	b := newTenantBed(t)
	answer := func(c *sshtest.Client, role string) string {
		_, errOut, code := b.run(c, "gw", "request", role, "--for", "1h", "--reason", "x")
		if code != 1 {
			t.Fatalf("request %s: status %d %q", role, code, errOut)
		}
		return errOut
	}
	for _, role := range []string{"globex-admin", "globex-root", "prod-root"} {
		if got, want := answer(b.carol, role), `warden: no role "`+role+`" that you may request`+"\n"; got != want {
			t.Errorf("carol requests %s: %q, want %q", role, got, want)
		}
	}
	if got := answer(b.carol, "nope"); got != `warden: no role "nope" that you may request`+"\n" {
		t.Errorf("carol requests nope: %q", got)
	}
	// A member of a standing role is still told it needs no request.
	if got := answer(b.alice, "globex-admin"); got != "warden: role globex-admin is standing access and needs no request\n" {
		t.Errorf("alice requests her standing role: %q", got)
	}
}
