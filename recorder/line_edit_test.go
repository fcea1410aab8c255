package recorder

import (
	"fmt"
	"strings"
	"testing"
)

func TestLineHistory(t *testing.T) {
	for _, tc := range []struct {
		name   string
		chunks []string
		want   []string
	}{
		{"Up past the first line reaches the history from before the session", []string{"one\r", "two\r", "\x1b[A\x1b[A\x1b[A\r"}, []string{"one", "two", LostLine}},
		{"Up with no history of this session", []string{"ls\x1b[A\r"}, []string{LostLine}},
		{"Down comes back from before the session", []string{"one\r", "\x1b[A\x1b[A\x1b[A\x1b[B\x1b[B\r"}, []string{"one", "one"}},
		{"Down back to the draft", []string{"one\r", "tw\x1b[A\x1b[A\x1b[B\x1b[Bo\r"}, []string{"one", "two"}},
		{"Down past the last line gives the line being edited", []string{"one\r", "tw", "\x1b[A\x1b[Bo\r"}, []string{"one", "two"}},
		{"Down without Up does nothing", []string{"one\r", "ls\x1b[B\r"}, []string{"one", "ls"}},
		{"Up then Down walks both ways", []string{"a\r", "b\r", "c\r", "\x1b[A\x1b[A\x1b[A\x1b[B\r"}, []string{"a", "b", "c", "b"}},
		{"SS3 arrows and Ctrl-P/Ctrl-N navigate", []string{"a\r", "b\r", "\x1bOA\x10\x0e\r"}, []string{"a", "b", "b"}},
		{"a recalled line can be edited", []string{"one\r", "\x1b[A\x7f\x7f\x7funo\r"}, []string{"one", "uno"}},
		{"edits to a recalled line are kept while navigating", []string{"a\r", "b\r", "\x1b[A\x7fc\x1b[A\x1b[B\r"}, []string{"a", "b", "c"}},
		{"the submitted line becomes the newest", []string{"a\r", "b\r", "\x1b[A\x1b[A\r", "\x1b[A\r"}, []string{"a", "b", "a", "a"}},
		{"blank lines are not in the history", []string{"ls\r", "\r", "\x1b[A\r"}, []string{"ls", "ls"}},
		{"Ctrl-C ends navigation", []string{"a\r", "b\r", "\x1b[A\x1b[A\x03", "\x1b[A\r"}, []string{"a", "b", "b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := typeAtPrompt(t, tc.chunks...)
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Fatalf("lines %q, want %q", got, tc.want)
			}
		})
	}
}

func TestYankIsCapped(t *testing.T) {
	b := NewLineBuilder()
	b.Output([]byte(bashPrompt))
	half := strings.Repeat("é", MaxLineBytes/4)
	// Kill half the cap, then yank it three times: only what fits stays.
	lines := b.Input([]byte(half + "\x15\x19\x19\x19\r"))
	if len(lines) != 1 || !lines[0].Truncated || len(lines[0].Text) != MaxLineBytes {
		t.Fatalf("yanked line: %d lines, %d bytes", len(lines), len(lines[0].Text))
	}
}
