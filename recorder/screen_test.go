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
