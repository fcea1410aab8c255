package policy

import (
	"bytes"
	"testing"
)

func TestHostDecoding(t *testing.T) {
	c := mustParse(t, fixture(
		"tenants:",
		"  - name: acme",
		"    hosts:",
		"      - {name: web01, address: 10.0.0.1, host_key: '$KEY1 web01', labels: {env: prod, tier: 1}}",
		"      - {name: db01, address: 'db.internal:2200', known_hosts: ssh/known_hosts}",
		"      - {name: v6, address: '2001:db8::5', host_ca: '$KEY2'}",
		"      - {name: v6b, address: '[2001:db8::6]', host_ca: '$KEY2'}",
		"      - {name: v6p, address: '[2001:db8::7]:2222', host_ca: '$KEY2'}",
		"  - name: beta",
		"    hosts:",
		"      - {name: web01, address: 10.0.1.1, host_ca: '$KEY2'}",
	))
	if len(c.Tenants) != 2 || len(c.Tenants[0].Hosts) != 5 || len(c.Tenants[1].Hosts) != 1 {
		t.Fatalf("tenants/hosts not all decoded: %+v", c.Tenants)
	}
	hosts := c.Tenants[0].Hosts
	wantAddr := []string{"10.0.0.1:22", "db.internal:2200", "[2001:db8::5]:22", "[2001:db8::6]:22", "[2001:db8::7]:2222"}
	for i, h := range hosts {
		if h.Address != wantAddr[i] {
			t.Errorf("%s: Address = %q, want %q", h.Name, h.Address, wantAddr[i])
		}
		if h.Tenant != "acme" {
			t.Errorf("%s: Tenant = %q, want acme", h.Name, h.Tenant)
		}
	}
	web := hosts[0]
	if web.HostKey == nil || !bytes.Equal(web.HostKey.Marshal(), testKey(1).Marshal()) || web.HostCA != nil || web.KnownHosts != "" {
		t.Errorf("web01 verification = key %v, ca %v, known_hosts %q; want only the pinned key", web.HostKey, web.HostCA, web.KnownHosts)
	}
	if web.Labels["env"] != "prod" || web.Labels["tier"] != "1" || len(web.Labels) != 2 {
		t.Errorf("web01 labels = %v", web.Labels)
	}
	if want := c.Path[:len(c.Path)-len("w.yaml")] + "ssh/known_hosts"; hosts[1].KnownHosts != want {
		t.Errorf("db01 KnownHosts = %q, want %q", hosts[1].KnownHosts, want)
	}
	if hosts[2].HostCA == nil || !bytes.Equal(hosts[2].HostCA.Marshal(), testKey(2).Marshal()) {
		t.Errorf("v6 HostCA = %v, want testKey(2)", hosts[2].HostCA)
	}
	if got := c.Tenants[1].Hosts[0].QualifiedName(); got != "beta/web01" {
		t.Errorf("QualifiedName = %q", got)
	}
}

