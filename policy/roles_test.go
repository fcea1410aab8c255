package policy

import (
	"slices"
	"testing"
	"time"
)

// rolePolicy is a small valid policy whose roles section starts at line 9.
func rolePolicy(roleLines ...string) []byte {
	return fixture(append([]string{
		"groups: [{name: ops}, {name: sec}, {name: mgmt}, {name: oncall}]",
		"credentials: {vault: {address: 'http://vault:8200'}}",
		"tenants:",
		"  - name: acme",
		"    hosts:",
		"      - {name: web01, address: 10.0.0.1, host_key: '$KEY1', labels: {env: prod, tier: web}}",
		"      - {name: db01, address: 10.0.0.2, host_key: '$KEY2', labels: {env: prod, tier: db}}",
		"roles:",
	}, roleLines...)...)
}

func TestRoleDefaults(t *testing.T) {
	c := mustParse(t, rolePolicy(
		"  - {name: deploy, tenant: acme, hosts: {names: [web01]}, logins: [deploy], members: [ops]}",
		"  - {name: root, tenant: acme, hosts: {labels: {env: prod}}, logins: [root], privileged: true, eligible: [ops], approvers: [sec]}",
		"  - {name: bg, tenant: acme, hosts: {names: ['*']}, logins: [root], break_glass: true, eligible: [oncall], approvers: [sec, mgmt]}",
	))
	tests := []struct {
		role                    string
		privileged, breakGlass  bool
		approvals               int
		maxDuration, requestTTL time.Duration
		requireReason           bool
	}{
		{"deploy", false, false, 0, 0, 0, false},
		{"root", true, false, 1, time.Hour, 24 * time.Hour, true},
		{"bg", true, true, 2, time.Hour, 24 * time.Hour, true},
	}
	for _, tc := range tests {
		t.Run(tc.role, func(t *testing.T) {
			r := c.Role(tc.role)
			if r == nil {
				t.Fatal("role missing")
			}
			if r.Privileged != tc.privileged || r.BreakGlass != tc.breakGlass || r.Approvals != tc.approvals ||
				r.MaxDuration.Std() != tc.maxDuration || r.RequestTTL.Std() != tc.requestTTL ||
				r.RequireReason != tc.requireReason || r.RequireTicket {
				t.Errorf("got %+v", r)
			}
		})
	}
}

func TestRoleExplicitValues(t *testing.T) {
	c := mustParse(t, rolePolicy(
		"  - name: root",
		"    tenant: acme",
		"    hosts: {names: ['web*', db01], labels: {tier: web}}",
		"    logins: [root, admin]",
		"    privileged: true",
		"    eligible: [ops]",
		"    approvers: [sec, mgmt]",
		"    approvals: 2",
		"    max_duration: 4h",
		"    request_ttl: 2h",
		"    require_reason: false",
		"    require_ticket: true",
		"    deny_cooldown: 15m",
		"    commands: {deny: ['^rm -rf /', '^shutdown\\b']}",
		"  - name: bg",
		"    tenant: acme",
		"    hosts: {names: ['*']}",
		"    logins: [root]",
		"    break_glass: true",
		"    eligible: [oncall]",
		"    approvers: [sec, mgmt]",
		"    approvals: 3",
		"    max_duration: 30m",
		"    credential: {vault_kv: secret/data/breakglass/acme}",
	))
	r := c.Role("root")
	if r.DenyCooldown.Std() != 15*time.Minute {
		t.Errorf("deny_cooldown = %s, want 15m", r.DenyCooldown)
	}
	if !slices.Equal(r.Hosts.Names, []string{"web*", "db01"}) || r.Hosts.Labels["tier"] != "web" ||
		!slices.Equal(r.Logins, []string{"root", "admin"}) || !slices.Equal(r.Approvers, []string{"sec", "mgmt"}) ||
		r.Approvals != 2 || r.MaxDuration.Std() != 4*time.Hour || r.RequestTTL.Std() != 2*time.Hour ||
		r.RequireReason || !r.RequireTicket || r.Tenant != "acme" {
		t.Errorf("root = %+v", r)
	}
	if !slices.Equal(r.Commands.DenySource, []string{`^rm -rf /`, `^shutdown\b`}) || len(r.Commands.Deny) != 2 {
		t.Fatalf("commands = %+v", r.Commands)
	}
	if !r.Commands.Deny[0].MatchString("rm -rf / --no-preserve-root") || r.Commands.Deny[1].MatchString("shutdownd") {
		t.Error("deny patterns do not match as written")
	}
	bg := c.Role("bg")
	if !bg.Privileged || bg.Approvals != 3 || bg.MaxDuration.Std() != 30*time.Minute || bg.Credential.VaultKV != "secret/data/breakglass/acme" {
		t.Errorf("bg = %+v", bg)
	}
}

