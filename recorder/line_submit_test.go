package recorder

import (
	"fmt"
	"strings"
	"testing"
)

// denyRM is a Guard with the rules of the gateway's tests.
func denyRM(text string) string {
	switch {
	case strings.HasPrefix(text, "rm -rf /"):
		return "^rm -rf /"
	case strings.HasPrefix(text, "shutdown"):
		return "^shutdown"
	case text == "reboot":
		return "^reboot$"
	}
	return ""
}

func TestKeysThatSubmitALine(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []string
		want   []string
	}{
		{"Ctrl-M", []string{"ls\x0d"}, []string{"ls"}},
		{"Ctrl-J", []string{"ls\x0a"}, []string{"ls"}},
		{"Ctrl-O on a new line", []string{"ls\x0f"}, []string{"ls"}},
		{"Ctrl-O on a history line shows the next one", []string{"a\r", "b\r", "\x1b[A\x1b[A\x0f", "\r"}, []string{"a", "b", "a", "b"}},
		{"Ctrl-O on the newest history line shows it again", []string{"a\r", "\x1b[A\x0f", "\r"}, []string{"a", "a", "a"}},
		{"Ctrl-O then editing the next line", []string{"a\r", "b\r", "\x1b[A\x1b[A\x0f", "\x7fc\r"}, []string{"a", "b", "a", "c"}},
		{"Ctrl-O before the session's history", []string{"a\r", "\x1b[A\x1b[A\x1b[A\x0f", "\r"}, []string{"a", LostLine, LostLine}},
		{"Alt-a runs the line and keeps it", []string{"ls\x1ba", " -l\r"}, []string{"ls", "ls -l"}},
		{"Alt-A too", []string{"ls\x1bA\r"}, []string{"ls", "ls"}},
		{"Alt-# submits", []string{"ls\x1b#"}, []string{"ls"}},
		{"Ctrl-V Enter is text, not a submit", []string{"echo a\x16\rb\r"}, []string{"echo a\rb"}},
		{"Ctrl-V LF is text too", []string{"echo a\x16\nb\n"}, []string{"echo a\nb"}},
		{"Ctrl-V then a rune", []string{"a\x16é\r"}, []string{"aé"}},
		{"Ctrl-T swaps the last two at the end", []string{"sl\x14\r"}, []string{"ls"}},
		{"Ctrl-T drags a rune forward", []string{"lsx\x02\x02\x14\r"}, []string{"slx"}},
		{"Ctrl-T swaps runes whole", []string{"é€\x14\r"}, []string{"€é"}},
		{"Alt-u upcases the next word", []string{"ls foo bar\x1bb\x1bb\x1bu\r"}, []string{"ls FOO bar"}},
		{"Alt-l downcases it", []string{"SHUTDOWN\x01\x1bl now\r"}, []string{"shutdown now"}},
		{"Alt-c capitalises it", []string{"x éTÉ\x01\x1bf\x1bc\r"}, []string{"x Été"}},
		{"Ctrl-T with one rune does nothing", []string{"a\x14\r"}, []string{"a"}},
		{"Ctrl-T at the start does nothing", []string{"ab\x01\x14\r"}, []string{"ab"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := typeAtPrompt(t, tc.chunks...)
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Fatalf("lines %q, want %q", got, tc.want)
			}
		})
	}
}

