package policy

import (
	"errors"
	"os"
	"testing"
)

// FuzzParse feeds arbitrary bytes to Parse. It must never panic, must return
// either a config or an *ErrorList, and any config it accepts must obey the
// rules the gateway relies on.
func FuzzParse(f *testing.F) {
	valid, err := os.ReadFile(validPath)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add([]byte(""))
	f.Add([]byte("groups: [\n"))
	f.Add([]byte("groups:\n  - &g {name: ops}\n  - *g\n"))
	f.Add([]byte("listen: ':1'\n---\nlisten: ':2'\n"))
	f.Add(rolePolicy("  - {name: r, tenant: acme, hosts: {names: ['web*']}, logins: [root], break_glass: true, eligible: [ops], approvers: [sec]}"))
	f.Add(rolePolicy("  - {name: r, tenant: acme, hosts: {names: ['web*', db01], labels: {env: prod}}, logins: [root], privileged: true, eligible: [ops], approvers: [sec], deny_cooldown: 15m}"))
	f.Add(rolePolicy("  - {name: r, tenant: acme, hosts: {names: [db01], labels: {tier: web}}, logins: [root], members: [ops], deny_cooldown: 0s}"))
	f.Add(fixture("users:", "  - {name: a, keys: ['$KEY1'], groups: []}", "  - {name: b, keys: ['$KEY1']}"))

	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, "fuzz.yaml")
		if (c == nil) == (err == nil) {
			t.Fatalf("Parse returned config %v and error %v; want exactly one", c, err)
		}
		if err != nil {
			checkErrorList(t, err)
			return
		}
		checkInvariants(t, c)
	})
}

func checkErrorList(t *testing.T, err error) {
	var list *ErrorList
	if !errors.As(err, &list) || len(*list) == 0 {
		t.Fatalf("error %T %v is not a non-empty *ErrorList", err, err)
	}
	prev := 0
	for _, e := range *list {
		if e.File != "fuzz.yaml" || e.Line < 0 || e.Msg == "" || e.Line < prev {
			t.Fatalf("malformed or unsorted error %+v (previous line %d)", e, prev)
		}
		prev = e.Line
	}
}

func checkInvariants(t *testing.T, c *Config) {
	for _, tn := range c.Tenants {
		if !tenantName.valid(tn.Name) || c.Tenant(tn.Name) != tn {
			t.Fatalf("tenant %q invalid or not indexed", tn.Name)
		}
		for _, h := range tn.Hosts {
			ways := 0
			for _, set := range []bool{h.HostKey != nil, h.KnownHosts != "", h.HostCA != nil} {
				if set {
					ways++
				}
			}
			if !hostName.valid(h.Name) || ways != 1 || h.Tenant != tn.Name || h.Address == "" {
				t.Fatalf("host %+v accepted", h)
			}
			for k, v := range h.Labels {
				if !validLabelKey(k) || v == "" {
					t.Fatalf("label %q=%q accepted", k, v)
				}
			}
			if got, err := c.ResolveHost(h.QualifiedName()); err != nil || got != h {
				t.Fatalf("ResolveHost(%s) = %v, %v", h.QualifiedName(), got, err)
			}
		}
	}
	if a := c.Credentials.Vault.Auth; a.Method == VaultAuthAppRole && (a.RoleID == "" || a.SecretIDFile == "") {
		t.Fatalf("approle without its parts accepted: %+v", a)
	}
	for _, u := range c.Users {
		if !userName.valid(u.Name) {
			t.Fatalf("user name %q accepted", u.Name)
		}
		for _, k := range u.Keys {
			if c.UserByKey(k) != u {
				t.Fatalf("key of %s maps to another user", u.Name)
			}
		}
	}
	for _, r := range c.Roles {
		if c.Tenant(r.Tenant) == nil || len(r.Logins) == 0 {
			t.Fatalf("role %s: tenant %q, logins %v", r.Name, r.Tenant, r.Logins)
		}
		if r.Privileged && (len(r.Members) > 0 || len(r.Eligible) == 0 || len(r.Approvers) == 0 || r.Approvals < 1) {
			t.Fatalf("privileged role %+v accepted", r)
		}
		if r.BreakGlass && (!r.Privileged || r.Approvals < 2 || r.MaxDuration.Std() > breakGlassMaxDuration || !r.RequireReason) {
			t.Fatalf("break-glass role %+v accepted", r)
		}
		if r.DenyCooldown < 0 || r.DenyCooldown.Std() > maxDenyCooldown || !r.Privileged && r.DenyCooldown != 0 {
			t.Fatalf("role %s: deny_cooldown %s accepted", r.Name, r.DenyCooldown)
		}
		// A selector never widens: every host it picks passes each part given.
		for _, h := range c.HostsOf(r) {
			if len(r.Hosts.Names) > 0 && !r.Hosts.matchesName(h) || len(r.Hosts.Labels) > 0 && !r.Hosts.matchesLabels(h) {
				t.Fatalf("role %s selects %s, which fails part of %+v", r.Name, h.Name, r.Hosts)
			}
		}
		if !r.Privileged && len(r.Members) == 0 {
			t.Fatalf("standing role %s without members accepted", r.Name)
		}
	}
}