func TestRoleErrors(t *testing.T) {
	const (
		std  = "tenant: acme, hosts: {names: [web01]}, logins: [root]"
		priv = std + ", privileged: true, eligible: [ops], approvers: [sec]"
		bg   = std + ", break_glass: true, eligible: [oncall], approvers: [sec, mgmt]"
	)
	const jitHint = `(hint: set privileged: true for just-in-time access, or remove it)`
	// Block-style bodies for roles named on line 9; they fill lines 10-15.
	stdBlock := []string{"    tenant: acme", "    hosts: {names: [web01]}", "    logins: [root]"}
	privBlock := append(slices.Clone(stdBlock), "    privileged: true", "    eligible: [ops]", "    approvers: [sec]")
	bgBlock := append(slices.Clone(stdBlock), "    break_glass: true", "    eligible: [oncall]", "    approvers: [sec, mgmt]")
	block := func(body []string, extra ...string) []byte {
		return rolePolicy(append(append([]string{"  - name: r"}, body...), extra...)...)
	}
	runErrCases(t, []errCase{
		{"no name", rolePolicy("  - {" + std + ", members: [ops]}"),
			[]string{`9: role has no name`}},
		{"invalid name", rolePolicy("  - {name: 'prod root', " + std + ", members: [ops]}"),
			[]string{`9: invalid role name "prod root" (hint: names start with a lowercase letter or '_', then letters, digits, '.', '_' or '-'; at most 64 characters)`}},
		{"duplicate name", rolePolicy("  - {name: r, "+std+", members: [ops]}", "  - {name: r, "+std+", members: [sec]}"),
			[]string{`10: duplicate role "r" (hint: first defined at line 9)`}},
		{"no tenant", rolePolicy("  - {name: r, hosts: {names: [web01]}, logins: [root], members: [ops]}"),
			[]string{`9: role "r" has no tenant (hint: every role belongs to exactly one tenant)`}},
		{"undefined tenant", rolePolicy("  - {name: r, tenant: acmee, hosts: {names: [web01]}, logins: [root], members: [ops]}"),
			[]string{`9: undefined tenant "acmee" (hint: did you mean "acme"?)`}},
		{"no hosts", rolePolicy("  - {name: r, tenant: acme, logins: [root], members: [ops]}"),
			[]string{`9: role "r" selects no hosts (hint: e.g. hosts: {names: [web01, "db*"]} or hosts: {labels: {env: prod}})`}},
		{"empty selector", rolePolicy("  - name: r", "    tenant: acme", "    hosts: {}", "    logins: [root]", "    members: [ops]"),
			[]string{`11: role "r" selects no hosts (hint: e.g. hosts: {names: [web01, "db*"]} or hosts: {labels: {env: prod}})`}},
		{"undefined host", rolePolicy("  - {name: r, tenant: acme, hosts: {names: [web1]}, logins: [root], members: [ops]}"),
			[]string{`9: no host "web1" in tenant "acme" (hint: did you mean "web01"?)`}},
		{"glob matching nothing", rolePolicy("  - {name: r, tenant: acme, hosts: {names: ['app*']}, logins: [root], members: [ops]}"),
			[]string{`9: role "r" matches no host in tenant "acme" (hint: check the names and labels against the tenant's hosts)`}},
		{"labels matching nothing", rolePolicy("  - {name: r, tenant: acme, hosts: {labels: {env: prod, tier: cache}}, logins: [root], members: [ops]}"),
			[]string{`9: role "r" matches no host in tenant "acme" (hint: check the names and labels against the tenant's hosts)`}},
		{"names and labels with no host in common", rolePolicy("  - {name: r, tenant: acme, hosts: {names: [web01], labels: {tier: db}}, logins: [root], members: [ops]}"),
			[]string{`9: role "r" matches no host in tenant "acme" (hint: a host must match both names and labels; names alone match web01, labels alone match db01)`}},
		{"names and labels matching nothing at all", rolePolicy("  - {name: r, tenant: acme, hosts: {names: ['app*'], labels: {tier: cache}}, logins: [root], members: [ops]}"),
			[]string{`9: role "r" matches no host in tenant "acme" (hint: a host must match both names and labels; names alone match none, labels alone match none)`}},
		{"bad glob", rolePolicy("  - {name: r, tenant: acme, hosts: {names: ['[web']}, logins: [root], members: [ops]}"),
			[]string{`9: invalid host pattern "[web" (hint: host names, optionally with the globs * ? and [...]; hosts are matched within the role's tenant)`}},
		{"qualified host in a selector", rolePolicy("  - {name: r, tenant: acme, hosts: {names: [acme/web01]}, logins: [root], members: [ops]}"),
			[]string{`9: invalid host pattern "acme/web01" (hint: host names, optionally with the globs * ? and [...]; hosts are matched within the role's tenant)`}},
		{"no logins", rolePolicy("  - {name: r, tenant: acme, hosts: {names: [web01]}, members: [ops]}"),
			[]string{`9: role "r" has no logins (hint: e.g. logins: [deploy])`}},
		{"wildcard login", rolePolicy("  - {name: r, tenant: acme, hosts: {names: [web01]}, logins: ['*'], members: [ops]}"),
			[]string{`9: invalid login name "*" (hint: names start with a lowercase letter or '_', then letters, digits, '.', '_' or '-'; at most 64 characters)`}},
		{"login with an at sign", rolePolicy("  - {name: r, tenant: acme, hosts: {names: [web01]}, logins: [root@web01], members: [ops]}"),
			[]string{`9: invalid login name "root@web01" (hint: names start with a lowercase letter or '_', then letters, digits, '.', '_' or '-'; at most 64 characters)`}},
		{"standing role grants nothing", rolePolicy("  - {name: r, " + std + "}"),
			[]string{`9: role "r" grants nothing (hint: add members for standing access, or privileged: true with eligible and approvers)`}},
		{"undefined member group", rolePolicy("  - {name: r, " + std + ", members: [opps]}"),
			[]string{`9: undefined group "opps" in members (hint: did you mean "ops"?)`}},
		{"request settings on a standing role", block(stdBlock, "    members: [ops]", "    eligible: [ops]", "    max_duration: 2h"),
			[]string{`14: eligible only applies to privileged roles ` + jitHint, `15: max_duration only applies to privileged roles ` + jitHint}},
		{"privileged role with members", block(privBlock, "    members: [ops]"),
			[]string{`16: privileged role "r" cannot have members (hint: standing access would bypass requests and approvals; list the groups under eligible instead)`}},
		{"privileged role without eligible and approvers", rolePolicy("  - {name: r, " + std + ", privileged: true}"),
			[]string{
				`9: privileged role "r" has no eligible groups (hint: list the groups that may request it)`,
				`9: privileged role "r" has no approvers (hint: list the groups that may approve requests)`,
			}},
		{"undefined approver group", rolePolicy("  - {name: r, " + std + ", privileged: true, eligible: [ops], approvers: [secc]}"),
			[]string{`9: undefined group "secc" in approvers (hint: did you mean "sec"?)`}},
		{"zero approvals", rolePolicy("  - {name: r, " + priv + ", approvals: 0}"),
			[]string{`9: approvals must be at least 1`}},
		{"approvals in words", rolePolicy("  - {name: r, " + priv + ", approvals: two}"),
			[]string{`9: approvals must be a whole number, not "two"`}},
		{"bad max_duration", rolePolicy("  - {name: r, " + priv + ", max_duration: 2 hours}"),
			[]string{`9: bad duration "2 hours" for max_duration (hint: use a Go duration such as 90m or 2h)`}},
		{"bad deny_cooldown", rolePolicy("  - {name: r, " + priv + ", deny_cooldown: an hour}"),
			[]string{`9: bad duration "an hour" for deny_cooldown (hint: use a Go duration such as 30m or 1h; 0s turns the cooldown off)`}},
		{"bare number deny_cooldown", rolePolicy("  - {name: r, " + priv + ", deny_cooldown: 60}"),
			[]string{`9: bad duration "60" for deny_cooldown (hint: use a Go duration such as 30m or 1h; 0s turns the cooldown off)`}},
		{"negative deny_cooldown", rolePolicy("  - {name: r, " + priv + ", deny_cooldown: -1h}"),
			[]string{`9: deny_cooldown must not be negative, not -1h`}},
		{"deny_cooldown over 30 days", rolePolicy("  - {name: r, " + priv + ", deny_cooldown: 721h}"),
			[]string{`9: deny_cooldown is at most 720h, not 721h (hint: to keep a user from asking at all, remove them from eligible)`}},
		{"deny_cooldown as a list", rolePolicy("  - {name: r, " + priv + ", deny_cooldown: [1h]}"),
			[]string{`9: deny_cooldown must be a single value, not a list`}},
		{"deny_cooldown on a standing role", rolePolicy("  - {name: r, " + std + ", members: [ops], deny_cooldown: 1h}"),
			[]string{`9: deny_cooldown only applies to privileged roles ` + jitHint}},
		{"deny_cooldown on break-glass", rolePolicy("  - {name: r, " + bg + ", deny_cooldown: 0s}"),
			[]string{`9: break_glass denials hold until cleared; deny_cooldown does not apply (hint: remove it; an approver clears a break-glass denial with: ssh gw clear-denial ROLE --user U --reason TEXT)`}},
		{"break-glass with one approval", rolePolicy("  - {name: r, " + bg + ", approvals: 1}"),
			[]string{`9: break_glass roles need at least 2 approvals (hint: break-glass access needs two distinct approvers)`}},
		{"break-glass longer than an hour", rolePolicy("  - {name: r, " + bg + ", max_duration: 2h}"),
			[]string{`9: break_glass grants last at most 1h, not 2h0m0s (hint: set max_duration: 1h or less; a longer emergency is a new request)`}},
		{"break-glass without reason", rolePolicy("  - {name: r, " + bg + ", require_reason: false}"),
			[]string{`9: break_glass roles always require a reason (hint: the reason is the audit record of the emergency)`}},
		{"break-glass not privileged", rolePolicy("  - {name: r, " + bg + ", privileged: false}"),
			[]string{`9: break_glass roles are always privileged (hint: remove privileged: false)`}},
		{"bad deny regexp", block(privBlock, "    commands:", "      deny: ['^(rm', '^ok']"),
			[]string{"17: bad regexp in commands.deny: error parsing regexp: missing closing ): `^(rm` (hint: patterns use Go regexp (RE2) syntax; quote them with single quotes)"}},
		{"empty deny pattern", rolePolicy("  - {name: r, " + priv + ", commands: {deny: ['']}}"),
			[]string{`9: empty pattern in commands.deny`}},
		{"unknown commands key", rolePolicy("  - {name: r, " + priv + ", commands: {allow: [ls]}}"),
			[]string{`9: unknown key "allow" in commands (hint: expected one of: deny)`}},
		{"credential on a plain privileged role", block(privBlock, "    credential: {vault_kv: secret/data/x}"),
			[]string{`16: credential only applies to break_glass roles (hint: set break_glass: true, or remove it)`}},
		{"credential without vault_kv", block(bgBlock, "    credential: {}"),
			[]string{`16: credential has no vault_kv (hint: e.g. credential: {vault_kv: secret/data/breakglass/acme})`}},
		{"credential path climbing", block(bgBlock, "    credential: {vault_kv: secret/../sys/raw}"),
			[]string{`16: invalid vault_kv path "secret/../sys/raw" (hint: a Vault KV path such as secret/data/breakglass/acme)`}},
		{"credential without vault configured", fixture(
			"groups: [{name: sec}, {name: mgmt}, {name: oncall}]",
			"tenants: [{name: acme, hosts: [{name: web01, address: 10.0.0.1, host_key: '$KEY1'}]}]",
			"roles:",
			"  - {name: r, "+bg+", credential: {vault_kv: secret/data/x}}"),
			[]string{`4: credential.vault_kv needs Vault, but credentials.vault has no address (hint: add credentials.vault with its address)`}},
	})
}

