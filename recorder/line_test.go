package recorder

import (
	"bytes"
	"fmt"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// step is one chunk in a session: typed by the client (in) or sent by the
// host (out).
type step struct{ in, out string }

func in(s string) step  { return step{in: s} }
func out(s string) step { return step{out: s} }

// typed returns steps that type s key by key, each key echoed by the host.
func typed(s string) []step {
	var steps []step
	for _, r := range s {
		steps = append(steps, in(string(r)), out(string(r)))
	}
	return steps
}

// keys returns steps that type s key by key with no echo.
func keys(s string) []step {
	var steps []step
	for _, r := range s {
		steps = append(steps, in(string(r)))
	}
	return steps
}

func steps(parts ...any) []step {
	var all []step
	for _, p := range parts {
		switch p := p.(type) {
		case step:
			all = append(all, p)
		case []step:
			all = append(all, p...)
		}
	}
	return all
}

// show renders lines for comparison: the text, or (unechoed).
func show(lines []Line) []string {
	var s []string
	for _, l := range lines {
		if l.Unechoed {
			if l.Text != "" {
				s = append(s, "LEAKED:"+l.Text)
				continue
			}
			s = append(s, "(unechoed)")
			continue
		}
		s = append(s, l.Text)
	}
	return s
}

func run(b *LineBuilder, ss []step) []Line {
	var lines []Line
	for _, s := range ss {
		if s.out != "" {
			lines = append(lines, b.Output([]byte(s.out))...)
		}
		if s.in != "" {
			lines = append(lines, b.Input([]byte(s.in))...)
		}
	}
	return append(lines, b.Flush()...)
}

func TestUnechoedLinesAreWithheld(t *testing.T) {
	const sudo = "\x1b[?2004l\r\n[sudo] password for alice: "
	for _, tc := range []struct {
		name  string
		steps []step
		want  []string
	}{
		{"a password typed at a prompt without echo",
			steps(out("[sudo] password for alice: "), keys("hunter2"), in("\r")), []string{"(unechoed)"}},
		{"a short password found in the prompt is still withheld",
			steps(out("Password: "), keys("pass"), in("\r")), []string{"(unechoed)"}},
		{"a password after a bash command",
			steps(out(bashPrompt), in("sudo -v\r"), out(sudo), keys("s3cret"), in("\r")), []string{"sudo -v", "(unechoed)"}},
		{"a password pasted with its newline",
			steps(out(bashPrompt), in("sudo -v\r"), out(sudo), in("s3cret\n")), []string{"sudo -v", "(unechoed)"}},
		{"a line echoed key by key keeps its text",
			steps(out("$ "), typed("ls -la"), in("\r")), []string{"ls -la"}},
		{"an echo that arrives in one piece",
			steps(out("$ "), keys("uptime"), out("uptime"), in("\r")), []string{"uptime"}},
		{"an echo redrawn after editing",
			steps(out("$ "), typed("lx"), in("\x7f"), out("\b\x1b[K"), typed("s"), in("\r")), []string{"ls"}},
		{"an echo with a rune",
			steps(out("$ "), typed("echo é"), in("\r")), []string{"echo é"}},
		{"escape sequences in the output are not an echo",
			steps(out("$ "), in("m"), out("\x1b[31m"), in("\r")), []string{"(unechoed)"}},
		{"an OSC title is not an echo",
			steps(out("$ "), keys("ti"), out("\x1b]0;ti\x07"), in("\r")), []string{"(unechoed)"}},
		{"a partial echo is not enough",
			steps(out("$ "), typed("ab"), keys("cd"), in("\r")), []string{"(unechoed)"}},
		{"a line typed in one chunk with its Enter cannot be checked",
			steps(out("$ "), in("secret\r")), []string{"(unechoed)"}},
		{"a line editor with bracketed paste echoes",
			steps(out(bashPrompt), in("ls\r")), []string{"ls"}},
		{"unechoed lines stay out of the history",
			steps(out(bashPrompt), in("sudo -v\r"), out(sudo), keys("s3cret"), in("\r"), out(bashPrompt), in("\x1b[A\r")),
			[]string{"sudo -v", "(unechoed)", "sudo -v"}},
		{"output before the first key is not the echo",
			steps(out("$ ls\r\n"), keys("ls"), in("\r")), []string{"(unechoed)"}},
		{"a line discarded by Ctrl-C starts a new echo window",
			steps(out("$ "), typed("xy"), in("\x03"), out("^C\r\n$ "), keys("xy"), in("\r")), []string{"(unechoed)"}},
		{"a line typed ahead is settled by its later echo",
			steps(out("$ "), in("exit\r"), out("\x1b[?2004l\r\nhello\r\n"), out("\x1b[?2004h$ ex"), out("it\r\n")), []string{"exit"}},
		{"typed-ahead lines come out in order",
			steps(out("$ "), in("one\rtwo\r"), out("one\r\n"), out("two\r\n")), []string{"one", "two"}},
		{"a password typed ahead stays withheld after much output",
			steps(out("Password: "), in("hunter2\r"), out(strings.Repeat("x", maxEchoWindow+10)), out(bashPrompt), typed("ls"), in("\r")),
			[]string{"(unechoed)", "ls"}},
		{"controls in a line need no echo",
			steps(out("$ "), in("a\x16\x07b"), out("ab"), in("\r")), []string{"a\x07b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := show(run(NewLineBuilder(), tc.steps))
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Fatalf("lines %q, want %q", got, tc.want)
			}
		})
	}
}

