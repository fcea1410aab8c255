package policy

import (
	"strings"
	"testing"
)

func TestNameAlphabet(t *testing.T) {
	long := strings.Repeat("a", 64)
	tests := []struct {
		name     string
		personal bool // valid as a user, login, group, role or tenant name
		host     bool // valid as a host name
	}{
		{"root", true, true},
		{"_svc", true, true},
		{"web-01.prod_a", true, true},
		{"deployBot", true, true},
		{long, true, true},
		{long + "a", false, false},
		{"Alice", false, true},
		{"1web", false, true},
		{"", false, false},
		{"a/b", false, false},
		{"root@web01", false, false},
		{"a b", false, false},
		{"tab\there", false, false},
		{"line\n", false, false},
		{"nul\x00", false, false},
		{"-flag", false, false},
		{".hidden", false, false},
		{"..", false, false},
		{"*", false, false},
		{"caf\u00e9", false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []nameKind{tenantName, userName, groupName, roleName, loginName} {
				if got := k.valid(tc.name); got != tc.personal {
					t.Errorf("%s name %q: valid = %v, want %v", k.noun, tc.name, got, tc.personal)
				}
			}
			if got := hostName.valid(tc.name); got != tc.host {
				t.Errorf("host name %q: valid = %v, want %v", tc.name, got, tc.host)
			}
		})
	}
}

func TestLabelKeyAlphabet(t *testing.T) {
	for key, want := range map[string]bool{
		"env": true, "app.kubernetes.io-x": true, "tier_2": true,
		"": false, "1env": false, "a/b": false, "a b": false, "-x": false,
	} {
		if got := validLabelKey(key); got != want {
			t.Errorf("validLabelKey(%q) = %v, want %v", key, got, want)
		}
	}
}