func TestRoleFileTransfer(t *testing.T) {
	c := mustParse(t, rolePolicy(
		"  - {name: deploy, tenant: acme, hosts: {names: [web01]}, logins: [deploy], members: [ops]}",
		"  - {name: audit, tenant: acme, hosts: {names: [web01]}, logins: [deploy], members: [ops], file_transfer: false}",
		"  - {name: bg, tenant: acme, hosts: {names: ['*']}, logins: [root], break_glass: true, eligible: [oncall], approvers: [sec, mgmt]}",
		"  - {name: bgft, tenant: acme, hosts: {names: ['*']}, logins: [root], break_glass: true, eligible: [oncall], approvers: [sec, mgmt], file_transfer: true}",
	))
	for role, want := range map[string]bool{"deploy": true, "audit": false, "bg": false, "bgft": true} {
		if got := c.Role(role).FileTransfer; got != want {
			t.Errorf("%s: FileTransfer = %v, want %v", role, got, want)
		}
	}
	runErrCases(t, []errCase{
		{"file_transfer in words", rolePolicy("  - {name: r, tenant: acme, hosts: {names: [web01]}, logins: [root], members: [ops], file_transfer: no}"),
			[]string{`9: file_transfer must be true or false, not "no" (hint: write true or false)`}},
	})
}

