package recorder

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// pipeRun feeds chunks to a pipe builder with the test Guard, then ends
// the input, and returns the lines (denied ones marked) and what reached
// the host.
func pipeRun(chunks ...string) (got []string, sent string) {
	b := NewPipeLineBuilder()
	b.Guard = denyRM
	var out bytes.Buffer
	add := func(lines []Line, send []byte) {
		for _, l := range lines {
			s := l.Text
			if l.Denied {
				s = "DENIED:" + s
			}
			got = append(got, s)
		}
		out.Write(send)
	}
	for _, c := range chunks {
		add(b.Forward([]byte(c)))
		if len(got) > 0 && strings.HasPrefix(got[len(got)-1], "DENIED:") {
			return got, out.String() // the gateway ends the session
		}
	}
	add(b.EndInput())
	if rest := b.Flush(); len(rest) != 0 {
		panic(fmt.Sprintf("flush after EndInput: %+v", rest))
	}
	return got, out.String()
}

func TestPipeLines(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []string
		want   []string
		sent   string // "" for everything
	}{
		{"lines end at LF", []string{"ls\npwd\n"}, []string{"ls", "pwd"}, ""},
		{"CR is a character: bash gets it too", []string{"ls\r\nid\r\n"}, []string{"ls\r", "id\r"}, ""},
		{"a lone CR does not end a line", []string{"ls\rid\n"}, []string{"ls\rid"}, ""},
		{"backspace is a character", []string{"rm -rf /x\x7f\x7fetc\n"}, []string{"DENIED:rm -rf /x\x7f\x7fetc"}, "-"},
		{"erase keys applied by a pty further on are read too", []string{"reboott\x7f\n"}, []string{"DENIED:reboott\x7f"}, "-"},
		{"Ctrl-U and Ctrl-W as a pty would apply them", []string{"ls\x15shutdown x\x17now\n"}, []string{"DENIED:ls\x15shutdown x\x17now"}, "-"},
		{"backspace does not hide a denied line", []string{"lx\x7fs\n"}, []string{"lx\x7fs"}, ""},
		{"NUL is dropped, as the shell drops it", []string{"r\x00m -rf /x\n"}, []string{"DENIED:rm -rf /x"}, "-"},
		{"Ctrl-C and ESC are characters", []string{"a\x03b\x1b[Ac\n"}, []string{"a\x03b\x1b[Ac"}, ""},
		{"blank lines are not returned", []string{"\n \t\n\r\n"}, nil, ""},
		{"a line split across chunks", []string{"ec", "ho a", "\n"}, []string{"echo a"}, ""},
		{"a rune split across chunks", []string{"echo \xe2\x82", "\xac\n"}, []string{"echo €"}, ""},
		{"invalid UTF-8 becomes U+FFFD", []string{"echo \xff\n"}, []string{"echo \uFFFD"}, ""},
		{"a last line without LF runs at EOF", []string{"echo a\necho b"}, []string{"echo a", "echo b"}, ""},
		{"a backslash continues the line", []string{"echo a \\\nb\n"}, []string{"echo a \\\nb"}, ""},
		{"two backslashes do not", []string{"echo a \\\\\nb\n"}, []string{"echo a \\\\", "b"}, ""},
		{"denied: the lines before it run, nothing after", []string{"ls\nrm -rf /x\npwd\n"}, []string{"ls", "DENIED:rm -rf /x"}, "ls\n"},
		{"denied across chunks: no part of it is sent", []string{"id\nrm -r", "f /x", "\nls\n"}, []string{"id", "DENIED:rm -rf /x"}, "id\n"},
		{"denied at EOF without LF", []string{"id\nrm -rf /x"}, []string{"id", "DENIED:rm -rf /x"}, "id\n"},
		{"denied after a continuation", []string{"rm -rf \\\n/x\n"}, []string{"DENIED:rm -rf \\\n/x"}, "-"},
		{"denied with CRLF", []string{"reboot\r\n"}, []string{"DENIED:reboot\r"}, "-"},
		{"denied on a later line of one logical line", []string{"echo \\\nshutdown\n"}, []string{"DENIED:echo \\\nshutdown"}, "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, sent := pipeRun(tc.chunks...)
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Fatalf("lines %q, want %q", got, tc.want)
			}
			want := tc.sent
			switch want {
			case "":
				want = strings.Join(tc.chunks, "")
			case "-":
				want = ""
			}
			if sent != want {
				t.Fatalf("sent %q, want %q", sent, want)
			}
		})
	}
}

