package gateway

import (
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/policy"
)

const (
	reloadKey1 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHU/zy64bOe1rX1JK+fhmO2eMk5C3GuF+qRxiAXHHALg"
	reloadKey2 = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAILCp4/q9THzgG7i8z51I1fpYFsZI8jGAoRh5myv/0WSY"
)

// reloadPolicy is a policy in which alice (sysadmins) has standing root on
// acme's hosts and may request prod-root; another tenant, globex, is there
// to move hosts and roles to. Edits change one thing each.
func reloadPolicy(t *testing.T, edit func(string) string) *policy.Config {
	t.Helper()
	src := `tenants:
  - name: acme
    hosts:
      - name: web01
        address: 127.0.0.1:22
        host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
        labels: {env: prod}
      - name: app01
        address: 127.0.0.1:22
        host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
        labels: {env: prod}
  - name: globex
    hosts:
      - name: db01
        address: 127.0.0.1:22
        host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
        labels: {env: prod}
groups:
  - name: sysadmins
  - name: ops
  - name: security
users:
  - name: alice
    keys: ["` + reloadKey1 + `"]
    groups: [sysadmins, ops]
roles:
  - name: web-admin
    tenant: acme
    hosts: {labels: {env: prod}}
    logins: [root]
    members: [sysadmins]
  - name: prod-root
    tenant: acme
    hosts: {labels: {env: prod}}
    logins: [admin]
    privileged: true
    eligible: [ops]
    approvers: [security]
`
	if edit != nil {
		if edited := edit(src); edited != src {
			src = edited
		} else {
			t.Fatal("the edit changed nothing") // a case would pass for want of a change
		}
	}
	c, err := policy.Parse([]byte(src), "warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A reload ends exactly the sessions the new policy no longer entitles,
// whichever way it takes the access away; renaming the standing role
// leaves the access, and so the session, alone.
func TestEntitledUnderAReloadedPolicy(t *testing.T) {
	old := reloadPolicy(t, nil)
	key, _, _, _, err := gossh.ParseAuthorizedKey([]byte(reloadKey1))
	if err != nil {
		t.Fatal(err)
	}
	id := identity{user: old.User("alice"), fingerprint: gossh.FingerprintSHA256(key)}
	host, _ := old.ResolveHost("web01")
	standing := admission{host: host, role: old.Role("web-admin")}
	granted := admission{host: host, role: old.Role("prod-root"), grantID: 7}
	for _, c := range []struct {
		name    string
		edit    func(string) string
		grant   bool
		removed bool
	}{
		{"nothing changed", nil, false, false},
		{"nothing changed, grant", nil, true, false},
		{"left the group", func(s string) string { return strings.Replace(s, "[sysadmins, ops]", "[ops]", 1) }, false, true},
		{"key replaced", func(s string) string { return strings.Replace(s, reloadKey1, reloadKey2, 1) }, false, true},
		{"user removed", func(s string) string {
			return strings.Replace(strings.Replace(s, "  - name: alice\n", "  - name: bob\n", 1), "[sysadmins, ops]", "[ops]", 1)
		}, true, true},
		{"host renamed", func(s string) string { return strings.ReplaceAll(s, "web01", "web02") }, false, true},
		{"login dropped", func(s string) string { return strings.Replace(s, "logins: [root]", "logins: [deploy]", 1) }, false, true},
		{"standing role renamed", func(s string) string { return strings.Replace(s, "name: web-admin", "name: web-root", 1) }, false, false},
		{"no longer eligible", func(s string) string { return strings.Replace(s, "eligible: [ops]", "eligible: [security]", 1) }, true, true},
		{"host address changed", func(s string) string {
			return strings.Replace(s, "      - name: web01\n        address: 127.0.0.1:22\n", "      - name: web01\n        address: 127.0.0.2:22\n", 1)
		}, true, true},
		{"host key changed", func(s string) string {
			return strings.Replace(s, "      - name: web01\n        address: 127.0.0.1:22\n        host_key: \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\"",
				"      - name: web01\n        address: 127.0.0.1:22\n        host_key: \""+reloadKey2+"\"", 1)
		}, false, true},
		{"another host's key changed", func(s string) string {
			return strings.Replace(s, "      - name: db01\n        address: 127.0.0.1:22\n        host_key: \"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\"",
				"      - name: db01\n        address: 127.0.0.1:22\n        host_key: \""+reloadKey2+"\"", 1)
		}, false, false},
		{"host moved to another tenant", swapHosts, false, true},
		{"host moved to another tenant, grant", swapHosts, true, true},
		{"role moved to another tenant", func(s string) string {
			return strings.Replace(s, "    tenant: acme\n    hosts: {labels: {env: prod}}\n    logins: [root]", "    tenant: globex\n    hosts: {labels: {env: prod}}\n    logins: [root]", 1)
		}, false, true},
		{"role moved to another tenant, grant", func(s string) string {
			return strings.Replace(s, "    tenant: acme\n    hosts: {labels: {env: prod}}\n    logins: [admin]", "    tenant: globex\n    hosts: {labels: {env: prod}}\n    logins: [admin]", 1)
		}, true, true},
		{"role removed, grant", func(s string) string { s, _, _ = strings.Cut(s, "  - name: prod-root\n"); return s }, true, true},
		{"role no longer privileged", func(s string) string {
			return strings.Replace(strings.Replace(s, "    privileged: true\n", "", 1), "    eligible: [ops]\n    approvers: [security]\n", "    members: [ops]\n", 1)
		}, true, true},
	} {
		adm, gid := standing, int64(0)
		login := "root"
		if c.grant {
			adm, gid, login = granted, 7, "admin"
		}
		why := entitledUnder(reloadPolicy(t, c.edit), id, target{login: login, host: "web01", direct: true}, adm, gid)
		if (why != "") != c.removed {
			t.Errorf("%s: entitledUnder = %q, want removed %v", c.name, why, c.removed)
		}
	}
}

// swapHosts moves web01 to tenant globex and db01 to acme.
func swapHosts(s string) string {
	s = strings.Replace(s, "      - name: web01\n", "      - name: tmp01\n", 1)
	s = strings.Replace(s, "      - name: db01\n", "      - name: web01\n", 1)
	return strings.Replace(s, "      - name: tmp01\n", "      - name: db01\n", 1)
}

// A directory user limited to a tenant holds none of another tenant's
// roles (policy.User.MayHold), so a reload that moves her directory to
// another tenant ends her grant sessions as it ends her standing ones:
// eligibility by group alone would keep them.
func TestEntitledUnderATenantLimitedDirectory(t *testing.T) {
	key, _, _, _, err := gossh.ParseAuthorizedKey([]byte(reloadKey2))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tenant  string
		removed bool
	}{{"", false}, {"acme", false}, {"globex", true}} {
		dana := &policy.User{Name: "dana", Keys: []gossh.PublicKey{key}, Groups: []string{"sysadmins", "ops"}, Source: "scim:entra", Tenant: c.tenant}
		p, skipped := reloadPolicy(t, nil).WithUsers([]*policy.User{dana}, nil)
		if len(skipped) != 0 {
			t.Fatalf("skipped %v", skipped)
		}
		id := identity{user: p.User("dana"), fingerprint: gossh.FingerprintSHA256(key)}
		host, _ := p.ResolveHost("web01")
		for _, s := range []struct {
			adm   admission
			login string
		}{
			{admission{host: host, role: p.Role("web-admin")}, "root"},
			{admission{host: host, role: p.Role("prod-root"), grantID: 7}, "admin"},
		} {
			why := entitledUnder(p, id, target{login: s.login, host: "web01", direct: true}, s.adm, s.adm.grantID)
			if (why != "") != c.removed {
				t.Errorf("directory tenant %q, role %s: entitledUnder = %q, want removed %v", c.tenant, s.adm.role.Name, why, c.removed)
			}
		}
	}
}