func TestLineBuilderConcurrentUse(t *testing.T) {
	b := NewLineBuilder()
	b.Output([]byte(bashPrompt))
	var wg sync.WaitGroup
	var mu sync.Mutex
	var lines []Line
	wg.Add(2)
	go func() {
		defer wg.Done()
		for range 500 {
			got := b.Input([]byte("ls -l\x1b[D\x7f\r"))
			mu.Lock()
			lines = append(lines, got...)
			mu.Unlock()
		}
	}()
	go func() {
		defer wg.Done()
		for range 500 {
			b.Output([]byte("total 0\r\n\x1b[1mx\x1b[0m\r\n" + bashPrompt))
		}
	}()
	wg.Wait()
	if len(lines) != 500 {
		t.Fatalf("%d lines, want 500", len(lines))
	}
	for _, l := range lines {
		if l.Text != "ls l" {
			t.Fatalf("line %+v", l)
		}
	}
}

// FuzzLineBuilder feeds a terminal builder, or a pipe one when pipe is
// set, with chunks of client and host bytes, with a Guard, and checks what
// comes out: valid lines, End in the chunk and in order, nothing leaked, and
// what would reach the host (without a terminal: exactly the bytes of the
// allowed lines, never a byte of a denied one).
func FuzzLineBuilder(f *testing.F) {
	f.Add([]byte("ls -la\r"), []byte(bashPrompt), 3, false)
	f.Add([]byte("\x1b[200~a\r\nb\x1b[201~\r\x1b[A\x1b[B\x15\x17\x0b\x19\r"), []byte("$ ab\r\n"), 5, false)
	f.Add([]byte("\xe2\x82\xac\x1bOD\x1b[3~\x1b[1;5C\x1b\x7f\x03\x04\r"), []byte("\x1b[?1049h\x1b[?1049l"), 1, false)
	f.Add([]byte("x\x1b[20\x1b[201~\xff\xc3\r"), []byte("\x1b]0;t\x1b\\\x1b(B"), 2, false)
	f.Add([]byte("rm -rf /x\x0fa\r\x1b[A\x0f\x1ba\x16\r\x14\x04\x04"), []byte("$ \x1b[?2004h"), 4, false)
	f.Add([]byte("\x1b[200~ls\nrm -rf /\n\x1b[201~shut\x1b\rdown\r"), []byte(bashPrompt), 7, false)
	f.Add([]byte("ls\r\nrm -rf \\\n/x\nid"), []byte(""), 3, true)
	f.Add([]byte("echo a\nreboot\r\n\xe2\x82"), []byte("x"), 1, true)
	f.Fuzz(func(t *testing.T, input, output []byte, chunk int, pipe bool) {
		if chunk <= 0 {
			chunk = 1
		}
		chunk = chunk%64 + 1
		b := NewLineBuilder()
		if pipe {
			b = NewPipeLineBuilder()
		}
		b.Guard = denyRM
		all := input
		var sent, allowed []byte
		denied := false
		check := func(l Line, p []byte, last int) {
			if !utf8.ValidString(l.Text) {
				t.Fatalf("invalid UTF-8 in %q", l.Text)
			}
			if len(l.Text) > MaxLineBytes {
				t.Fatalf("line of %d bytes", len(l.Text))
			}
			if l.Unechoed && l.Text != "" {
				t.Fatalf("unechoed line leaks %q", l.Text)
			}
			if pipe && l.Unechoed {
				t.Fatalf("unechoed line without a terminal")
			}
			if !l.Unechoed && blank(l.Text) {
				t.Fatalf("blank line %q returned", l.Text)
			}
			if l.Denied && l.Rule == "" {
				t.Fatalf("denied without a rule: %+v", l)
			}
			if p != nil && l.End != -1 && (l.End <= last || l.End >= len(p)) {
				t.Fatalf("End %d in %q", l.End, p)
			}
			if pipe && p != nil && l.End >= 0 && p[l.End] != '\n' {
				t.Fatalf("pipe line ended by %q", p[l.End])
			}
		}
		for (len(input) > 0 || len(output) > 0) && !denied {
			n := min(chunk, len(output))
			for _, l := range b.Output(output[:n]) {
				check(l, nil, -1)
			}
			output = output[n:]
			n = min(chunk, len(input))
			p := input[:n]
			input = input[n:]
			last := -1
			lines, send := b.Forward(p)
			sent = append(sent, send...)
			for _, l := range lines {
				check(l, p, last)
				if l.End >= 0 {
					last = l.End
				}
				if l.Denied {
					denied = true
				} else if pipe {
					allowed = append(allowed, l.Text...)
				}
			}
			if !pipe && !denied && len(b.inject) == 0 && !bytes.Equal(send, p) {
				t.Fatalf("send %q for %q", send, p)
			}
		}
		if !denied {
			lines, send := b.EndInput()
			sent = append(sent, send...)
			for _, l := range lines {
				check(l, nil, -1)
				denied = denied || l.Denied
			}
		}
		for _, l := range b.Flush() {
			check(l, nil, -1)
			if l.Unsubmitted != (l.End == -1) && !pipe {
				// Flush returns lines submitted earlier (that waited for
				// an echo, or behind one that did) and the unsubmitted one.
				t.Fatalf("flushed line %+v", l)
			}
		}
		if pipe {
			// What was sent is the start of the input, up to a line end or
			// all of it; and with no denial, all of it.
			if !bytes.HasPrefix(all, sent) || (!denied && len(sent) != len(all)) {
				t.Fatalf("sent %q of %q", sent, all)
			}
			if denied && len(sent) > 0 && sent[len(sent)-1] != '\n' {
				t.Fatalf("sent a partial line before a denial: %q", sent)
			}
		}
	})
}

