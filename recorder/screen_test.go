package recorder

import (
	"bytes"
	"fmt"
	"testing"
)

func TestFullScreenProgramsMakeNoLines(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
		want  []string
	}{
		{"keys in the alternate screen are not lines",
			steps(out(bashPrompt), in("vim x\r"), out("\x1b[?2004l\x1b[?1049h"), in("ihello\x1b:wq\r"), out("\x1b[?1049l"+bashPrompt), in("ls\r")),
			[]string{"vim x", "ls"}},
		{"vim turning bracketed paste on once is still full-screen",
			steps(out(bashPrompt), in("vim x\r"), out("\x1b[?2004l\x1b[?1049h\x1b[?2004h"), in("ihello\rrm -rf /\r\x1b:wq\r"), out("\x1b[?2004l\x1b[?1049l"+bashPrompt), in("ls\r")),
			[]string{"vim x", "ls"}},
		{"a shell left on the alternate screen is a shell again from its second prompt",
			steps(out(bashPrompt), in("printf x\r"), out("\x1b[?2004l\r\n\x1b[?1049h\x1b[?2004h$ "), in("echo first\r"),
				out("\x1b[?2004l\r\nfirst\r\n\x1b[?2004h$ "), in("ls\r"), out("\x1b[?2004l\r\n\x1b[?2004h$ "), in("id\r")),
			[]string{"printf x", "ls", "id"}},
		{"mode 47 is the alternate screen",
			steps(out("\x1b[?47h"), in("q\r"), out("\x1b[?47l"+bashPrompt), in("ls\r")), []string{"ls"}},
		{"mode 1047 is the alternate screen",
			steps(out("\x1b[?1047h"), in("q\r"), out("\x1b[?1047l"+bashPrompt), in("ls\r")), []string{"ls"}},
		{"modes set together",
			steps(out("\x1b[?1;1049;25h"), in("q\r"), out("\x1b[?25;1049l"+bashPrompt), in("ls\r")), []string{"ls"}},
		{"mode sequence split across output chunks",
			steps(out("\x1b[?10"), out("49h"), in("q\r"), out("\x1b"), out("[?1049l"+bashPrompt), in("ls\r")), []string{"ls"}},
		{"a line typed before the switch is dropped",
			steps(out(bashPrompt), in("partial"), out("\x1b[?1049h"), in("x\r"), out("\x1b[?1049l"+bashPrompt), in("ls\r")), []string{"ls"}},
		{"a full reset leaves the alternate screen",
			steps(out("\x1b[?1049h"), in("q\r"), out("\x1bc"+bashPrompt), in("ls\r")), []string{"ls"}},
		{"the mode inside an OSC title is not a switch",
			steps(out("\x1b]0;[?1049h\x07"+bashPrompt), in("ls\r")), []string{"ls"}},
		{"other private modes are not the alternate screen",
			steps(out("\x1b[?25l\x1b[?1h"+bashPrompt), in("ls\r")), []string{"ls"}},
		{"a non-private mode 1049 is not the alternate screen",
			steps(out("\x1b[1049h"+bashPrompt), in("ls\r")), []string{"ls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := show(run(NewLineBuilder(), tc.steps))
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Fatalf("lines %q, want %q", got, tc.want)
			}
		})
	}
}

func TestEchoWindowIsBounded(t *testing.T) {
	b := NewLineBuilder()
	b.Output([]byte("$ "))
	b.Input([]byte("x"))
	flood := bytes.Repeat([]byte("y"), 1<<20)
	b.Output(flood)
	b.Output([]byte("x"))
	if n := len(b.scr.echo); n > maxEcho {
		t.Fatalf("echo window holds %d bytes, cap %d", n, maxEcho)
	}
	// The latest output, with the echo, survived the trimming.
	if lines := b.Input([]byte("\r")); len(lines) != 1 || lines[0].Text != "x" {
		t.Fatalf("lines %+v", lines)
	}
}

func TestRowReader(t *testing.T) {
	for _, tc := range []struct {
		name, out string
		row       string
		col       int
		ok        bool
	}{
		{"text", "$ ls", "$ ls", 4, true},
		{"CR overwrites", "abc\rX", "Xbc", 1, true},
		{"backspace and erase to end", "$ lx\b\x1b[K", "$ l", 3, true},
		{"cursor left and right", "$ abc\x1b[2D\x1b[C", "$ abc", 4, true},
		{"delete characters", "$ abcd\x1b[3D\x1b[2P", "$ ad", 3, true},
		{"insert blanks", "$ ad\x1b[D\x1b[2@bc", "$ abcd", 5, true},
		{"column absolute", "$ abc\x1b[3Gz", "$ zbc", 3, true},
		{"tab stops", "a\tb", "a       b", 9, true},
		{"colours and titles show nothing", "\x1b[1;32m$\x1b[0m \x1b]0;title\x07ls", "$ ls", 4, true},
		{"bracketed paste mode is not movement", "\x1b[?2004h$ ls", "$ ls", 4, true},
		{"runes take one column", "$ é€", "$ é€", 4, true},
		{"a move up makes the row unknown", "$ ls\x1b[A", "$ ls", 4, false},
		{"clear screen makes a blank known row", "old\x1b[H\x1b[2J$ ls", "$ ls", 4, true},
		{"huge moves are bounded", "\x1b[999999999C", "", maxRowCols, false},
		{"huge inserts are bounded", "ab\x1b[D\x1b[99999@", "ab", 1, false},
		{"a cut sequence at the end", "$ ls\x1b[", "$ ls", 4, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s screen
			s.feed([]byte("old output\r\n"+tc.out), false)
			row, col, ok := s.row()
			if string(row) != tc.row || col != tc.col || ok != tc.ok {
				t.Fatalf("row %q col %d ok %v, want %q %d %v", string(row), col, ok, tc.row, tc.col, tc.ok)
			}
		})
	}
	var s screen
	s.feed(bytes.Repeat([]byte("x"), maxTail+1), false)
	if _, _, ok := s.row(); ok {
		t.Fatal("an overlong row was read")
	}
	s.feed([]byte("\r\n$ "), false)
	if row, _, ok := s.row(); !ok || string(row) != "$ " {
		t.Fatalf("after LF: %q %v", string(row), ok)
	}
}

