package policy

import (
	"slices"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestUserDecoding(t *testing.T) {
	c := mustParse(t, fixture(
		"groups: [{name: ops}, {name: sec}]",
		"users:",
		"  - {name: alice, keys: ['$KEY1 laptop', '$KEY2 desktop'], groups: [ops, sec]}",
		"  - {name: svc_backup, groups: [ops]}", // no keys: may log in with a CA certificate
	))
	if got := []string{c.Groups[0].Name, c.Groups[1].Name}; !slices.Equal(got, []string{"ops", "sec"}) {
		t.Errorf("groups = %v", got)
	}
	alice := c.User("alice")
	if alice == nil || len(alice.Keys) != 2 || !slices.Equal(alice.Groups, []string{"ops", "sec"}) {
		t.Fatalf("alice = %+v", alice)
	}
	if ssh.FingerprintSHA256(alice.Keys[1]) != ssh.FingerprintSHA256(testKey(2)) {
		t.Error("alice's second key is not testKey(2)")
	}
	if svc := c.User("svc_backup"); svc == nil || len(svc.Keys) != 0 {
		t.Errorf("svc_backup = %+v, want a user without keys", svc)
	}
}

func TestGroupAndUserErrors(t *testing.T) {
	fp1 := ssh.FingerprintSHA256(testKey(1))
	runErrCases(t, []errCase{
		{"group without name", fixture("groups:", "  - {}"),
			[]string{`2: group has no name`}},
		{"duplicate group", fixture("groups:", "  - name: ops", "  - name: ops"),
			[]string{`3: duplicate group "ops" (hint: first defined at line 2)`}},
		{"user without name", fixture("users:", "  - keys: ['$KEY1']"),
			[]string{`2: user has no name`}},
		{"uppercase user name", fixture("users:", "  - name: Alice"),
			[]string{`2: invalid user name "Alice" (hint: names start with a lowercase letter or '_', then letters, digits, '.', '_' or '-'; at most 64 characters)`}},
		{"duplicate user", fixture("users:", "  - name: alice", "  - name: alice"),
			[]string{`3: duplicate user "alice" (hint: first defined at line 2)`}},
		{"undefined group with a near miss", fixture("groups: [{name: sysadmins}]", "users:", "  - {name: alice, groups: [sysadmin]}"),
			[]string{`3: undefined group "sysadmin" in groups (hint: did you mean "sysadmins"?)`}},
		{"undefined group", fixture("groups: [{name: sysadmins}]", "users:", "  - {name: alice, groups: [dba]}"),
			[]string{`3: undefined group "dba" in groups (hint: declare it under groups)`}},
		{"group listed twice", fixture("groups: [{name: ops}]", "users:", "  - name: alice", "    groups:", "      - ops", "      - ops"),
			[]string{`6: group "ops" listed twice in groups (hint: first listed at line 5)`}},
		{"one key on two users", fixture("users:", "  - name: alice", "    keys: ['$KEY1']", "  - name: bob", "    keys: ['$KEY1 bob@laptop']"),
			[]string{`5: key ` + fp1 + ` is listed twice (hint: first listed for user "alice" at line 3; every person needs their own key)`}},
		{"one key twice on one user", fixture("users:", "  - name: alice", "    keys:", "      - '$KEY1'", "      - '$KEY1 again'"),
			[]string{`5: key ` + fp1 + ` is listed twice (hint: first listed for user "alice" at line 4; every person needs their own key)`}},
	})
}
