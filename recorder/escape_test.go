package recorder

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// escapeAll escapes the chunks in order, as one stream, and returns the
// JSON string bodies produced for each chunk, then for the end of stream.
func escapeAll(chunks ...[]byte) []string {
	var h heldRune
	var out []string
	for _, c := range chunks {
		out = append(out, string(appendEscaped(nil, c, &h)))
	}
	if h.n > 0 {
		out = append(out, replacement)
	}
	return out
}

// decodeJSON decodes a JSON string body with encoding/json.
func decodeJSON(t testing.TB, body string) string {
	t.Helper()
	var s string
	if err := json.Unmarshal([]byte(`"`+body+`"`), &s); err != nil {
		t.Fatalf("escaped %q is not a JSON string: %v", body, err)
	}
	return s
}

func TestEscapeProducesJSON(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
	}{
		{"plain text is copied", "ls -la /tmp", "ls -la /tmp"},
		{"quote and backslash are escaped", `say "hi" \o/`, `say \"hi\" \\o/`},
		{"short escapes for common controls", "\r\n\t\b\f", `\r\n\t\b\f`},
		{"other controls use \\u00XX", "\x00\x01\x07\x1b[0m\x1f", `\u0000\u0001\u0007\u001b[0m\u001f`},
		{"DEL needs no escape", "\x7f", "\x7f"},
		{"multi-byte runes are copied", "café ☃ 𝄞", "café ☃ 𝄞"},
		{"invalid bytes become U+FFFD", "a\xffb\xc0\xafc", "a\uFFFDb\uFFFD\uFFFDc"},
		{"a broken sequence is replaced byte by byte", "\xe2\x82x", "\uFFFD\uFFFDx"},
		{"surrogates are invalid", "\xed\xa0\x80", "\uFFFD\uFFFD\uFFFD"},
		{"U+FFFD itself is kept", "\uFFFD", "\uFFFD"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := strings.Join(escapeAll([]byte(tc.in)), "")
			if got != tc.want {
				t.Fatalf("escaped %q = %q, want %q", tc.in, got, tc.want)
			}
			dec := decodeJSON(t, got)
			if utf8.ValidString(tc.in) && dec != tc.in {
				t.Fatalf("round trip of %q gave %q", tc.in, dec)
			}
		})
	}
}

func TestEscapeHoldsSplitRunes(t *testing.T) {
	in := []byte("€ 𝄞 é\x1b\"x")
	for cut := 0; cut <= len(in); cut++ {
		parts := escapeAll(in[:cut], in[cut:])
		for _, p := range parts {
			if !utf8.ValidString(decodeJSON(t, p)) {
				t.Fatalf("cut %d: part %q is not valid UTF-8", cut, p)
			}
		}
		if got := decodeJSON(t, strings.Join(parts, "")); got != string(in) {
			t.Fatalf("cut %d: got %q, want %q", cut, got, in)
		}
	}
	// Byte by byte, too.
	var chunks [][]byte
	for i := range in {
		chunks = append(chunks, in[i:i+1])
	}
	if got := decodeJSON(t, strings.Join(escapeAll(chunks...), "")); got != string(in) {
		t.Fatalf("byte by byte: got %q", got)
	}
}

func TestEscapeIncompleteRuneAtEndOfStream(t *testing.T) {
	parts := escapeAll([]byte("ok\xf0\x9f"), []byte("\x98"))
	if got := strings.Join(parts, ""); got != "ok"+replacement {
		t.Fatalf("got %q", got)
	}
}

func TestWriterRebuildsSplitOutputExactly(t *testing.T) {
	in := "prompt$ echo 日本語 — ✓\r\n\x1b[31mred\x1b[0m \"q\" \\ 𝄞\r\n"
	for cut := 1; cut < len(in); cut++ {
		w, err := Create(t.TempDir(), testHeader("sess_0123456789"), Options{Now: (&fakeClock{t: testStart, step: time.Second}).Now})
		if err != nil {
			t.Fatal(err)
		}
		// Input events between the halves must not disturb the held rune.
		for _, err := range []error{w.Output([]byte(in[:cut])), w.Input([]byte("\xc3")), w.Output([]byte(in[cut:])), w.Input([]byte("\xa9"))} {
			if err != nil {
				t.Fatal(err)
			}
		}
		mustClose(t, w)
		_, evs := readCast(t, w.Path())
		if got := concat(evs, "o"); got != in {
			t.Fatalf("cut %d: output %q, want %q", cut, got, in)
		}
		if got := concat(evs, "i"); got != "é" {
			t.Fatalf("cut %d: input %q", cut, got)
		}
	}
}