// TestScreenShowsWhatKeysCannot: lines the shell filled in itself are
// read off the screen, for the log and for the Guard.
func TestScreenShowsWhatKeysCannot(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
		want  string // the line, or DENIED:line
	}{
		{"a history line from before the session", steps(out(bashPrompt), in("\x1b[A"), out("rm -rf /old"), in("\r")), "DENIED:rm -rf /old"},
		{"history recalled and logged", steps(out(bashPrompt), in("\x1b[A"), out("uptime"), in("\r")), "uptime"},
		{"tab completion", steps(out(bashPrompt), typed("shutd"), in("\t"), out("own "), in("\r")), "DENIED:shutdown"},
		{"tab completion logged as shown", steps(out(bashPrompt), typed("cat fi"), in("\t"), out("le2 "), in("\r")), "cat file2"},
		{"keys faster than the completion's echo", steps(out(bashPrompt), typed("cat fi"), in("\tle2\r")), "cat file2"},
		{"an unknown Alt-key", steps(out(bashPrompt), typed("ls foo"), in("\x1b\x01"), out("\b\b\bbar"), in("\r")), "ls foo"},
		{"an unknown Alt-key the screen explains", steps(out(bashPrompt), typed("ls"), in("\x1bt"), out(" -la"), in("\r")), "ls -la"},
		{"a redraw after Ctrl-L", steps(out(bashPrompt), in("\x1b[A"), out("x"), in("\x0c"), out("\x1b[H\x1b[2J"+bashPrompt+"shutdown -r"), in("\r")), "DENIED:shutdown -r"},
		{"an autosuggestion after the cursor is not the line", steps(out(bashPrompt), typed("shu"), out("\x1b[90mtdown\x1b[0m\x1b[5D"), in("f\r")), "shuf"},
		{"a row redrawn from above is not read", steps(out(bashPrompt), in("\x1b[A"), out("\x1b[Arm -rf /x"), in("\r")), LostLine},
		{"Ctrl-R: the match is the line", steps(out(bashPrompt), in("\x12"), out("\r(reverse-i-search)`': "), in("rm"),
			out("\r(reverse-i-search)`rm': rm -rf /x\x1b[9D"), in("\r")), "DENIED:rm -rf /x"},
		{"Ctrl-R logged as the match", steps(out(bashPrompt), in("\x12up"), out("\r(reverse-i-search)`up': uptime\x1b[6D"), in("\r")), "uptime"},
		{"Ctrl-R ended by a key, then edited", steps(out(bashPrompt), in("\x12rm"), out("\r(reverse-i-search)`rm': rm -rf /x"),
			in("\x05"), out("\r\x1b[K"+bashPrompt[len("\x1b[?2004h"):]+"rm -rf /x"), in(" -v"), out(" -v"), in("\r")), "DENIED:rm -rf /x -v"},
		{"Ctrl-R cancelled with Ctrl-G", steps(out(bashPrompt), typed("ls"), in("\x12rm"), out("\r(reverse-i-search)`rm': rm -rf /x"),
			in("\x07"), out("\r\x1b[K"+bashPrompt[len("\x1b[?2004h"):]+"ls"), in("\r")), "ls"},
		{"Ctrl-R with the screen unreadable", steps(out(bashPrompt), in("\x12rm"), out("\x1b[A"), in("\r")), LostLine},
		{"Up with no older history keeps the line on the screen", steps(out(bashPrompt), typed("ls"), in("\x1b[A\r")), "ls"},
		{"typed after a line from before the session", steps(out(bashPrompt), in("\x1b[A"), out("rm -rf"), typed(" /x"), in("\r")), "DENIED:rm -rf /x"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewLineBuilder()
			b.Guard = denyRM
			var got string
			for _, l := range run(b, tc.steps) {
				got = l.Text
				if l.Denied {
					got = "DENIED:" + l.Text
				}
			}
			if got != tc.want {
				t.Fatalf("line %q, want %q", got, tc.want)
			}
		})
	}
}