func TestDenyCooldown(t *testing.T) {
	c := mustParse(t, rolePolicy(
		"  - {name: dflt, tenant: acme, hosts: {names: [web01]}, logins: [root], privileged: true, eligible: [ops], approvers: [sec]}",
		"  - {name: off, tenant: acme, hosts: {names: [web01]}, logins: [root], privileged: true, eligible: [ops], approvers: [sec], deny_cooldown: 0s}",
		"  - {name: month, tenant: acme, hosts: {names: [web01]}, logins: [root], privileged: true, eligible: [ops], approvers: [sec], deny_cooldown: 720h}",
		"  - {name: std, tenant: acme, hosts: {names: [web01]}, logins: [root], members: [ops]}",
	))
	for role, want := range map[string]time.Duration{"dflt": time.Hour, "off": 0, "month": 720 * time.Hour, "std": 0} {
		if got := c.Role(role).DenyCooldown.Std(); got != want {
			t.Errorf("%s: deny_cooldown %s, want %s", role, got, want)
		}
	}
}

func TestHostList(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{nil, "none"},
		{[]string{"a"}, "a"},
		{[]string{"a", "b", "c", "d", "e"}, "a, b, c, d, e"},
		{[]string{"a", "b", "c", "d", "e", "f", "g"}, "a, b, c, d, e and 2 more"},
	} {
		if got := hostList(tc.in); got != tc.want {
			t.Errorf("hostList(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
