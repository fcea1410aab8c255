package recorder

import (
	"bytes"
	"strings"
)

// clearLine is sent to the host in place of a denied line's submitting
// key. Each key is chosen to work whichever reader holds the line:
//   - Ctrl-G aborts a pending key sequence or an incremental search in
//     readline (after a stray ESC it is M-C-g, abort), and in zsh it is
//     send-break, which drops the whole, possibly multi-line, buffer;
//   - Ctrl-E Ctrl-U go to the end and kill back to the start: readline's
//     whole buffer, zsh's line, the tty driver's canonical line;
//   - CR then submits what is left, an empty line, so the shell prints a
//     fresh prompt.
//
// Inside a bracketed paste, pasteEnd goes first (see [LineBuilder.deny]).
const clearLine = "\x07\x05\x15\r"

// check asks the Guard about text and returns the rule that denies it, or
// "". A rule is a regular expression written for one command line, so it
// is asked about every way the shell may read text: the text itself; with
// the lines before it that a trailing backslash continued; and, for text
// of several lines (a paste, a continuation, a newline inserted with
// Alt-Enter), each line alone, the lines joined where a backslash
// continued them, and the lines joined with the newlines dropped (bash
// inserts nothing for Alt-Enter). Any reading that matches denies: the
// guard errs towards refusing.
func (b *LineBuilder) check(text string) string {
	if b.Guard == nil {
		return ""
	}
	try := func(s string) string {
		if s == "" {
			return ""
		}
		return b.Guard(s)
	}
	if rule := try(text); rule != "" {
		return rule
	}
	if b.shown != "" && b.shown != text {
		// What the screen shows (tab completion, history, search, undo).
		if rule := try(b.shown); rule != "" {
			return rule
		}
	}
	if b.cont != "" {
		if rule := try(b.cont + text); rule != "" {
			return rule
		}
	}
	if strings.ContainsAny(text, "\x7f\x08\x15\x17") {
		// Erase keys kept as characters (no terminal on this side) are
		// applied by a terminal further on: a program such as script or
		// python's pty.spawn runs the shell on a pty of the host's own.
		if rule := try(ttyEdit(text)); rule != "" {
			return rule
		}
	}
	if !strings.ContainsAny(text, "\r\n") {
		return ""
	}
	for _, s := range []string{strings.ReplaceAll(text, "\\\n", ""), strings.ReplaceAll(text, "\n", "")} {
		if rule := try(s); rule != "" {
			return rule
		}
	}
	for rest := text; rest != ""; {
		line := rest
		if k := strings.IndexAny(rest, "\r\n"); k >= 0 {
			line, rest = rest[:k], rest[k+1:]
		} else {
			rest = ""
		}
		if rule := try(line); rule != "" {
			return rule
		}
	}
	return ""
}

// continued returns what the shell holds of a command after text was
// submitted: a line that ends in an odd number of backslashes continues on
// the next one (the backslash and newline vanish); any other line ends the
// command. The result is capped like a line, and cut reports that it lost
// its end to the cap.
func continued(cont, text string) (_ string, cut bool) {
	n := len(text) - len(strings.TrimRight(text, "\\"))
	if n%2 == 0 {
		return "", false
	}
	cont += text[:len(text)-1]
	if len(cont) > MaxLineBytes {
		cont, cut = cont[:MaxLineBytes], true
	}
	return cont, cut
}

// checkPasted asks the Guard, inside a bracketed paste, about the line a
// pasted newline just ended. bash and zsh keep a pasted newline in the
// line until Enter, but the host chose to announce the paste mode, and a
// reader that does not honour it (the tty driver under sh, after a program
// turned the mode on) runs the line at that newline. The line checked is
// the one before the cursor, so a long paste costs one check per line.
func (b *LineBuilder) checkPasted(end int) {
	if b.Guard == nil || b.scr.alt {
		return
	}
	if b.ed.truncated {
		// The paste outgrew the cap: the lines its newlines end are no
		// longer in the buffer, and such a reader would run them unseen.
		b.refuse(string(b.ed.buf), TooLongRule, end, true)
		return
	}
	buf := b.ed.buf[:b.ed.cur]
	start := bytes.LastIndexByte(buf[:max(len(buf)-1, 0)], '\n') + 1
	line := string(buf[start:])
	if blank(line) {
		return
	}
	if rule := b.check(line); rule != "" {
		b.refuse(string(b.ed.buf), rule, end, b.ed.truncated)
	}
}

// rewrite returns what to send to the host for p when its bytes from stop
// on are not sent (a denied line's key and what followed it) and pasteEnd
// follows each index in b.inject.
func (b *LineBuilder) rewrite(p []byte, stop int, denied bool) []byte {
	if !denied && len(b.inject) == 0 {
		return p
	}
	out := make([]byte, 0, stop+len(b.inject)*len(pasteEnd)+len(b.clear))
	from := 0
	for _, i := range b.inject {
		if i >= stop {
			break
		}
		out = append(append(out, p[from:i+1]...), pasteEnd...)
		from = i + 1
	}
	out = append(out, p[from:stop]...)
	if denied {
		out = append(out, b.clear...)
	}
	return out
}

// ttyEdit applies what the tty driver's canonical mode does with erase
// (DEL, BS), kill (Ctrl-U) and word erase (Ctrl-W) to text.
func ttyEdit(text string) string {
	out := make([]rune, 0, len(text))
	for _, r := range text {
		switch r {
		case 0x7f, 0x08:
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		case 0x15:
			out = out[:0]
		case 0x17:
			for len(out) > 0 && (out[len(out)-1] == ' ' || out[len(out)-1] == '\t') {
				out = out[:len(out)-1]
			}
			for len(out) > 0 && out[len(out)-1] != ' ' && out[len(out)-1] != '\t' {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, r)
		}
	}
	return string(out)
}
