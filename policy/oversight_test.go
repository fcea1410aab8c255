package policy

import (
	"slices"
	"testing"
)

// twoTenants is a policy with clients acme and globex, an approver group
// for each, a tenant auditor of acme and the global auditors.
func twoTenants(extraGroups ...string) []byte {
	return fixture(append([]string{
		"tenants:",
		"  - {name: acme, hosts: [{name: web01, address: 10.0.0.1, host_key: '$KEY1'}]}",
		"  - {name: globex, hosts: [{name: app01, address: 10.0.0.2, host_key: '$KEY2'}]}",
		"users:",
		"  - {name: ann, groups: [acme-sec]}",
		"  - {name: gus, groups: [globex-sec]}",
		"  - {name: tia, groups: [acme-audit]}",
		"  - {name: eve, groups: [auditors]}",
		"  - {name: dan, groups: [ops]}",
		"  - {name: both, groups: [acme-sec, globex-audit]}",
		"roles:",
		"  - {name: acme-root, tenant: acme, hosts: {names: ['*']}, logins: [root], privileged: true, eligible: [ops], approvers: [acme-sec]}",
		"  - {name: globex-root, tenant: globex, hosts: {names: ['*']}, logins: [root], privileged: true, eligible: [ops], approvers: [globex-sec]}",
		"  - {name: acme-ops, tenant: acme, hosts: {names: ['*']}, logins: [ops], members: [ops]}",
		"groups:",
		"  - {name: ops}",
		"  - {name: acme-sec}",
		"  - {name: globex-sec}",
		"  - {name: auditors}",
		"  - {name: acme-audit, audits: [acme]}",
		"  - {name: globex-audit, audits: [globex]}",
	}, extraGroups...)...)
}

func TestOversightOf(t *testing.T) {
	c := mustParse(t, twoTenants())
	if g := c.Groups[4]; g.Name != "acme-audit" || !slices.Equal(g.Audits, []string{"acme"}) {
		t.Fatalf("group %+v", g)
	}
	for _, tc := range []struct {
		user string
		want Oversight
	}{
		{"ann", Oversight{Tenants: []string{"acme"}}},   // approver of an acme role only
		{"gus", Oversight{Tenants: []string{"globex"}}}, // approver of a globex role only
		{"tia", Oversight{Tenants: []string{"acme"}}},   // tenant auditor
		{"eve", Oversight{All: true}},                   // the auditors group
		{"dan", Oversight{}},                            // eligible and standing member: nothing
		{"both", Oversight{Tenants: []string{"acme", "globex"}}},
		{"nobody", Oversight{}},
	} {
		got := c.OversightOf(c.User(tc.user))
		if got.All != tc.want.All || !slices.Equal(got.Tenants, tc.want.Tenants) {
			t.Errorf("%s: %+v, want %+v", tc.user, got, tc.want)
		}
	}
	ann := c.OversightOf(c.User("ann"))
	if !ann.Covers("acme") || ann.Covers("globex") || ann.Covers("") || ann.None() {
		t.Errorf("ann's oversight %+v covers the wrong tenants", ann)
	}
	if eve := c.OversightOf(c.User("eve")); !eve.Covers("any-future-tenant") || eve.None() {
		t.Errorf("eve %+v", eve)
	}
	if !c.OversightOf(c.User("dan")).None() {
		t.Error("dan oversees something")
	}
}

func TestAuditsErrors(t *testing.T) {
	base := func(group string) []byte {
		return fixture("tenants:", "  - {name: acme, hosts: [{name: web01, address: 10.0.0.1, host_key: '$KEY1'}]}", "groups:", group)
	}
	runErrCases(t, []errCase{
		{"undefined tenant", base("  - {name: acme-audit, audits: [acmee]}"),
			[]string{`4: undefined tenant "acmee" in audits (hint: did you mean "acme"?)`}},
		{"auditors is global", base("  - {name: auditors, audits: [acme]}"),
			[]string{`4: the auditors group oversees every tenant; it takes no audits list (hint: put tenant auditors in a group of their own, e.g. acme-auditors)`}},
		{"empty list", base("  - {name: acme-audit, audits: []}"),
			[]string{`4: empty audits list (hint: list the tenants its members audit, or remove audits)`}},
		{"not a list", base("  - {name: acme-audit, audits: acme}"),
			[]string{`4: audits must be a list, not a single value`}},
		{"tenant twice", base("  - {name: acme-audit, audits: [acme, acme]}"),
			[]string{`4: tenant "acme" listed twice in audits (hint: first listed at line 4)`}},
	})
	// A null audits is the same as none.
	c := mustParse(t, base("  - {name: acme-audit, audits: }"))
	if len(c.Groups[0].Audits) != 0 {
		t.Errorf("audits %v", c.Groups[0].Audits)
	}
}