// TestGuardAtEverySubmitKey tries each key that runs a line with a denied
// line, and checks what would reach the host.
func TestGuardAtEverySubmitKey(t *testing.T) {
	const sh = "$ " // sh: the tty driver reads, bracketed paste stays off
	for _, tc := range []struct {
		name, prompt, chunk string
		text, send          string
	}{
		{"Enter", bashPrompt, "rm -rf /x\rls\r", "rm -rf /x", "rm -rf /x" + clearLine},
		{"Ctrl-J", bashPrompt, "rm -rf /x\nls\r", "rm -rf /x", "rm -rf /x" + clearLine},
		{"Ctrl-O", bashPrompt, "rm -rf /x\x0fls\r", "rm -rf /x", "rm -rf /x" + clearLine},
		{"Alt-a", bashPrompt, "rm -rf /x\x1ba", "rm -rf /x", "rm -rf /x\x1b" + clearLine},
		{"Alt-1 Alt-# uncommenting a line", bashPrompt, "#rm -rf /x\x1b1\x1b#", "#rm -rf /x", "#rm -rf /x\x1b1\x1b" + clearLine},
		{"Alt-# commenting a line", bashPrompt, "rm -rf /x\x1b#", "rm -rf /x", "rm -rf /x\x1b" + clearLine},
		{"Ctrl-D handing the line to sh", sh, "rm -rf /x\x04\x04", "rm -rf /x", "rm -rf /x" + clearLine},
		{"a typed line edited into the rule", bashPrompt, "rm -rf /tmp\x7f\x7f\x7f\r", "rm -rf /", "rm -rf /tmp\x7f\x7f\x7f" + clearLine},
		{"a second line of a paste", bashPrompt, "\x1b[200~ls\nrm -rf /x\nid\x1b[201~\r", "ls\nrm -rf /x\n",
			"\x1b[200~ls\nrm -rf /x" + pasteEnd + clearLine},
		{"a paste ended before Enter", bashPrompt, "\x1b[200~ls\nrm -rf /x\x1b[201~\r", "ls\nrm -rf /x", "\x1b[200~ls\nrm -rf /x\x1b[201~" + clearLine},
		{"a line typed after a client-sent paste start on sh", sh, "\x1b[200~rm -rf /x\rid\r", "rm -rf /x", "\x1b[200~" + pasteEnd + "rm -rf /x" + clearLine},
		{"Alt-Enter: bash drops the newline", bashPrompt, "shut\x1b\rdown\r", "shut\ndown", "shut\x1b\rdown" + clearLine},
		{"a CR quoted with Ctrl-V", bashPrompt, "reboot\x16\r\r", "reboot\r", "reboot\x16\r" + clearLine},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewLineBuilder()
			b.Guard = denyRM
			b.Output([]byte(tc.prompt))
			lines, send := b.Forward([]byte(tc.chunk))
			if len(lines) != 1 || !lines[0].Denied || lines[0].Text != tc.text || lines[0].Rule == "" {
				t.Fatalf("lines %+v, want one denied %q", lines, tc.text)
			}
			if string(send) != tc.send {
				t.Fatalf("send %q, want %q", send, tc.send)
			}
			// The line is gone; the next one starts empty and outside any
			// paste.
			b.Output([]byte(bashPrompt))
			if next := b.Input([]byte("ok\r")); len(next) != 1 || next[0].Text != "ok" {
				t.Fatalf("next line %+v", next)
			}
		})
	}
}

func TestGuardFollowsBackslashContinuation(t *testing.T) {
	b := NewLineBuilder()
	b.Guard = denyRM
	b.Output([]byte(bashPrompt))
	if lines := b.Input([]byte("rm -rf \\\r")); len(lines) != 1 || lines[0].Denied {
		t.Fatalf("first part %+v", lines)
	}
	lines, send := b.Forward([]byte("/ \r"))
	if len(lines) != 1 || !lines[0].Denied || string(send) != "/ "+clearLine {
		t.Fatalf("continued line %+v, send %q", lines, send)
	}
	// An even number of backslashes ends the command.
	b.Input([]byte("echo rm -rf \\\\\r"))
	if lines := b.Input([]byte("/\r")); len(lines) != 1 || lines[0].Denied {
		t.Fatalf("after an escaped backslash %+v", lines)
	}
	// Ctrl-C drops the continued command.
	b.Input([]byte("rm -rf \\\r\x03"))
	if lines := b.Input([]byte("/\r")); len(lines) != 1 || lines[0].Denied {
		t.Fatalf("after Ctrl-C %+v", lines)
	}
}

