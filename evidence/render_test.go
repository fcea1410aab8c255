package evidence

import (
	"bytes"
	stdhtml "html"
	"strings"
	"testing"

	"github.com/yuin/goldmark"
	"github.com/yuin/goldmark/extension"
)

func TestMarkdownEscaping(t *testing.T) {
	for in, want := range map[string]string{
		"plain text 1.5":         `plain text 1\.5`,
		"a|b":                    `a\|b`,
		"<script>":               `\<script\>`,
		"[x](javascript:alert)":  `\[x\](javascript\:alert)`,
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

// autolinkBait is text an audited admin may type into a reason, a comment
// or a command to plant a link in the auditor's summary.
var autolinkBait = []string{
	"see https://evil.example/login for details",
	"HTTPS://EVIL.EXAMPLE",
	"http://evil.example",
	"ftp://evil.example/x",
	"www.evil.example",
	"WWW.evil.example/path",
	"<http://evil.example>",
	"<mailto:ceo@evil.example>",
	"mail ceo@evil.example now",
	"mailto:ceo@evil.example",
	"xmpp:ceo@evil.example",
	"[click](https://evil.example)",
	"[click][1]\n\n[1]: https://evil.example",
	"![img](https://evil.example/x.png)",
	"`https://evil.example`",
	"<a href=\"https://evil.example\">x</a>",
	"evil.example",
}

// TestMarkdownNeutralisesAutolinks renders the summary's Markdown the way
// GitHub does (CommonMark with the GFM extensions, autolinks included)
// and checks that no link, image or HTML comes out of hostile text, while
// the text itself still reads as typed.
func TestMarkdownNeutralisesAutolinks(t *testing.T) {
	gfm := goldmark.New(goldmark.WithExtensions(extension.GFM))
	for _, bait := range autolinkBait {
		v := view{Title: "t", Sections: []section{{Title: "s", Header: []string{"Reason"}, Rows: [][]string{{bait}},
			Facts: [][2]string{{"Comment", bait}}}}}
		var out bytes.Buffer
		if err := gfm.Convert(v.markdown(), &out); err != nil {
			t.Fatal(err)
		}
		html := out.String()
		for _, bad := range []string{"<a ", "<img", "<script", "<http", "<mailto"} {
			if strings.Contains(html, bad) {
				t.Errorf("%q renders with %s:\n%s", bait, bad, html)
			}
		}
		// The text survives: escaped characters render as themselves.
		if !strings.Contains(stdhtml.UnescapeString(html), strings.SplitN(bait, "\n", 2)[0]) {
			t.Errorf("%q does not read as typed:\n%s", bait, html)
		}
		page, err := v.html()
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(page, []byte("<a ")) || bytes.Contains(page, []byte("<img")) || !bytes.Contains(bytes.ToLower(page), []byte("evil")) {
			t.Errorf("%q makes a link in summary.html", bait)
		}
	}
}
