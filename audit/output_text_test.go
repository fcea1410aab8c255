package audit

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// cast builds an asciicast v2 text with output events of the given chunks.
func cast(chunks ...string) string {
	var b strings.Builder
	b.WriteString(`{"version":2,"width":80,"height":24,"timestamp":1,"warden":{"session_id":"x"}}` + "\n")
	for i, c := range chunks {
		ev, _ := json.Marshal([]any{float64(i) / 10, "o", c})
		b.Write(ev)
		b.WriteByte('\n')
	}
	return b.String()
}

func extract(t *testing.T, text string, max int) (string, bool, error) {
	t.Helper()
	out, trunc, err := ExtractText(strings.NewReader(text), max)
	return string(out), trunc, err
}

func TestExtractText(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []string
		want   string
	}{
		{"plain lines", []string{"hello world\r\n", "second line\r\n"}, "hello world\nsecond line\n"},
		{"colours removed", []string{"\x1b[1;31mDROP\x1b[0m \x1b[38;5;208mTABLE\x1b[m x\r\n"}, "DROP TABLE x\n"},
		{"word across events", []string{"DR", "OP TA", "BLE\r\n"}, "DROP TABLE\n"},
		{"escape across events", []string{"DROP\x1b", "[3", "1m TABLE\r\n"}, "DROP TABLE\n"},
		{"OSC title dropped", []string{"\x1b]0;secret title\x07prompt$ \x1b]2;t2\x1b\\ls\r\n"}, "prompt$ ls\n"},
		{"DCS dropped", []string{"a\x1bPq#0;2;0;0;0\x1b\\b\n"}, "ab\n"},
		{"C1 CSI and OSC", []string{"a\u009b31mb\u009dtitle\u009cc\n"}, "abc\n"},
		{"charset designation", []string{"\x1b(Bx\x1b)0y\n"}, "xy\n"},
		{"backspace correction", []string{"DROP TABEL\b\bLE\r\n"}, "DROP TABLE\n"},
		{"readline erase", []string{"abc\b \b\bX\r\n"}, "aX\n"},
		{"erase to end of line", []string{"DROP TABLEXYZ\x1b[3D\x1b[K\r\n"}, "DROP TABLE\n"},
		{"delete chars", []string{"DROPP\x1b[D\x1b[P TABLE\n"}, "DROP TABLE\n"},
		{"cursor forward pads", []string{"DROP\x1b[1CTABLE\n"}, "DROP TABLE\n"},
		{"overwritten line kept", []string{"10%\r20%\r100% done\n"}, "10%\n20%\n100% done\n"},
		{"cursor positioning splits lines", []string{"\x1b[2J\x1b[1;1Htop\x1b[2;1Hbottom"}, "top\nbottom\n"},
		{"tabs are spaces", []string{"a\tb\n"}, "a b\n"},
		{"controls dropped", []string{"a\x07\x00\x0eb\n"}, "ab\n"},
		{"unicode kept", []string{"Größe ΔΡΟΠ 表\n"}, "Größe ΔΡΟΠ 表\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, trunc, err := extract(t, cast(tc.chunks...), MaxOutputText)
			if err != nil || trunc {
				t.Fatalf("err %v, truncated %v", err, trunc)
			}
			if got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

// Input and resize events are not screen text: keystrokes may hold
// passwords typed at prompts that the host did not echo.
func TestExtractTextOutputOnly(t *testing.T) {
	text := cast("prompt: ") + `[0.5, "i", "hunter2\r"]` + "\n" + `[0.6, "r", "100x40"]` + "\n" + `[0.7, "o", "\r\nok\r\n"]` + "\n"
	got, _, err := extract(t, text, MaxOutputText)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(got, "hunter2") || got != "prompt:\nok\n" {
		t.Errorf("got %q", got)
	}
}

func TestExtractTextCap(t *testing.T) {
	line := strings.Repeat("word ", 20) + "\n"
	got, trunc, err := extract(t, cast(strings.Repeat(line, 100)), 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !trunc || len(got) > 1000 || len(got) < 900 {
		t.Errorf("truncated %v, %d bytes", trunc, len(got))
	}
	if !strings.HasSuffix(got, "\n") || strings.Contains(got, "wor\n") {
		t.Errorf("cut mid-line: %q", got[len(got)-20:])
	}
}

// A recording that stops parsing gives what came before and says why.
func TestExtractTextPartial(t *testing.T) {
	text := cast("first part\r\n") + "[1.0, \"o\", \"broken\n" + `[2.0, "o", "after"]` + "\n"
	got, _, err := extract(t, text, MaxOutputText)
	if err == nil || !strings.Contains(err.Error(), "cast line 3") {
		t.Errorf("err = %v, want the line that failed", err)
	}
	if got != "first part\n" {
		t.Errorf("got %q", got)
	}
	for _, bad := range []string{"", "not json\n", `{"version":1}` + "\n"} {
		if _, _, err := extract(t, bad, MaxOutputText); err == nil {
			t.Errorf("header %q accepted", bad)
		}
	}
	// A last line without its newline (a crash) still counts.
	got, _, err = extract(t, strings.TrimSuffix(cast("tail text"), "\n"), MaxOutputText)
	if err != nil || got != "tail text\n" {
		t.Errorf("got %q, %v", got, err)
	}
	if _, _, err := ExtractText(errReader{}, 10); err == nil {
		t.Error("read error ignored")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk gone") }

func FuzzExtractText(f *testing.F) {
	f.Add("DROP\x1b[31m TABLE\r\n\x1b]0;t\x07x\b\x1b[K")
	f.Add("\u009b\u009d\x1bP\x1b[999999999999C\x1b[@\x1b[P")
	f.Fuzz(func(t *testing.T, s string) {
		out, _, err := ExtractText(strings.NewReader(cast(s)), 4096)
		if err != nil {
			t.Fatal(err)
		}
		if len(out) > 4096 {
			t.Fatalf("%d bytes over the cap", len(out))
		}
		if strings.ContainsAny(string(out), "\x1b\x07\r\b") {
			t.Fatalf("control left in %q", out)
		}
	})
}
