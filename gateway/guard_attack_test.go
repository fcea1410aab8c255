package gateway

import (
	"regexp"
	"testing"

	"github.com/warden-gw/warden/policy"
)

// TestDenyRulesAreNotBlindedByInvalidUTF8: RE2 reads each invalid byte as
// U+FFFD and goes on, so a rule still matches the ASCII around it; where
// it does not match, the shell would not run the denied program either
// (the invalid byte is part of the word it reads).
func TestDenyRulesAreNotBlindedByInvalidUTF8(t *testing.T) {
	role := &policy.Role{Name: "r"}
	for _, s := range []string{`^rm -rf /`, `^shutdown\b`, `(^|;)\s*reboot`} {
		role.Commands.Deny = append(role.Commands.Deny, regexp.MustCompile(s))
		role.Commands.DenySource = append(role.Commands.DenySource, s)
	}
	for cmd, want := range map[string]string{
		"rm -rf /\xff\xfe":    `^rm -rf /`,
		"rm -rf /\xc0\xafetc": `^rm -rf /`,
		"shutdown \xff now":   `^shutdown\b`,
		"true;\xa0reboot":     "", // the shell reads "\xa0reboot", not reboot
		"echo \xff; reboot":   `(^|;)\s*reboot`,
		"\xffrm -rf /":        "", // the shell reads "\xffrm", not rm
	} {
		if got := denyRule(role, cmd); got != want {
			t.Errorf("%q: rule %q, want %q", cmd, got, want)
		}
	}
}
