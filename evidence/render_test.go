package evidence

import (
	"strings"
	"testing"
)

func TestMarkdownEscaping(t *testing.T) {
	for in, want := range map[string]string{
		"plain text 1.5":         "plain text 1.5",
		"a|b":                    `a\|b`,
		"<script>":               `\<script\>`,
		"[x](javascript:alert)":  `\[x\](javascript:alert)`,
		"*bold* _it_ `code` ~s~": "\\*bold\\* \\_it\\_ \\`code\\` \\~s\\~",
		"&amp; !img #h \\":       `\&amp; \!img \#h \\`,
	} {
		if got := mdEscape(in); got != want {
			t.Errorf("mdEscape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestDisplayEscapesAndShortens(t *testing.T) {
	if got := display("ls\x1b[2J\n", 40); got != `"ls\x1b[2J\n"` {
		t.Errorf("display = %q", got)
	}
	if got := display("a\u202eb", 40); strings.ContainsRune(got, '\u202e') {
		t.Errorf("display kept a bidi override: %q", got)
	}
	if got := display(strings.Repeat("x", 100), 10); got != strings.Repeat("x", 9)+"…" {
		t.Errorf("display = %q", got)
	}
	if got := display("日本語", 10); got != "日本語" {
		t.Errorf("display = %q", got)
	}
}

func TestCountsBy(t *testing.T) {
	got := countsBy(map[string]int{"expired": 2, "cancelled": 1, "zzz": 0}, "approved", "expired")
	if got != "approved 0, expired 2, cancelled 1" {
		t.Errorf("countsBy = %q", got)
	}
}

func TestCutLimitsRows(t *testing.T) {
	rows := make([][]string, maxListRows+3)
	got, more := cut(rows, "x.csv")
	if len(got) != maxListRows || more != "… and 3 more in x.csv." {
		t.Errorf("cut = %d rows, %q", len(got), more)
	}
	if got, more := cut(rows[:2], "x.csv"); len(got) != 2 || more != "" {
		t.Errorf("cut short list = %d, %q", len(got), more)
	}
}