func BenchmarkLineBuilderTyping(b *testing.B) {
	// A shell session: keys with their echo, edits, history, a paste.
	var session []step
	for range 20 {
		session = append(session, typed("grep -rn TODO ./cmd | head")...)
		session = append(session, in("\x1b[D\x1b[D\x7f\x01\x05\x17"), out("\b\b\x1b[K"), in("\r"), out("\r\nmain.go:1: TODO\r\n$ "))
		session = append(session, in("\x1b[A\r"), out("\r\n$ "), in("\x1b[200~echo a\necho b\x1b[201~\r"))
	}
	var n int64
	for _, s := range session {
		n += int64(len(s.in) + len(s.out))
	}
	b.SetBytes(n)
	b.ReportAllocs()
	for b.Loop() {
		run(NewLineBuilder(), session)
	}
}

func BenchmarkLineBuilderBulkOutput(b *testing.B) {
	// The output of a long command: the builder only looks for escapes.
	lb := NewLineBuilder()
	lb.Output([]byte(bashPrompt))
	lb.Input([]byte("cat big.log\r"))
	chunk := bytes.Repeat([]byte("2025-03-14 15:09:26 INFO \x1b[32mok\x1b[0m request served\r\n"), 32<<10/52)
	b.SetBytes(int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		lb.Output(chunk)
	}
}

func TestGuardDeniesAtEnter(t *testing.T) {
	b := NewLineBuilder()
	b.Guard = func(text string) string {
		if strings.HasPrefix(text, "rm -rf /") {
			return "^rm -rf /"
		}
		return ""
	}
	b.Output([]byte(bashPrompt))
	lines := b.Input([]byte("ls\r"))
	if len(lines) != 1 || lines[0].Text != "ls" || lines[0].Denied {
		t.Fatalf("allowed line: %+v", lines)
	}
	chunk := []byte("rm -rf / --no-preserve-root\rreboot\r")
	lines = b.Input(chunk)
	if len(lines) != 1 || !lines[0].Denied || lines[0].Rule != "^rm -rf /" || lines[0].Text != "rm -rf / --no-preserve-root" {
		t.Fatalf("denied line: %+v", lines)
	}
	if chunk[lines[0].End] != '\r' || lines[0].End != len("rm -rf / --no-preserve-root") {
		t.Fatalf("End %d", lines[0].End)
	}
	// What followed the denied Enter in the chunk was not taken as typed,
	// and the next line starts empty.
	b.Output([]byte(bashPrompt))
	lines = b.Input([]byte("echo ok\r"))
	if len(lines) != 1 || lines[0].Text != "echo ok" {
		t.Fatalf("after denial: %+v", lines)
	}
	// A denied line is not in the history.
	b.Output([]byte(bashPrompt))
	lines = b.Input([]byte("\x1b[A\x1b[A\r"))
	if len(lines) != 1 || lines[0].Text != "ls" {
		t.Fatalf("history after denial: %+v", lines)
	}
}
