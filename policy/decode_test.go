package policy

import "testing"

func TestYAMLStructureErrors(t *testing.T) {
	runErrCases(t, []errCase{
		{"unclosed flow list blames its opening line", fixture("listen: ':2222'", "groups: [", "users: []"),
			[]string{`2: YAML syntax: did not find expected ',' or ']'`}},
		// yaml.v3 has no context line for line 1, so it blames where it stopped.
		{"unclosed flow list on the first line blames the end", fixture("groups: [", "users: []"),
			[]string{`3: YAML syntax: did not find expected ',' or ']'`}},
		{"bad indentation", fixture("listen: ':2222'", "groups:", "  - name: a", " - name: b"),
			[]string{`4: YAML syntax: did not find expected key`}},
		{"scanner error", fixture("listen: ':2222'", "groups:", "users 2", "roles: []"),
			[]string{`3: YAML syntax: could not find expected ':'`}},
		{"unterminated quote", fixture("listen: ':2222'", `data_dir: "data`, "users: []"),
			[]string{`2: YAML syntax: found unexpected end of stream`}},
		{"syntax error without a line", []byte("listen: \x01\n"),
			[]string{` YAML syntax: control characters are not allowed`}},
		{"empty file", []byte(""),
			[]string{` policy file is empty (hint: start from testdata/policy/valid.yaml)`}},
		{"only comments", fixture("# nothing yet"),
			[]string{` policy file is empty (hint: start from testdata/policy/valid.yaml)`}},
		{"explicit null document", fixture("---", "~"),
			[]string{`2: policy file is empty (hint: start from testdata/policy/valid.yaml)`}},
		{"two documents", fixture("listen: ':1'", "---", "listen: ':2'"),
			[]string{`2: policy file holds more than one YAML document (hint: remove the '---' separator)`}},
		{"top level is a list", fixture("- listen"),
			[]string{`1: the policy must be a mapping, not a list`}},
		{"unknown key with a near miss", fixture("lisen: ':2222'"),
			[]string{`1: unknown key "lisen" in the policy (hint: did you mean "listen"?)`}},
		{"unknown key without a near miss", fixture("recording: {format: cast}"),
			[]string{`1: unknown key "format" in recording (hint: expected one of: input, on_failure)`}},
		{"duplicate key", fixture("listen: ':1'", "listen: ':2'"),
			[]string{`2: duplicate key "listen" in the policy (hint: first set at line 1)`}},
		{"complex key", fixture("? [a]", ": b"),
			[]string{`1: the policy: keys must be plain words`}},
		{"alias is refused, not followed", fixture("groups:", "  - &g {name: ops}", "  - *g"),
			[]string{`3: YAML aliases are not supported (in group) (hint: write the value out in full)`}},
		{"yes is not a boolean", fixture("recording: {input: yes}"),
			[]string{`1: input must be true or false, not "yes" (hint: write true or false)`}},
		{"quoted true is a string", fixture(`recording: {input: "true"}`),
			[]string{`1: input must be true or false, not "true" (hint: write true or false)`}},
		{"section must be a mapping", fixture("recording: [input]"),
			[]string{`1: recording must be a mapping, not a list`}},
		{"list must be a list", fixture("groups: {name: ops}"),
			[]string{`1: groups must be a list, not a mapping`}},
		{"value must be a scalar", fixture("listen: [':2222']"),
			[]string{`1: listen must be a single value, not a list`}},
	})
}

func TestNullMeansUnset(t *testing.T) {
	c := mustParse(t, fixture("listen:", "recording:", "  input: ~", "groups:", "tenants: []"))
	if c.Listen != defaultListen || !c.Recording.Input || len(c.Groups) != 0 {
		t.Errorf("nulls did not fall back to defaults: listen %q, input %v, groups %v", c.Listen, c.Recording.Input, c.Groups)
	}
}

// An empty string is not a value: each required field given as "" must be
// reported, never silently dropped or accepted as empty.
func TestEmptyStringsAreMissingValues(t *testing.T) {
	runErrCases(t, []errCase{
		{"empty tenant name", fixture(`tenants: [{name: ""}]`),
			[]string{`1: tenant has no name`}},
		{"empty host name and address", fixture(`tenants: [{name: acme, hosts: [{name: "", address: "", host_key: '$KEY1'}]}]`),
			[]string{`1: host has no name`, `1: host (unnamed) has no address (hint: e.g. address: "10.0.0.5:22")`}},
		{"empty label value", fixture(`tenants: [{name: acme, hosts: [{name: h, address: h, host_key: '$KEY1', labels: {env: ""}}]}]`),
			[]string{`1: label "env" has no value`}},
		{"empty group name", fixture(`groups: [{name: ""}]`),
			[]string{`1: group has no name`}},
		{"empty user name", fixture(`users: [{name: ''}]`),
			[]string{`1: user has no name`}},
		{"empty login in a list", rolePolicy(`  - {name: r, tenant: acme, hosts: {names: [web01]}, logins: [""], members: [ops]}`),
			[]string{`9: empty login name in logins`}},
		{"empty role tenant", rolePolicy(`  - {name: r, tenant: "", hosts: {names: [web01]}, logins: [root], members: [ops]}`),
			[]string{`9: role "r" has no tenant (hint: every role belongs to exactly one tenant)`}},
		{"empty secret_id_file", fixture("credentials:", "  vault:", "    address: http://v:8200", `    auth: {method: approle, role_id: r, secret_id_file: ""}`),
			[]string{`4: method approle needs secret_id_file (hint: the secret_id is read from a file so the policy holds no secret)`}},
	})
}