func FuzzEscape(f *testing.F) {
	f.Add([]byte("hello\r\n"), 3)
	f.Add([]byte("caf\xc3\xa9 \xe2\x98\x83"), 4)
	f.Add([]byte("\xff\xfe\xed\xa0\x80\x00\x1b\"\\"), 1)
	f.Add([]byte("\xf0\x9f\x98"), 2)
	f.Fuzz(func(t *testing.T, in []byte, cut int) {
		if len(in) == 0 {
			return
		}
		cut = (cut%len(in) + len(in)) % len(in)
		whole := escapeAll(in)
		split := escapeAll(in[:cut], in[cut:])
		var got []string
		for _, part := range split {
			s := decodeJSON(t, part)
			if !utf8.ValidString(s) {
				t.Fatalf("part %q decodes to invalid UTF-8", part)
			}
			got = append(got, s)
		}
		// Where the stream is cut must not change what it says.
		if w := decodeJSON(t, strings.Join(whole, "")); w != strings.Join(got, "") {
			t.Fatalf("split at %d: %q, whole: %q", cut, strings.Join(got, ""), w)
		}
		if utf8.Valid(in) && strings.Join(got, "") != string(in) {
			t.Fatalf("valid input %q came back as %q", in, strings.Join(got, ""))
		}
		// Repeated past two blocks, the input goes through the block
		// scan (where the CPU has one), which must agree with the
		// portable loop.
		long := bytes.Repeat(in, 200/len(in)+1)
		var hb, hp heldRune
		if b, p := appendEscapedScan(nil, long, &hb, true), appendEscapedScan(nil, long, &hp, false); !bytes.Equal(b, p) || hb != hp {
			t.Fatalf("%q repeated: block scan %q, portable %q", in, b, p)
		}
	})
}

func TestSafe8AgreesWithTable(t *testing.T) {
	word := func(b [8]byte) uint64 { return binary.LittleEndian.Uint64(b[:]) }
	for c := range 256 {
		for k := range 8 {
			b := [8]byte{'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'}
			b[k] = byte(c)
			if got := safe8(word(b)); got != jsonSafe[c] {
				t.Fatalf("byte %#x at %d: safe8 %v, table %v", c, k, got, jsonSafe[c])
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		var b [8]byte
		want := true
		for k := range b {
			b[k] = byte(rng.IntN(256))
			want = want && jsonSafe[b[k]]
		}
		if safe8(word(b)) != want {
			t.Fatalf("%q: safe8 %v, want %v", b, !want, want)
		}
	}
}

func BenchmarkEscape(b *testing.B) {
	benchEscape(b, "drwxr-xr-x  2 root root 4096 Mar 14 15:09 \x1b[01;34mcafé\x1b[0m \"q\"\r\n")
}

// benchEscape escapes 32 KiB chunks of line repeated.
func benchEscape(b *testing.B, line string) {
	chunk := bytes.Repeat([]byte(line), 32<<10/len(line)+1)[:32<<10]
	var dst []byte
	var h heldRune
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		dst = appendEscaped(dst[:0], chunk, &h)
	}
}

func TestQuoteEscapesWhatActsOnATerminal(t *testing.T) {
	for in, want := range map[string]string{
		"uptime":                   "uptime",
		"naïve 日本 'quoted' \"x\"":  "naïve 日本 'quoted' \"x\"",
		"rm -rf /\x1b[8m":          `"rm -rf /\x1b[8m"`,
		"a\tb":                     `"a\tb"`,
		"line\nnext":               `"line\nnext"`,
		"del\x7f":                  `"del\x7f"`,
		"c1 \u009b31m":             `"c1 \u009b31m"`,
		"raw c1 \x9b31m":           `"raw c1 \x9b31m"`,
		"osc \u009d52;c;eA==":      `"osc \u009d52;c;eA=="`,
		"bad \xff utf8":            `"bad \xff utf8"`,
		"rm -rf /\u202e/ cod.exe":  `"rm -rf /\u202e/ cod.exe"`,
		"\u202a\u202b\u202c\u202d": `"\u202a\u202b\u202c\u202d"`,
		"\u2066\u2067\u2068\u2069": `"\u2066\u2067\u2068\u2069"`,
		"\u200e\u200f\u061c":       `"\u200e\u200f\u061c"`,
		"zero\u200bwidth":          `"zero\u200bwidth"`,
	} {
		if got := Quote(in); got != want {
			t.Errorf("Quote(%q) = %s, want %s", in, got, want)
		}
	}
}
