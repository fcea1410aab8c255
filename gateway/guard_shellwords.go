package gateway

import "strings"

// The words of an exec command, as the login shell on the host splits
// them, for readsShellInput. What this gets wrong decides whether a
// client's input is checked at all, so where the text cannot be followed
// (an unterminated quote or substitution, nesting past maxParseDepth) the
// parse fails closed: a command whose name expands is added, which
// readsShellInput reads as "may be a shell".

// substMark stands in a word for what a substitution ($(...), `...`,
// ${...}, <(...), >(...)) expands to. It holds a '$', so such a word in
// command position, or as a shell's operand, is one that expands.
const substMark = "$(...)"

// maxParseDepth bounds nested substitutions and subshells.
const maxParseDepth = 32

// simpleCommands splits a command line into its simple commands' words,
// the way a POSIX shell (and bash) splits them: quotes and backslashes
// are removed; the operators ; & | ( ) and newline end a command;
// redirections (2>/dev/null, <x, <<<, 2>&1, &>x) are dropped with their
// target, so they are never taken for operands; the text of a command
// substitution ($(...), `...`, <(...), also inside double quotes and
// ${...}) is split into commands of its own, and in the word where it
// stood it leaves substMark. It does not expand anything.
func simpleCommands(command string) [][]string {
	p := &wordParser{s: command}
	p.list(0, true)
	if p.unsure {
		p.cmds = append(p.cmds, []string{substMark})
	}
	return p.cmds
}

// wordParser reads s from i; cmds collects the simple commands found, at
// every nesting level.
type wordParser struct {
	s      string
	i      int
	depth  int
	cmds   [][]string
	unsure bool // the text could not be followed: see simpleCommands
}

// list reads simple commands up to stop: 0 the end of the text, ')' the
// end of a subshell or $(...), '}' the end of ${...}. keep is false for
// the inside of ${...}, which is a word, not commands (a substitution in
// it still is one).
func (p *wordParser) list(stop byte, keep bool) {
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxParseDepth {
		p.unsure, p.i = true, len(p.s)
		return
	}
	var words []string
	var word strings.Builder
	inWord := false
	target := false // the next word is a redirection's target
	endWord := func() {
		if inWord {
			if !target {
				words = append(words, word.String())
			}
			target = false
			word.Reset()
			inWord = false
		}
	}
	endCmd := func() {
		endWord()
		target = false
		if keep && len(words) > 0 {
			p.cmds = append(p.cmds, words)
		}
		words = nil
	}
	for p.i < len(p.s) {
		c := p.s[p.i]
		hasNext := p.i+1 < len(p.s)
		var next byte
		if hasNext {
			next = p.s[p.i+1]
		}
		switch {
		case stop != 0 && c == stop:
			p.i++
			endCmd()
			return
		case c == '\\' && hasNext:
			if next != '\n' {
				word.WriteByte(next)
				inWord = true
			}
			p.i += 2
		case c == '\'':
			k := strings.IndexByte(p.s[p.i+1:], '\'')
			if k < 0 {
				p.unsure, k = true, len(p.s)-p.i-1
			}
			word.WriteString(p.s[p.i+1 : p.i+1+k])
			inWord = true
			p.i += k + 2
		case c == '"':
			p.i++
			p.dquote(&word)
			inWord = true
		case c == '$' || c == '`':
			p.expansion(&word)
			inWord = true
		case (c == '<' || c == '>') && hasNext && next == '(':
			// Process substitution: its commands run, and the word is a
			// path to their output (bash <(cat) reads our input).
			p.i += 2
			p.list(')', true)
			word.WriteString(substMark)
			inWord = true
		case c == '<' || c == '>' || c == '&' && hasNext && next == '>':
			// A redirection: 2>x, {fd}>x, >&2, <<<word. The file
			// descriptor before it is part of it, not a word.
			if inWord && c != '&' && isRedirectFD(word.String()) {
				word.Reset()
				inWord = false
			} else {
				endWord()
			}
			p.i += redirectLen(p.s[p.i:])
			target = true
		case c == '(':
			endCmd()
			p.i++
			p.list(')', true)
		case strings.IndexByte(";&|)\n", c) >= 0:
			endCmd()
			p.i++
		case c == ' ' || c == '\t':
			endWord()
			p.i++
		case c == '#' && !inWord && stop != '}':
			// A comment runs to the end of the line (${#x} is a length).
			for p.i < len(p.s) && p.s[p.i] != '\n' {
				p.i++
			}
		default:
			word.WriteByte(c)
			inWord = true
			p.i++
		}
	}
	if stop != 0 {
		p.unsure = true
	}
	endCmd()
}

