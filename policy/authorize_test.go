package policy

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// host resolves a qualified host name of c, failing the test if unknown.
func host(t *testing.T, c *Config, spec string) *Host {
	t.Helper()
	h, err := c.ResolveHost(spec)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestHostSelectorMatches(t *testing.T) {
	web := &Host{Name: "web01", Labels: map[string]string{"env": "prod", "tier": "web"}}
	stage := &Host{Name: "web02", Labels: map[string]string{"env": "stage", "tier": "web"}}
	db := &Host{Name: "db01", Labels: map[string]string{"env": "prod", "tier": "db"}}
	bare := &Host{Name: "web03"}
	prod := map[string]string{"env": "prod"}
	tests := []struct {
		name string
		sel  HostSelector
		want []*Host // of web, stage, db, bare
	}{
		{"empty selector matches nothing", HostSelector{}, nil},
		{"empty lists match nothing", HostSelector{Names: []string{}, Labels: map[string]string{}}, nil},
		{"exact name", HostSelector{Names: []string{"web01"}}, []*Host{web}},
		{"glob", HostSelector{Names: []string{"db*", "web*"}}, []*Host{web, stage, db, bare}},
		{"glob class", HostSelector{Names: []string{"web0[2-9]"}}, []*Host{stage, bare}},
		{"all labels match", HostSelector{Labels: map[string]string{"env": "prod", "tier": "web"}}, []*Host{web}},
		{"one label differs", HostSelector{Labels: map[string]string{"env": "prod", "tier": "cache"}}, nil},
		{"label absent", HostSelector{Labels: map[string]string{"zone": ""}}, nil},
		{"labels only", HostSelector{Labels: prod}, []*Host{web, db}},
		// With both, a host must match both: "these names, and only the
		// prod ones", never the union.
		{"names and labels: both match", HostSelector{Names: []string{"web*"}, Labels: prod}, []*Host{web}},
		{"names and labels: name matches, labels do not", HostSelector{Names: []string{"web02"}, Labels: prod}, nil},
		{"names and labels: labels match, name does not", HostSelector{Names: []string{"app*"}, Labels: prod}, nil},
		{"names and labels: host without labels", HostSelector{Names: []string{"web03"}, Labels: prod}, nil},
		{"star and labels is labels", HostSelector{Names: []string{"*"}, Labels: prod}, []*Host{web, db}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, h := range []*Host{web, stage, db, bare} {
				if got, want := tc.sel.Matches(h), slices.Contains(tc.want, h); got != want {
					t.Errorf("Matches(%s) = %v, want %v", h.Name, got, want)
				}
			}
		})
	}
}

// TestNamesAndLabelsNeverWiden checks the selector where the gateway uses
// it: a role with names and labels gives access to their intersection only.
func TestNamesAndLabelsNeverWiden(t *testing.T) {
	c := mustParse(t, fixture(
		"groups: [{name: ops}]",
		"users: [{name: ann, keys: ['$KEY3'], groups: [ops]}]",
		"tenants:",
		"  - name: acme",
		"    hosts:",
		"      - {name: web01, address: 10.0.0.1, host_key: '$KEY1', labels: {env: prod}}",
		"      - {name: web02, address: 10.0.0.2, host_key: '$KEY1', labels: {env: stage}}",
		"      - {name: db01, address: 10.0.0.3, host_key: '$KEY2', labels: {env: prod}}",
		"roles:",
		"  - {name: r, tenant: acme, hosts: {names: ['web*'], labels: {env: prod}}, logins: [deploy], members: [ops]}",
	))
	u, r := c.User("ann"), c.Role("r")
	for spec, want := range map[string]bool{"acme/web01": true, "acme/web02": false, "acme/db01": false} {
		h := host(t, c, spec)
		if got := c.Authorize(u, "deploy", h).Standing == r; got != want {
			t.Errorf("Authorize(ann, deploy, %s) standing = %v, want %v", spec, got, want)
		}
	}
	var reach []string
	for _, a := range c.Reachable(u) {
		reach = append(reach, a.Host.Name)
	}
	if !slices.Equal(reach, []string{"web01"}) {
		t.Errorf("Reachable = %v, want [web01]", reach)
	}
	if hs := c.HostsOf(r); len(hs) != 1 || hs[0].Name != "web01" {
		t.Errorf("HostsOf = %v", hs)
	}
}

func TestRoleCovers(t *testing.T) {
	c := loadValid(t)
	tests := []struct {
		role, host, login string
		want              bool
	}{
		{"web-deploy", "acme/web01", "deploy", true},
		{"web-deploy", "acme/web01", "root", false},   // login not given
		{"web-deploy", "acme/db01", "deploy", false},  // label tier differs
		{"web-deploy", "beta/web01", "deploy", false}, // other tenant, same labels
		{"prod-root", "acme/db01", "root", true},
		{"break-glass", "acme/db01", "root", true}, // names: ["*"]
		{"beta-ops", "beta/web01", "ops", true},
		{"beta-ops", "acme/web01", "ops", false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %s@%s", tc.role, tc.login, tc.host), func(t *testing.T) {
			if got := c.Role(tc.role).Covers(host(t, c, tc.host), tc.login); got != tc.want {
				t.Errorf("Covers = %v, want %v", got, tc.want)
			}
		})
	}
	if c.Role("prod-root").Covers(nil, "root") {
		t.Error("Covers(nil host) = true")
	}
}

