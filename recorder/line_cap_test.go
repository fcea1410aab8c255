package recorder

import (
	"strings"
	"testing"
)

// denyAnywhere is a Guard with an unanchored rule: it matches wherever
// "shutdown" sits in the line.
func denyAnywhere(text string) string {
	if strings.Contains(text, "shutdown") {
		return "shutdown"
	}
	return ""
}

// TestLineOverTheCapIsDeniedUnderAGuard: once keys are dropped at
// MaxLineBytes the host's line holds what the rebuilder does not, so the
// Guard, asked about what is left, cannot allow it. Each case fills the
// line to the cap and then hides a forbidden command in the part the
// rebuilder no longer sees; the line must come back Denied with
// TooLongRule, and its submitting key must not be sent.
func TestLineOverTheCapIsDeniedUnderAGuard(t *testing.T) {
	full := strings.Repeat("x", MaxLineBytes)
	for _, tc := range []struct {
		name  string
		guard func(string) string
		keys  []string
	}{
		{"typed at the start after Ctrl-A", denyRM, []string{full, "\x01", "r", "m -rf /x; : ", "\r"}},
		{"typed at the start after Home", denyRM, []string{full, "\x1b[H", "rm -rf /x; : \r"}},
		{"appended past the cap for an unanchored rule", denyAnywhere, []string{"echo " + full, "; shutdown\r"}},
		{"known part killed, dropped part kept", denyRM, []string{full, "\x01rm -rf /x;", "\x0b", "\r"}},
		{"spaces, then the command at the start", denyRM, []string{strings.Repeat(" ", MaxLineBytes), "\x01rm -rf /x\r"}},
		{"Ctrl-D runs it through the tty driver", denyRM, []string{"\x1b[?2004l", full, "\x01rm -rf /x;", "\x04"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := NewLineBuilder()
			b.Guard = tc.guard
			b.Output([]byte(bashPrompt))
			var got []Line
			var send []byte
			for _, k := range tc.keys {
				if strings.HasPrefix(k, "\x1b[?2004") {
					b.Output([]byte(k)) // the host turns bracketed paste off
					continue
				}
				var lines []Line
				lines, send = b.Forward([]byte(k))
				got = append(got, lines...)
			}
			if len(got) != 1 || !got[0].Denied || got[0].Rule != TooLongRule || !got[0].Truncated {
				t.Fatalf("%d lines, first %+v", len(got), summary(got))
			}
			if !strings.HasSuffix(string(send), clearLine) || strings.Count(string(send), "\r") != 1 {
				t.Fatalf("sent %q, want the keys that clear the line in place of the submitting key", send)
			}
			// The next line is known again, and allowed.
			b.Output([]byte(bashPrompt))
			if next := b.Input([]byte("ls\r")); len(next) != 1 || next[0].Denied || next[0].Truncated || next[0].Text != "ls" {
				t.Fatalf("next line %+v", summary(next))
			}
		})
	}
}

// TestLineOverTheCapKeepsAMatchingRule: a rule that matches what is known
// of a truncated line is the one reported, not TooLongRule.
func TestLineOverTheCapKeepsAMatchingRule(t *testing.T) {
	b := NewLineBuilder()
	b.Guard = denyRM
	b.Output([]byte(bashPrompt))
	got := b.Input([]byte("rm -rf /" + strings.Repeat("x", MaxLineBytes) + "\r"))
	if len(got) != 1 || !got[0].Denied || got[0].Rule != "^rm -rf /" {
		t.Fatalf("lines %+v", summary(got))
	}
}

// TestLineAtTheCapIsNotLost: a line exactly MaxLineBytes long dropped no
// key; it is checked and allowed like any other.
func TestLineAtTheCapIsNotLost(t *testing.T) {
	b := NewLineBuilder()
	b.Guard = denyRM
	b.Output([]byte(bashPrompt))
	line := "echo " + strings.Repeat("x", MaxLineBytes-5)
	got := b.Input([]byte(line + "\r"))
	if len(got) != 1 || got[0].Denied || got[0].Truncated || got[0].Text != line {
		t.Fatalf("lines %+v", summary(got))
	}
}

// TestLineOverTheCapWithoutAGuardIsMarked: with no deny rules nothing is
// refused; the line is logged, marked Truncated so the log can say it was
// not captured whole, even when its known part is blank.
func TestLineOverTheCapWithoutAGuardIsMarked(t *testing.T) {
	b := NewLineBuilder()
	b.Output([]byte(bashPrompt))
	got := b.Input([]byte(strings.Repeat("x", MaxLineBytes) + "\x01rm -rf /x;\x0b\r"))
	if len(got) != 1 || got[0].Denied || !got[0].Truncated || got[0].Text != "" {
		t.Fatalf("lines %+v", summary(got))
	}
}

// TestContinuationOverTheCapIsDenied: a command continued with trailing
// backslashes is checked as a whole; once what it holds outgrew the cap,
// the part cut off is unseen, and the line that continues it is refused.
func TestContinuationOverTheCapIsDenied(t *testing.T) {
	b := NewLineBuilder()
	b.Guard = denyAnywhere
	b.Output([]byte(bashPrompt))
	// The third line takes the command past the cap, cutting its "t".
	half := strings.Repeat("x", MaxLineBytes/2-5)
	for _, l := range []string{"echo " + half + "\\", half + "\\", "; shut\\"} {
		if got := b.Input([]byte(l + "\r")); len(got) != 1 || got[0].Denied {
			t.Fatalf("line %.20q: %+v", l, summary(got))
		}
	}
	got := b.Input([]byte("down\r"))
	if len(got) != 1 || !got[0].Denied || got[0].Rule != TooLongRule {
		t.Fatalf("continued line %+v", summary(got))
	}
	// Refusing it ended the continuation: the next command stands alone.
	if next := b.Input([]byte("ls\r")); len(next) != 1 || next[0].Denied || next[0].Text != "ls" {
		t.Fatalf("next line %+v", summary(next))
	}
}

// TestPasteOverTheCapIsDenied: inside a bracketed paste each pasted newline
// is checked, for a reader that runs the line there; past the cap the
// pasted lines are no longer in the buffer, so the paste is refused.
func TestPasteOverTheCapIsDenied(t *testing.T) {
	b := NewLineBuilder()
	b.Guard = denyRM
	b.Output([]byte(bashPrompt))
	got, send := b.Forward([]byte("\x1b[200~" + strings.Repeat("x", MaxLineBytes) + "\nrm -rf /x\n"))
	if len(got) != 1 || !got[0].Denied || got[0].Rule != TooLongRule {
		t.Fatalf("lines %+v", summary(got))
	}
	if !strings.HasSuffix(string(send), pasteEnd+clearLine) || strings.Contains(string(send), "rm -rf") {
		t.Fatalf("sent %q", send[max(0, len(send)-40):])
	}
}

// summary shortens the lines' texts for a failure message.
func summary(lines []Line) []Line {
	out := make([]Line, len(lines))
	for i, l := range lines {
		if len(l.Text) > 40 {
			l.Text = l.Text[:20] + "…" + l.Text[len(l.Text)-20:]
		}
		out[i] = l
	}
	return out
}