// dquote reads a double-quoted string after its opening quote into w: a
// backslash escapes only $ ` " \ and newline, and substitutions inside
// still run.
func (p *wordParser) dquote(w *strings.Builder) {
	for p.i < len(p.s) {
		c := p.s[p.i]
		switch {
		case c == '"':
			p.i++
			return
		case c == '\\' && p.i+1 < len(p.s) && strings.IndexByte("$`\"\\\n", p.s[p.i+1]) >= 0:
			if p.s[p.i+1] != '\n' {
				w.WriteByte(p.s[p.i+1])
			}
			p.i += 2
		case c == '$' || c == '`':
			p.expansion(w)
		default:
			w.WriteByte(c)
			p.i++
		}
	}
	p.unsure = true
}

// expansion reads what starts with the '$' or '`' at p.i into w. A
// substitution's commands are added as commands, and w gets substMark;
// a parameter ($SHELL) or $'...' stays as text, '$' included.
func (p *wordParser) expansion(w *strings.Builder) {
	if p.s[p.i] == '`' {
		p.backquote()
		w.WriteString(substMark)
		return
	}
	if p.i+1 < len(p.s) {
		switch p.s[p.i+1] {
		case '(': // $(...) and $((...)), whose inner ( is a subshell's
			p.i += 2
			p.list(')', true)
			w.WriteString(substMark)
			return
		case '{':
			p.i += 2
			p.list('}', false)
			w.WriteString(substMark)
			return
		}
	}
	w.WriteByte('$')
	p.i++
}

// backquote reads `...` at p.i. Inside, \\ \` and \$ lose their
// backslash, so a nested \`...\` becomes a substitution in its turn; the
// text is then split into commands like any other.
func (p *wordParser) backquote() {
	var body strings.Builder
	for p.i++; p.i < len(p.s); p.i++ {
		c := p.s[p.i]
		if c == '`' {
			p.i++
			sub := &wordParser{s: body.String(), depth: p.depth}
			sub.list(0, true)
			p.cmds = append(p.cmds, sub.cmds...)
			p.unsure = p.unsure || sub.unsure
			return
		}
		if c == '\\' && p.i+1 < len(p.s) && strings.IndexByte("\\`$", p.s[p.i+1]) >= 0 {
			p.i++
			c = p.s[p.i]
		}
		body.WriteByte(c)
	}
	p.unsure = true
}

// redirectLen is the length of the redirection operator that s starts
// with ('<', '>' or "&>").
func redirectLen(s string) int {
	for _, op := range []string{"<<<", "<<-", "&>>", "<<", "<&", "<>", ">>", ">&", ">|", "&>"} {
		if strings.HasPrefix(s, op) {
			return len(op)
		}
	}
	return 1
}

// isRedirectFD reports the file descriptor written before a redirection:
// digits (2>) or bash's {name} (a new descriptor).
func isRedirectFD(w string) bool {
	if w != "" && strings.Trim(w, "0123456789") == "" {
		return true
	}
	return len(w) > 2 && w[0] == '{' && w[len(w)-1] == '}' && isAssignment(w[1:len(w)-1]+"=")
}
