package policy

import (
	"errors"
	"testing"
)

func TestErrorFormat(t *testing.T) {
	tests := []struct {
		name string
		err  Error
		want string
	}{
		{"line and hint", Error{File: "w.yaml", Line: 3, Msg: "bad", Hint: "fix it"}, "w.yaml:3: bad (hint: fix it)"},
		{"line without hint", Error{File: "w.yaml", Line: 12, Msg: "bad"}, "w.yaml:12: bad"},
		{"no line when the parser gave none", Error{File: "w.yaml", Msg: "bad"}, "w.yaml: bad"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.err.Error(); got != tc.want {
				t.Errorf("Error() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestErrorListJoinsLines(t *testing.T) {
	l := ErrorList{{File: "a", Line: 1, Msg: "x"}, {File: "a", Line: 2, Msg: "y", Hint: "z"}}
	if got, want := l.Error(), "a:1: x\na:2: y (hint: z)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestParseReportsAllErrorsInLineOrder(t *testing.T) {
	// Roles are decoded after users and tenants, yet the errors come out in
	// file order, and none of the four problems hides another.
	src := fixture(
		"roles:",
		"  - {name: r, tenant: nope, hosts: {names: [x]}, logins: [root], members: [ops]}",
		"groups: [{name: ops}]",
		"users:",
		"  - {name: Bob}",
		"tenants:",
		"  - {name: acme, hosts: [{name: h, address: 10.0.0.1}]}",
		"listen: nope",
	)
	want := []string{
		`2: undefined tenant "nope" (hint: declare it under tenants)`,
		`5: invalid user name "Bob" (hint: names start with a lowercase letter or '_', then letters, digits, '.', '_' or '-'; at most 64 characters)`,
		`7: host "h" has no way to verify its key (hint: ` + verifyHint + `)`,
		`8: bad listen address "nope" (hint: write HOST:PORT, e.g. ":2222" or "127.0.0.1:8022")`,
	}
	runErrCases(t, []errCase{{"four sections", src, want}})
}

func TestAmbiguousHostErrorMessage(t *testing.T) {
	err := error(&AmbiguousHostError{Name: "web01", Choices: []string{"acme/web01", "beta/web01"}})
	want := `policy: host "web01" is ambiguous; use one of: acme/web01, beta/web01`
	if err.Error() != want {
		t.Errorf("Error() = %q, want %q", err.Error(), want)
	}
	var amb *AmbiguousHostError
	if !errors.As(err, &amb) || len(amb.Choices) != 2 {
		t.Errorf("errors.As failed or lost choices: %v", amb)
	}
}
