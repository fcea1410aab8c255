package gateway

import (
	"reflect"
	"strings"
	"testing"
)

func TestSplitArgs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  bool
	}{
		{"whoami", []string{"whoami"}, false},
		{"  hosts   --json ", []string{"hosts", "--json"}, false},
		{`request prod-root --reason "INC 4711: disk full"`, []string{"request", "prod-root", "--reason", "INC 4711: disk full"}, false},
		{`deny 3 --reason 'not now'`, []string{"deny", "3", "--reason", "not now"}, false},
		{`a\ b c`, []string{"a b", "c"}, false},
		{`say "quote \" inside"`, []string{"say", `quote " inside`}, false},
		{`empty ""`, []string{"empty", ""}, false},
		{`unterminated "x`, nil, true},
		{"", nil, false},
	} {
		got, err := splitArgs(tc.in)
		if (err != nil) != tc.err || (!tc.err && !reflect.DeepEqual(got, tc.want)) {
			t.Errorf("splitArgs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func FuzzSplitArgs(f *testing.F) {
	f.Add(`request x --reason "a b" 'c' d\ e`)
	f.Fuzz(func(t *testing.T, s string) {
		args, err := splitArgs(s)
		if err != nil {
			return
		}
		total := 0
		for _, a := range args {
			total += len(a)
		}
		if total > len(s) {
			t.Fatalf("output longer than input: %q -> %q", s, args)
		}
		// Joining quoted words and splitting again gives the same words.
		var quoted []string
		for _, a := range args {
			quoted = append(quoted, "'"+strings.ReplaceAll(a, "'", `'\''`)+"'")
		}
		again, err := splitArgs(strings.Join(quoted, " "))
		if err != nil || len(again) != len(args) {
			t.Fatalf("round trip %q -> %q (%v)", args, again, err)
		}
	})
}