func TestUserInAny(t *testing.T) {
	u := &User{Name: "dave", Groups: []string{"oncall", "sysadmins"}}
	tests := []struct {
		name   string
		user   *User
		groups []string
		want   bool
	}{
		{"one shared group", u, []string{"security", "sysadmins"}, true},
		{"no shared group", u, []string{"security"}, false},
		{"no groups asked", u, nil, false},
		{"nil user", nil, []string{"oncall"}, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.user.InAny(tc.groups); got != tc.want {
				t.Errorf("InAny = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestAuthorize(t *testing.T) {
	c := loadValid(t)
	tests := []struct {
		user, login, host string
		standing          string   // role name, "" for none
		requestable       []string // role names in policy order
	}{
		{"bob", "deploy", "acme/web01", "web-deploy", nil},
		{"bob", "root", "acme/web01", "", nil},
		{"bob", "deploy", "acme/db01", "", nil},
		{"alice", "root", "acme/web01", "", []string{"prod-root"}},
		{"alice", "deploy", "acme/web01", "", nil}, // helpdesk holds web-deploy, not sysadmins
		{"dave", "root", "acme/db01", "", []string{"prod-root", "break-glass"}},
		{"dave", "ops", "beta/web01", "beta-ops", nil},
		{"carol", "root", "acme/web01", "", nil}, // approving is not being eligible
		{"frank", "root", "acme/web01", "", nil},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s as %s@%s", tc.user, tc.login, tc.host), func(t *testing.T) {
			d := c.Authorize(c.User(tc.user), tc.login, host(t, c, tc.host))
			standing := ""
			if d.Standing != nil {
				standing = d.Standing.Name
			}
			var req []string
			for _, r := range d.Requestable {
				req = append(req, r.Name)
			}
			if standing != tc.standing || !slices.Equal(req, tc.requestable) {
				t.Errorf("Authorize = standing %q, requestable %v; want %q, %v", standing, req, tc.standing, tc.requestable)
			}
		})
	}
	if d := c.Authorize(nil, "root", host(t, c, "acme/web01")); d.Standing != nil || d.Requestable != nil {
		t.Errorf("Authorize(nil user) = %+v", d)
	}
}

// A Config built by hand skips validation; Authorize must still never treat
// a privileged role as standing access.
func TestAuthorizeNeverStandsOnPrivilegedRoles(t *testing.T) {
	h := &Host{Name: "web01", Tenant: "acme"}
	sel := HostSelector{Names: []string{"web01"}}
	c := &Config{Roles: []*Role{
		{Name: "sneaky", Tenant: "acme", Hosts: sel, Logins: []string{"root"}, Privileged: true, Members: []string{"ops"}},
		{Name: "first", Tenant: "acme", Hosts: sel, Logins: []string{"root"}, Members: []string{"ops"}},
		{Name: "second", Tenant: "acme", Hosts: sel, Logins: []string{"root"}, Members: []string{"ops"}},
	}}
	d := c.Authorize(&User{Name: "u", Groups: []string{"ops"}}, "root", h)
	if d.Standing == nil || d.Standing.Name != "first" || len(d.Requestable) != 0 {
		t.Errorf("Authorize = %+v; want standing via the first non-privileged role only", d)
	}
}

func TestReachable(t *testing.T) {
	c := loadValid(t)
	tests := []struct {
		user string
		want []string // "tenant/host role logins [grant]"
	}{
		{"bob", []string{"acme/web01 web-deploy deploy"}},
		{"alice", []string{
			"acme/db01 prod-root root grant",
			"acme/web01 prod-root root grant",
			"beta/web01 beta-ops deploy,ops",
		}},
		{"dave", []string{
			"acme/db01 break-glass root grant",
			"acme/db01 prod-root root grant",
			"acme/web01 break-glass root grant",
			"acme/web01 prod-root root grant",
			"beta/web01 beta-ops deploy,ops",
		}},
		{"carol", nil},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			var got []string
			for _, a := range c.Reachable(c.User(tc.user)) {
				s := fmt.Sprintf("%s %s %s", a.Host.QualifiedName(), a.Role.Name, strings.Join(a.Logins, ","))
				if a.NeedsGrant {
					s += " grant"
				}
				got = append(got, s)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Reachable:\n got %q\nwant %q", got, tc.want)
			}
		})
	}
	if got := c.Reachable(nil); len(got) != 0 {
		t.Errorf("Reachable(nil) = %v", got)
	}
}

func TestReachableStandingSortsBeforeGrant(t *testing.T) {
	h := &Host{Name: "web01", Tenant: "acme"}
	sel := HostSelector{Names: []string{"*"}}
	c := &Config{
		Tenants: []*Tenant{{Name: "acme", Hosts: []*Host{h}}},
		Roles: []*Role{
			{Name: "a-root", Tenant: "acme", Hosts: sel, Logins: []string{"root"}, Privileged: true, Eligible: []string{"ops"}},
			{Name: "z-deploy", Tenant: "acme", Hosts: sel, Logins: []string{"deploy"}, Members: []string{"ops"}},
		},
	}
	c.index()
	got := c.Reachable(&User{Name: "u", Groups: []string{"ops"}})
	if len(got) != 2 || got[0].Role.Name != "z-deploy" || got[0].NeedsGrant || got[1].Role.Name != "a-root" || !got[1].NeedsGrant {
		t.Errorf("Reachable = %+v; want standing z-deploy before requestable a-root", got)
	}
}

func TestHostsOf(t *testing.T) {
	cfg := loadValid(t)
	for _, r := range cfg.Roles {
		for _, h := range cfg.HostsOf(r) {
			if h.Tenant != r.Tenant || !r.Hosts.Matches(h) {
				t.Fatalf("role %s: host %s/%s does not belong", r.Name, h.Tenant, h.Name)
			}
		}
	}
	if len(cfg.HostsOf(&Role{Name: "x", Tenant: "nosuch"})) != 0 {
		t.Fatal("hosts for an unknown tenant")
	}
}