func TestPasteStartsOnlyWhenTheHostAskedForIt(t *testing.T) {
	for _, tc := range []struct {
		name  string
		steps []step
		want  []string
	}{
		{"sh never turns it on: lines after ESC[200~ are lines",
			steps(out("$ "), in("\x1b[200~"), typed("ls"), in("\r"), out("\r\n$ "), typed("id"), in("\r"), in("\x1b[201~")),
			[]string{"ls", "id"}},
		{"turned off again",
			steps(out(bashPrompt), in("ls\r"), out("\x1b[?2004l\r\n$ "), in("\x1b[200~"), typed("id"), in("\r")),
			[]string{"ls", "id"}},
		{"turned on: a paste keeps its newlines",
			steps(out("$ \x1b[?2004h"), in("\x1b[200~ls\nid\x1b[201~\r")), []string{"ls\nid"}},
		{"a full reset turns it off",
			steps(out(bashPrompt+"\x1bc$ "), in("\x1b[200~"), typed("ls"), in("\r")), []string{"ls"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := show(run(NewLineBuilder(), tc.steps))
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Fatalf("lines %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUnaskedPasteStartIsClosedOnTheWay(t *testing.T) {
	b := NewLineBuilder()
	b.Output([]byte("$ "))
	for _, c := range []struct{ in, send string }{
		{"\x1b[200~ls\r", "\x1b[200~" + pasteEnd + "ls\r"},
		{"x\x1b[20", "x\x1b[20"},
		{"0~y\x1b[200~", "0~" + pasteEnd + "y\x1b[200~" + pasteEnd},
		{"plain\r", "plain\r"},
	} {
		if _, send := b.Forward([]byte(c.in)); string(send) != c.send {
			t.Fatalf("send %q for %q, want %q", send, c.in, c.send)
		}
	}
	// Asked for: passed as it is.
	b.Output([]byte("\x1b[?2004h"))
	if _, send := b.Forward([]byte("\x1b[200~a\x1b[201~")); string(send) != "\x1b[200~a\x1b[201~" {
		t.Fatalf("send %q", send)
	}
	// A full-screen program gets its keys untouched.
	b.Output([]byte("\x1b[?2004l\x1b[?1049h"))
	if _, send := b.Forward([]byte("\x1b[200~a")); string(send) != "\x1b[200~a" {
		t.Fatalf("send %q", send)
	}
}

func TestFlushReturnsWhatIsPending(t *testing.T) {
	const sudo = "\x1b[?2004l\r\n[sudo] password for alice: "
	for _, tc := range []struct {
		name  string
		steps []step
		want  []string
	}{
		{"a submitted line waiting for its echo", steps(out("$ "), in("ls\r")), []string{"(unechoed)"}},
		{"a typed, echoed line without Enter", steps(out("$ "), typed("rm -rf /x")), []string{"rm -rf /x (unsubmitted)"}},
		{"a password without Enter stays withheld", steps(out(bashPrompt), in("sudo -v\r"), out(sudo), keys("s3cret")),
			[]string{"sudo -v", "(unechoed) (unsubmitted)"}},
		{"a paste never ended", steps(out(bashPrompt), in("\x1b[200~ls\nrm -rf /")), []string{"ls\nrm -rf / (unsubmitted)"}},
		{"a line after Ctrl-D on sh", steps(out("$ "), typed("rm x"), in("\x04")), []string{"rm x (unsubmitted)"}},
		{"pending echo, then a partial line, in order", steps(out("$ "), in("ls\r"), typed("pwd")), []string{"(unechoed)", "pwd (unsubmitted)"}},
		{"keys in a full-screen program are not a line", steps(out("\x1b[?1049h"), in("iabc")), nil},
		{"a blank partial line is nothing", steps(out(bashPrompt), in("   ")), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, l := range run(NewLineBuilder(), tc.steps) {
				s := show([]Line{l})[0]
				if l.Unsubmitted {
					s += " (unsubmitted)"
				}
				got = append(got, s)
			}
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Fatalf("lines %q, want %q", got, tc.want)
			}
		})
	}
}