func TestPipeHoldsTheLineInProgress(t *testing.T) {
	b := NewPipeLineBuilder()
	for _, c := range []struct{ in, send string }{
		{"echo a\nech", "echo a\n"},
		{"o b", ""},
		{"\necho c\n", "echo b\necho c\n"},
		{"x \\\n", ""}, // continued: held until the logical line ends
		{"y\n", "x \\\ny\n"},
	} {
		if _, send := b.Forward([]byte(c.in)); string(send) != c.send {
			t.Fatalf("send %q for %q, want %q", send, c.in, c.send)
		}
	}
	// Output never matters without a terminal.
	if lines := b.Output([]byte("\x1b[?2004h\x1b[?1049hecho a")); lines != nil {
		t.Fatalf("output made lines %+v", lines)
	}
}

// TestPipeLongLineFlowsWithoutAGuard: a line too long to hold is sent as
// it comes when no rule could refuse it, and logged Truncated.
func TestPipeLongLineFlowsWithoutAGuard(t *testing.T) {
	long := "echo " + strings.Repeat("A", MaxLineBytes+10)
	b := NewPipeLineBuilder()
	lines, send := b.Forward([]byte(long))
	if len(lines) != 0 || string(send) != long {
		t.Fatalf("long line: %d lines, %d bytes sent", len(lines), len(send))
	}
	lines, send = b.Forward([]byte("B\nls\n"))
	if len(lines) != 2 || !lines[0].Truncated || !strings.HasPrefix(lines[0].Text, "echo AAA") || lines[1].Text != "ls" || string(send) != "B\nls\n" {
		t.Fatalf("lines %+v, send %q", summary(lines), send)
	}
}

// TestPipeLongLineIsDeniedUnderAGuard: a line too long to hold cannot be
// checked whole before the shell reads it, so under a Guard it is refused
// and not sent, whatever its start says; a rule its start matches is the
// one reported.
func TestPipeLongLineIsDeniedUnderAGuard(t *testing.T) {
	for _, tc := range []struct {
		name, line, rule string
		guard            func(string) string
	}{
		{"an unanchored rule after the cap", "echo " + strings.Repeat("A", MaxLineBytes) + "; shutdown", TooLongRule, denyAnywhere},
		// The shell drops NUL bytes: the hold fills while the line the
		// Guard sees is still "r"; "m -rf /x" would follow unchecked.
		{"NULs fill the hold", "r" + strings.Repeat("\x00", MaxLineBytes+1), TooLongRule, denyRM},
		{"invalid UTF-8 outgrows the line first", "echo " + strings.Repeat("\xff", MaxLineBytes/3+10) + "\n", TooLongRule, denyRM},
		{"its start is denied", "rm -rf /" + strings.Repeat("x", MaxLineBytes), "^rm -rf /", denyRM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewPipeLineBuilder()
			b.Guard = tc.guard
			lines, send := b.Forward([]byte("id\n" + tc.line))
			if len(lines) != 2 || lines[0].Text != "id" || !lines[1].Denied || lines[1].Rule != tc.rule || string(send) != "id\n" {
				t.Fatalf("lines %+v, send %.40q", summary(lines), send)
			}
		})
	}
}

func TestPipeFlushReportsTheHeldLine(t *testing.T) {
	b := NewPipeLineBuilder()
	b.Forward([]byte("ls\nrm -rf /x"))
	lines := b.Flush()
	if len(lines) != 1 || !lines[0].Unsubmitted || lines[0].Text != "rm -rf /x" || lines[0].End != -1 {
		t.Fatalf("flush %+v", lines)
	}
	if again := b.Flush(); again != nil {
		t.Fatalf("second flush %+v", again)
	}
}
