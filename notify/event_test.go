package notify

import (
	"strings"
	"testing"
)

func TestEscapeNeutralisesSlackControlSequences(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain text unchanged", "INC-4711 disk full", "INC-4711 disk full"},
		{"channel mention", "<!channel> wake up", "&lt;!channel&gt; wake up"},
		{"disguised link", "<https://evil.example|JIRA-1>", "&lt;https://evil.example|JIRA-1&gt;"},
		{"ampersand first", "a & <b>", "a &amp; &lt;b&gt;"},
		{"already escaped is escaped again", "&lt;", "&amp;lt;"},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Escape(tc.in); got != tc.want {
				t.Errorf("Escape(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

// unescape is Slack's decoding of the three entities.
func unescape(s string) string {
	return strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&").Replace(s)
}

func FuzzEscape(f *testing.F) {
	for _, s := range []string{"", "<!here>", "a&b", "&amp;", "<<>>&&", "\xff<"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Escape(s)
		if strings.ContainsAny(got, "<>") {
			t.Fatalf("Escape(%q) = %q still holds < or >", s, got)
		}
		if back := unescape(got); back != s {
			t.Fatalf("Slack would show %q for %q", back, s)
		}
	})
}
