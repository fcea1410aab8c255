package recorder

import (
	"fmt"
	"strings"
	"testing"
)

// bashPrompt is what bash prints at a prompt when readline reads a line:
// bracketed paste on, so the line editor is known to echo.
const bashPrompt = "\x1b[?2004halice@web01:~$ "

// typeAtPrompt feeds the input chunks to a line builder sitting at a bash
// prompt and returns the texts of the lines they submitted.
func typeAtPrompt(t *testing.T, chunks ...string) []string {
	t.Helper()
	var b LineBuilder // the zero value is ready to use
	b.Output([]byte(bashPrompt))
	var got []string
	for _, c := range chunks {
		for _, l := range b.Input([]byte(c)) {
			if l.Unechoed {
				t.Fatalf("line unexpectedly unechoed at a line editor prompt")
			}
			got = append(got, l.Text)
		}
	}
	return got
}

func TestLineEditingKeys(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []string
		want   []string
	}{
		{"text submitted by CR", []string{"ls -la\r"}, []string{"ls -la"}},
		{"text submitted by LF", []string{"ls\n"}, []string{"ls"}},
		{"CRLF submits once", []string{"ls\r\npwd\r\n"}, []string{"ls", "pwd"}},
		{"CRLF split across chunks submits once", []string{"ls\r", "\npwd\r"}, []string{"ls", "pwd"}},
		{"LF after a CR that did not submit still submits", []string{"ls\r\x1b[A\n"}, []string{"ls", "ls"}},
		{"blank lines are not returned", []string{"\r", "   \t\r", "\n"}, nil},
		{"DEL erases a character", []string{"lx\x7fs\r"}, []string{"ls"}},
		{"Ctrl-H erases a character", []string{"lx\x08s\r"}, []string{"ls"}},
		{"backspace erases a whole rune", []string{"echo é€\x7f\x7fe\r"}, []string{"echo e"}},
		{"backspace on an empty line does nothing", []string{"\x7f\x7fls\r"}, []string{"ls"}},
		{"Ctrl-U kills the whole line before the cursor", []string{"rm -rf /\x15ls\r"}, []string{"ls"}},
		{"Ctrl-U keeps what is after the cursor", []string{"xxls\x02\x02\x15\r"}, []string{"ls"}},
		{"Ctrl-K kills to the end", []string{"lsxx\x02\x02\x0b\r"}, []string{"ls"}},
		{"Ctrl-W kills the previous word", []string{"ls /tmp/foo bar\x17\r"}, []string{"ls /tmp/foo "}},
		{"Ctrl-W skips blanks before the word", []string{"ls foo  \x17\r"}, []string{"ls "}},
		{"Ctrl-W words are delimited by whitespace only", []string{"cd /usr/local/bin\x17\r"}, []string{"cd "}},
		{"Ctrl-W at the start does nothing", []string{"ls\x01\x17\r"}, []string{"ls"}},
		{"Ctrl-A then typing inserts at the start", []string{"s -la\x01l\r"}, []string{"ls -la"}},
		{"Ctrl-E returns to the end", []string{"ls\x01#\x05 -l\r"}, []string{"#ls -l"}},
		{"Home and End as CSI H and F", []string{"s\x1b[Hl\x1b[F -a\r"}, []string{"ls -a"}},
		{"Home and End as CSI 1~ and 4~", []string{"s\x1b[1~l\x1b[4~x\r"}, []string{"lsx"}},
		{"Home and End as CSI 7~ and 8~", []string{"s\x1b[7~l\x1b[8~x\r"}, []string{"lsx"}},
		{"Home and End as SS3", []string{"s\x1bOHl\x1bOF!\r"}, []string{"ls!"}},
		{"Left arrow inserts at the cursor", []string{"cat fle\x1b[D\x1b[Di\r"}, []string{"cat file"}},
		{"Left and Right arrows in SS3 form", []string{"cat fle\x1bOD\x1bODi\x1bOC\x1bOCs\r"}, []string{"cat files"}},
		{"Right arrow at the end does nothing", []string{"ls\x1b[C\x1b[C -l\r"}, []string{"ls -l"}},
		{"Left arrow at the start does nothing", []string{"s\x1b[D\x1b[Dl\r"}, []string{"ls"}},
		{"Left arrow moves over a whole rune", []string{"é\x1b[Da\r"}, []string{"aé"}},
		{"Ctrl-B and Ctrl-F move the cursor", []string{"lx\x02s\x06!\r"}, []string{"lsx!"}},
		{"Delete removes the character under the cursor", []string{"lsx\x1b[D\x1b[3~\r"}, []string{"ls"}},
		{"Delete at the end does nothing", []string{"ls\x1b[3~\r"}, []string{"ls"}},
		{"Ctrl-D removes the character under the cursor", []string{"lsé\x1b[D\x04\r"}, []string{"ls"}},
		{"Ctrl-D on an empty line submits nothing", []string{"\x04"}, nil},
		{"Ctrl-D on an empty line leaves the next line alone", []string{"\x04", "ls\r"}, []string{"ls"}},
		{"Ctrl-C discards the line", []string{"rm -rf /\x03ls\r"}, []string{"ls"}},
		{"Ctrl-C then Enter submits nothing", []string{"rm -rf /\x03\r"}, nil},
		{"Tab inserts nothing", []string{"ls /et\t\r"}, []string{"ls /et"}},
		{"Alt-b moves back a word", []string{"cp a b\x1bb\x1bbx\r"}, []string{"cp xa b"}},
		{"Alt-f moves forward a word", []string{"cp a b\x01\x1bf\x1bf!\r"}, []string{"cp a! b"}},
		{"Ctrl-arrows move by word", []string{"echo one two\x1b[1;5D\x1b[1;5D\x1b[1;5Cz\r"}, []string{"echo onez two"}},
		{"Alt-d kills the next word", []string{"echo one two\x01\x1bf\x1bd\r"}, []string{"echo two"}},
		{"Alt-Backspace kills back to a word start", []string{"echo /usr/bin\x1b\x7f\r"}, []string{"echo /usr/"}},
		{"Ctrl-Y yanks the last kill", []string{"world hello\x17\x01\x19 \r"}, []string{"hello world "}},
		{"Ctrl-Y with nothing killed inserts nothing", []string{"ls\x19\r"}, []string{"ls"}},
		{"unknown CSI keys are skipped", []string{"ls\x1b[15~ \x1b[1;2A-\x1b[<0;10;5Ml\r"}, []string{"ls -l"}},
		{"unknown SS3 keys are skipped", []string{"ls\x1bOP -l\r"}, []string{"ls -l"}},
		{"unknown Alt-keys are skipped", []string{"ls\x1bx\x1b. -l\r"}, []string{"ls -l"}},
		{"Alt-Enter inserts a newline and does not submit", []string{"ls\x1b\r -l\x1b\n\r"}, []string{"ls\n -l\n"}},
		{"an overlong CSI is skipped whole", []string{"ls\x1b[" + strings.Repeat("1;", 40) + "A -l\r"}, []string{"ls -l"}},
		{"CAN cancels a sequence", []string{"ls\x1b[1\x18 -l\r"}, []string{"ls -l"}},
		{"ESC ESC starts one sequence", []string{"ls\x1b\x1b[D\x1b[Dx\r"}, []string{"xls"}},
		{"other control characters are ignored", []string{"l\x0cs\x1d\x00\r"}, []string{"ls"}},
		{"CSI split across chunks", []string{"lsx", "\x1b", "[", "D", "\x1b[3", "~\r"}, []string{"ls"}},
		{"SS3 split across chunks", []string{"lx", "\x1bO", "Ds\r"}, []string{"lsx"}},
		{"rune split across chunks", []string{"echo \xe2", "\x82", "\xac\r"}, []string{"echo €"}},
		{"invalid UTF-8 becomes U+FFFD", []string{"echo \xff\xc3(\r"}, []string{"echo \uFFFD\uFFFD("}},
		{"rune cut short by Enter", []string{"echo \xe2\x82\r"}, []string{"echo \uFFFD"}},
		{"bracketed paste keeps newlines in the line", []string{"\x1b[200~ls\r\npwd\nid\rw\x1b[201~\r"}, []string{"ls\npwd\nid\nw"}},
		{"bracketed paste inserts at the cursor", []string{"echo  end\x1b[D\x1b[D\x1b[D\x1b[D\x1b[200~mid\x1b[201~\r"}, []string{"echo mid end"}},
		{"bracketed paste drops NUL", []string{"\x1b[200~l\x00s\x1b[201~\r"}, []string{"ls"}},
		{"bracketed paste keeps tabs and controls literally", []string{"\x1b[200~a\tb\x03c\x1b[201~\r"}, []string{"a\tb\x03c"}},
		{"bracketed paste keeps a false terminator", []string{"\x1b[200~a\x1b[20x\x1b\x1b[201~\r"}, []string{"a\x1b[20x\x1b"}},
		{"bracketed paste split across chunks", []string{"\x1b[20", "0~echo a\r", "\nb\xc3", "\xa9\x1b[2", "01~", "\r"}, []string{"echo a\nbé"}},
		{"unbracketed multi-line paste submits each line", []string{"ls\npwd\r\nid\n"}, []string{"ls", "pwd", "id"}},
		{"Up recalls the previous line", []string{"ls\r", "\x1b[A\r"}, []string{"ls", "ls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := typeAtPrompt(t, tc.chunks...)
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Fatalf("lines %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLineEndIndexesTheSubmittingByte(t *testing.T) {
	b := NewLineBuilder()
	b.Output([]byte(bashPrompt))
	p := []byte("ls\r\npwd\nx\x1b[200~a\rb\x1b[201~\r")
	lines := b.Input(p)
	want := []Line{{Text: "ls", End: 2}, {Text: "pwd", End: 7}, {Text: "xa\nb", End: len(p) - 1}}
	if fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Fatalf("lines %+v, want %+v", lines, want)
	}
	for _, l := range lines {
		if c := p[l.End]; c != '\r' && c != '\n' {
			t.Fatalf("End %d points at %q", l.End, c)
		}
	}
}

func TestLineIsCappedAndMarked(t *testing.T) {
	for _, tc := range []struct {
		name, unit string
	}{
		{"ASCII", "a"},
		{"three-byte runes stay whole", "€"},
		{"four-byte runes stay whole", "𝄞"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewLineBuilder()
			b.Output([]byte(bashPrompt))
			long := strings.Repeat(tc.unit, MaxLineBytes/len(tc.unit)+10)
			lines := b.Input([]byte(long + "\r"))
			if len(lines) != 1 || !lines[0].Truncated {
				t.Fatalf("lines %d, truncated %v", len(lines), len(lines) == 1 && lines[0].Truncated)
			}
			text := lines[0].Text
			if len(text) > MaxLineBytes || len(text) < MaxLineBytes-3 || !strings.HasPrefix(long, text) {
				t.Fatalf("text of %d bytes is not the start of the line", len(text))
			}
			// The next line starts clean.
			if next := b.Input([]byte("ls\r")); len(next) != 1 || next[0].Truncated || next[0].Text != "ls" {
				t.Fatalf("next line %+v", next)
			}
		})
	}
}