func TestTenantAndHostErrors(t *testing.T) {
	host := func(lines ...string) []byte {
		return fixture(append([]string{"tenants:", "  - name: acme", "    hosts:"}, lines...)...)
	}
	const nameHint = `(hint: names start with a letter, digit or '_', then letters, digits, '.', '_' or '-'; at most 64 characters)`
	const addrHint = `(hint: write HOST or HOST:PORT, e.g. "10.0.0.5:22" or "[2001:db8::5]:22")`
	runErrCases(t, []errCase{
		{"tenant without name", fixture("tenants:", "  - hosts: []"),
			[]string{`2: tenant has no name`}},
		{"invalid tenant name", fixture("tenants:", "  - name: ../etc"),
			[]string{`2: invalid tenant name "../etc" (hint: names start with a lowercase letter or '_', then letters, digits, '.', '_' or '-'; at most 64 characters)`}},
		{"duplicate tenant", fixture("tenants:", "  - name: acme", "  - name: acme"),
			[]string{`3: duplicate tenant "acme" (hint: first defined at line 2)`}},
		{"host without name", host("      - {address: 10.0.0.1, host_key: '$KEY1'}"),
			[]string{`4: host has no name`}},
		{"host name with a slash", host("      - {name: web/01, address: 10.0.0.1, host_key: '$KEY1'}"),
			[]string{`4: invalid host name "web/01" ` + nameHint}},
		{"host name with an at sign", host("      - {name: root@web01, address: 10.0.0.1, host_key: '$KEY1'}"),
			[]string{`4: invalid host name "root@web01" ` + nameHint}},
		{"duplicate host in a tenant", host(
			"      - {name: web01, address: 10.0.0.1, host_key: '$KEY1'}",
			"      - {name: web01, address: 10.0.0.2, host_key: '$KEY2'}"),
			[]string{`5: duplicate host "web01" (hint: first defined at line 4)`}},
		{"host without address", host("      - {name: web01, host_key: '$KEY1'}"),
			[]string{`4: host "web01" has no address (hint: e.g. address: "10.0.0.5:22")`}},
		{"port out of range", host("      - {name: web01, address: '10.0.0.1:99999', host_key: '$KEY1'}"),
			[]string{`4: bad address "10.0.0.1:99999" ` + addrHint}},
		{"port zero", host("      - {name: web01, address: '10.0.0.1:0', host_key: '$KEY1'}"),
			[]string{`4: bad address "10.0.0.1:0" ` + addrHint}},
		{"colons but not IPv6", host("      - {name: web01, address: 'web01:ssh:22', host_key: '$KEY1'}"),
			[]string{`4: bad address "web01:ssh:22" ` + addrHint}},
		{"port without host", host("      - {name: web01, address: ':22', host_key: '$KEY1'}"),
			[]string{`4: bad address ":22" ` + addrHint}},
		{"space in address", host("      - {name: web01, address: 'web 01', host_key: '$KEY1'}"),
			[]string{`4: bad address "web 01" ` + addrHint}},
		{"no way to verify the host key", host("      - name: web01", "        address: 10.0.0.1"),
			[]string{`4: host "web01" has no way to verify its key (hint: ` + verifyHint + `)`}},
		{"more than one way to verify", host("      - {name: web01, address: 10.0.0.1, host_key: '$KEY1', host_ca: '$KEY2'}"),
			[]string{`4: host "web01" has more than one way to verify its key (hint: keep one of host_key, known_hosts and host_ca)`}},
		{"bad host_key is not also unverifiable", host("      - {name: web01, address: 10.0.0.1, host_key: 'ssh-ed25519 AAAA'}"),
			[]string{`4: cannot parse host_key: short read (hint: paste one line of a .pub file, e.g. "ssh-ed25519 AAAA... alice@laptop")`}},
		{"bad host_ca", host("      - {name: web01, address: 10.0.0.1, host_ca: nope}"),
			[]string{`4: cannot parse host_ca: want "TYPE BASE64 [comment]" (hint: paste one line of a .pub file, e.g. "ssh-ed25519 AAAA... alice@laptop")`}},
		{"invalid label key", host("      - {name: web01, address: 10.0.0.1, host_key: '$KEY1', labels: {'a b': x}}"),
			[]string{`4: invalid label key "a b" (hint: start with a letter, then letters, digits, '.', '_' or '-')`}},
		{"label without value", host("      - {name: web01, address: 10.0.0.1, host_key: '$KEY1', labels: {env: }}"),
			[]string{`4: label "env" has no value`}},
		{"labels must be a mapping", host("      - {name: web01, address: 10.0.0.1, host_key: '$KEY1', labels: [prod]}"),
			[]string{`4: labels must be a mapping, not a list`}},
	})
}

func TestSameHostNameInTwoTenantsIsAllowed(t *testing.T) {
	c := mustParse(t, fixture(
		"tenants:",
		"  - {name: acme, hosts: [{name: web01, address: 10.0.0.1, host_key: '$KEY1'}]}",
		"  - {name: beta, hosts: [{name: web01, address: 10.0.1.1, host_key: '$KEY2'}]}",
	))
	if len(c.Tenants) != 2 {
		t.Fatalf("tenants = %d, want 2", len(c.Tenants))
	}
}
