package recorder

// A shell without a terminal (ssh -T, input piped into ssh, a client that
// asks for "shell" without "pty-req", or an exec of a shell that reads its
// standard input) reads a pipe. Nothing edits or echoes its input: no tty
// driver turns DEL into an erase or Ctrl-C into a signal, and no line
// editor runs. The shell's parser gets the bytes as they were sent, and a
// command line ends at LF:
//   - CR is an ordinary character (a CRLF line ends in a CR that bash
//     keeps in the last word); backspace, Ctrl-C, ESC are characters too;
//   - a line that ends in an odd number of backslashes continues on the
//     next one, so the logical line runs only at the LF that ends it;
//   - at end of input, a last line without LF still runs.
//
// So a line is what came before its LF, byte for byte (as UTF-8, with
// U+FFFD for bytes that are not). With nothing to echo it there is no
// password to withhold either: every line is logged as it was sent.
//
// A denied line must never reach the shell, not even in part: a shell
// that then reads end of input runs a last line that has no LF. So the
// line in progress is held back, not sent, until its LF has been seen and
// the Guard has allowed it. A line that outgrows [MaxLineBytes] cannot be
// held. Under a Guard it is denied ([TooLongRule], unless a rule matched
// its start): a rule asked about the start says nothing about the rest,
// and the rest would flow unchecked. Without a Guard it is sent as it
// comes, and logged [Line.Truncated].

// pipeState is the part of a LineBuilder that serves a shell reading a
// pipe.
type pipeState struct {
	on     bool
	held   []byte // the start of the line in progress, not yet sent
	cut    int    // bytes of the current chunk that may be sent
	stream bool   // the line in progress outgrew the hold and is sent as it comes (no Guard)
}

// NewPipeLineBuilder returns an empty LineBuilder for a shell that reads a
// pipe rather than a terminal.
func NewPipeLineBuilder() *LineBuilder {
	b := new(LineBuilder)
	b.pipe.on = true
	return b
}

// forwardPipe is Forward without a terminal.
func (b *LineBuilder) forwardPipe(p []byte) ([]Line, []byte) {
	ps := &b.pipe
	ps.cut = 0
	for i, c := range p {
		b.pipeByte(c, i)
		if b.denied {
			// The lines before the denied one go; the denied line and
			// everything after it are dropped, and no more is held.
			b.denied = false
			send := ps.sendable(p)
			ps.held = ps.held[:0]
			ps.stream = false
			b.in = keyParser{}
			return b.take(), send
		}
	}
	send := ps.sendable(p)
	ps.held = append(ps.held, p[ps.cut:]...)
	if !ps.stream && len(ps.held) > MaxLineBytes {
		// Too long to hold. Under a Guard it is refused: a rule that did
		// not match its start may match what follows (unanchored, or
		// after NULs, which the shell drops and the hold counts). Without
		// one it flows.
		text := string(b.ed.buf)
		rule := b.check(text)
		if rule == "" && b.Guard != nil {
			rule = TooLongRule
		}
		if rule != "" {
			b.refuse(text, rule, -1, b.ed.truncated)
			b.denied = false
			ps.held = ps.held[:0]
			b.in = keyParser{}
			return b.take(), send
		}
		ps.stream = true
		send = append(send[:len(send):len(send)], ps.held...)
		ps.held = ps.held[:0]
	}
	return b.take(), send
}

// sendable returns the held bytes and p[:cut], and forgets the held ones.
func (ps *pipeState) sendable(p []byte) []byte {
	if len(ps.held) == 0 {
		return p[:ps.cut]
	}
	if ps.cut == 0 {
		return nil
	}
	send := append(append(make([]byte, 0, len(ps.held)+ps.cut), ps.held...), p[:ps.cut]...)
	ps.held = ps.held[:0]
	return send
}

// pipeByte handles p[i] = c.
func (b *LineBuilder) pipeByte(c byte, i int) {
	ps := &b.pipe
	if ps.stream {
		ps.cut = i + 1
	}
	if b.utf8Byte(c, true) {
		return
	}
	if c != '\n' {
		b.text(rune(c), true)
		return
	}
	if oddBackslashes(b.ed.buf) {
		b.text('\n', true)
		return
	}
	text, truncated := b.ed.take()
	b.open = false
	streamed := ps.stream
	ps.stream = false
	if blank(text) {
		ps.cut = i + 1
		return
	}
	// A line streams only without a Guard; its bytes are gone, so there
	// is nothing to deny.
	if !streamed && b.deny(text, i, truncated) {
		return
	}
	ps.cut = i + 1
	b.lines = append(b.lines, Line{Text: text, End: i, Truncated: truncated})
}

// oddBackslashes reports whether p ends in an odd number of backslashes.
func oddBackslashes(p []byte) bool {
	n := 0
	for n < len(p) && p[len(p)-1-n] == '\\' {
		n++
	}
	return n%2 == 1
}

// endPipe is EndInput without a terminal: the line in progress runs.
func (b *LineBuilder) endPipe() ([]Line, []byte) {
	ps := &b.pipe
	b.endRune()
	text, truncated := b.ed.take()
	held := ps.held
	ps.held = nil
	streamed := ps.stream
	ps.stream = false
	if blank(text) {
		return nil, held
	}
	if !streamed && b.deny(text, -1, truncated) {
		b.denied = false
		return b.take(), nil
	}
	b.lines = append(b.lines, Line{Text: text, End: -1, Truncated: truncated})
	return b.take(), held
}

// flushPipe is Flush without a terminal. A held line never reached the
// host; a streaming one did, in part, and runs when the shell reads end of
// input.
func (b *LineBuilder) flushPipe() []Line {
	ps := &b.pipe
	b.endRune()
	text, truncated := b.ed.take()
	if !blank(text) {
		b.lines = append(b.lines, Line{Text: text, End: -1, Truncated: truncated, Unsubmitted: !ps.stream})
	}
	ps.held, ps.stream = nil, false
	return b.take()
}

// endRune ends a rune cut short by the end of input as U+FFFD.
func (b *LineBuilder) endRune() {
	if b.in.nrune > 0 {
		b.in.nrune = 0
		b.text(0xfffd, true)
	}
}
