package transfer

import (
	"bytes"
	"fmt"
	"path"
	"strconv"
	"strings"
	"sync"
)

// scpState is where the protocol-bearing stream stands.
type scpState int

const (
	scpLine   scpState = iota // a message line: C, D, E or T
	scpAck                    // a C or D line waits for the receiver's answer
	scpBody                   // file bytes, counted and skipped
	scpStatus                 // the sender's status byte after a body
	scpText                   // the text of an error message, discarded
)

// SCP follows one legacy scp transfer and reports the files (and, for
// uploads, directories) it carries. The zero value is not usable; call
// NewSCP.
//
// Data takes the protocol-bearing direction and Reply the other one, the
// receiver's answers. Both must be fed, every chunk before it is forwarded:
// the parser holds the two sides to the lock-step that OpenSSH's scp keeps
// (the sender waits for the answer to each message before it goes on, and
// the receiver answers nothing it was not asked), because bytes outside
// that exchange are exactly how a program that merely calls itself scp
// would carry a shell. Data and Reply may be called from different
// goroutines.
type SCP struct {
	mu        sync.Mutex
	dir       Direction
	target    string
	recursive bool

	state  scpState
	line   []byte   // the message line being read
	dirs   []string // paths of the directories entered with D
	cur    *Op      // the file whose body is passing
	remain int64    // body bytes still to come
	ack    *expect  // the C or D line in scpAck

	expects []*expect // messages awaiting an answer, oldest first
	inText  bool      // the text of an error answer is passing
	text    []byte    // that text, or the sender's own error text

	out    []Op
	err    error
	closed bool
}

// NewSCP returns a parser for a transfer of the given direction whose exec
// named target (the PATH of `scp -t PATH` or `scp -f PATH`, unquoted, as
// ParseSCPCommand returns it); recursive is -r.
//
// Reported paths join the names in the protocol onto the target. For an
// upload the sink decides at run time whether target is a directory; the
// parser assumes it is, unless the top-level name equals the target's last
// element (`scp a.bin host:/tmp/a.bin`). A target ending in "/" (or ".",
// "..", "~") is always a directory. For a download, top-level names replace
// the target's last element, which also resolves globs (`scp -f '/tmp/*.log'`).
func NewSCP(dir Direction, target string, recursive bool) *SCP {
	// The receiver speaks first: its opening answer says it is ready.
	return &SCP{dir: dir, target: target, recursive: recursive, expects: []*expect{{kind: 'I'}}}
}

// Data parses bytes of the protocol-bearing direction (client→host for
// Upload, host→client for Download) and returns the operations they
// complete.
func (s *SCP) Data(p []byte) []Op {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.closed {
		return nil
	}
	s.out = nil
	s.err = s.feed(p)
	return s.out
}

// Close ends the transfer and reports the file cut short (with the bytes
// that passed) and files whose body passed but whose final answer never
// came. Files still waiting to be accepted are not reported: their outcome
// is unknown. Files are reported even after Err, since they were seen
// before parsing stopped. Later calls return nil.
func (s *SCP) Close() []Op {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	var ops []Op
	for _, e := range s.expects {
		if e.kind == 'F' {
			ops = append(ops, *e.op)
		}
	}
	if s.cur != nil && (s.state == scpBody || s.state == scpStatus) {
		ops = append(ops, *s.cur)
	}
	// A message or text cut off by the end of the stream has passed
	// without being understood; it is reported as it stands.
	if len(s.line) > 0 {
		ops = append(ops, Op{Kind: KindError, Path: "incomplete message: " + string(s.line)})
	}
	if len(s.text) > 0 {
		ops = append(ops, Op{Kind: KindError, Path: string(s.text)})
	}
	return ops
}

// Err reports why parsing stopped, or nil while it goes on. Once set it does
// not change.
func (s *SCP) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

func (s *SCP) feed(p []byte) error {
	for len(p) > 0 {
		switch s.state {
		case scpAck:
			// OpenSSH's scp waits for the answer to a C or D line before it
			// sends the body or the directory's contents. A sender that
			// does not is not scp, and its bytes must not pass as a file.
			return fmt.Errorf("transfer: scp sender went on before the answer to its %c message: %w", s.ack.kind, ErrMalformed)
		case scpBody:
			n := int64(len(p))
			if n > s.remain {
				n = s.remain
			}
			s.cur.Bytes += n
			s.remain -= n
			p = p[n:]
			if s.remain == 0 {
				s.state = scpStatus
			}
		case scpStatus:
			switch p[0] {
			case 0:
				s.state = scpLine
			case 1, 2:
				// The sender failed mid-file (a read error) and says so.
				s.cur.Failed = true
				s.state = scpText
			default:
				return fmt.Errorf("transfer: scp status byte %#x after file data: %w", p[0], ErrMalformed)
			}
			p = p[1:]
			if err := s.fileSent(s.cur); err != nil {
				return err
			}
			s.cur = nil
		case scpText:
			var done bool
			var err error
			p, done, err = s.errorText(p)
			if err != nil || !done {
				return err
			}
			s.state = scpLine
		case scpLine:
			if len(s.line) == 0 && len(s.expects) > 0 {
				// OpenSSH's scp sends nothing new before the answer to its
				// last message: see scpAck.
				return fmt.Errorf("transfer: scp sender went on before the answer to its %c message: %w", s.expects[0].kind, ErrMalformed)
			}
			if len(s.line) == 0 && (p[0] == 1 || p[0] == 2) {
				// An error message on its own: the sender could not send
				// something (a missing or unreadable file) and does not say
				// which in a parsable way. Report the attempt on the place
				// being transferred; the text follows as its own op.
				s.out = append(s.out, Op{Kind: s.fileKind(), Path: s.here(), Failed: true})
				s.state = scpText
				p = p[1:]
				continue
			}
			if len(s.line) == 0 && strings.IndexByte("CDET", p[0]) < 0 {
				// Judged on its first byte, so that not even the start of
				// something else (a shell command) reaches the receiver.
				return fmt.Errorf("transfer: scp message type %q: %w", p[0], ErrMalformed)
			}
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				if len(s.line)+len(p) > MaxPacket {
					return fmt.Errorf("transfer: scp message above %d bytes: %w", MaxPacket, ErrTooLarge)
				}
				s.line = append(s.line, p...)
				return nil
			}
			if len(s.line)+i > MaxPacket {
				return fmt.Errorf("transfer: scp message above %d bytes: %w", MaxPacket, ErrTooLarge)
			}
			line := string(append(s.line, p[:i]...))
			s.line = s.line[:0]
			p = p[i+1:]
			if err := s.message(line); err != nil {
				return err
			}
		}
	}
	return nil
}

// message handles one protocol line (without its newline).
func (s *SCP) message(line string) error {
	if line == "" {
		return fmt.Errorf("transfer: scp empty message: %w", ErrMalformed)
	}
	switch line[0] {
	case 'C', 'D':
		mode, size, name, err := parseEntry(line)
		if err != nil {
			return err
		}
		p, good := s.pathFor(name)
		e := &expect{kind: line[0], op: &Op{Kind: s.fileKind(), Path: p, Mode: mode, Failed: !good}, size: size}
		if line[0] == 'D' {
			if s.dir == Upload {
				e.op.Kind = KindMkdir
			}
			// The receiver refuses a directory without -r.
			e.op.Failed = e.op.Failed || !s.recursive
		}
		s.state, s.ack = scpAck, e
		return s.await(e)
	case 'E':
		if line != "E" {
			return fmt.Errorf("transfer: scp E message with text: %w", ErrMalformed)
		}
		if len(s.dirs) == 0 {
			return fmt.Errorf("transfer: scp end of directory outside one: %w", ErrMalformed)
		}
		s.dirs = s.dirs[:len(s.dirs)-1]
		return s.await(&expect{kind: 'E'})
	case 'T':
		// Times carry nothing the command log shows, but the line must be
		// one: anything else would be text passing unlogged.
		if !validTimes(line[1:]) {
			return fmt.Errorf("transfer: scp T message: bad times: %w", ErrMalformed)
		}
		return s.await(&expect{kind: 'T'})
	}
	return fmt.Errorf("transfer: scp message type %q: %w", line[0], ErrMalformed)
}

// accept goes on after the receiver took a C or D line: a file's body
// follows, or the directory is entered.
func (s *SCP) accept(e *expect) {
	s.ack = nil
	s.state = scpLine
	if e.kind == 'D' {
		s.dirs = append(s.dirs, e.op.Path)
		return
	}
	s.cur, s.remain = e.op, e.size
	s.state = scpBody
	if e.size == 0 {
		s.state = scpStatus
	}
}

// reportDir reports a D line once its outcome is known. An upload creates
// the directory on the host; a download reading one is like listing it and
// is reported only when it failed.
func (s *SCP) reportDir(e *expect) {
	if s.dir == Upload || e.op.Failed {
		s.out = append(s.out, *e.op)
	}
}

// fileSent waits for the final answer on a file whose body and status byte
// have passed.
func (s *SCP) fileSent(op *Op) error {
	return s.await(&expect{kind: 'F', op: op})
}

// fileKind is the kind of the files this transfer moves.
func (s *SCP) fileKind() string {
	if s.dir == Upload {
		return KindPut
	}
	return KindGet
}

// here is the directory being transferred, or the target at the top.
func (s *SCP) here() string {
	if len(s.dirs) > 0 {
		return s.dirs[len(s.dirs)-1]
	}
	return s.target
}

// pathFor joins a protocol name onto where the transfer stands. A name the
// receiver must refuse (empty, "..", or containing "/", the names a hostile
// sender uses to escape the target) is returned as sent, not joined, so the
// log shows exactly what was attempted; good is then false.
func (s *SCP) pathFor(name string) (p string, good bool) {
	if name == "" || name == ".." || strings.Contains(name, "/") {
		return name, false
	}
	if len(s.dirs) > 0 {
		return path.Join(s.dirs[len(s.dirs)-1], name), true
	}
	t := s.target
	if s.dir == Download {
		if trimmed := strings.TrimRight(t, "/"); trimmed != "" {
			t = trimmed
		}
		return path.Join(path.Dir(t), name), true
	}
	if !targetIsDir(t) && path.Base(t) == name {
		return path.Clean(t), true
	}
	return path.Join(t, name), true
}

// targetIsDir reports whether an upload target can only be a directory.
func targetIsDir(t string) bool {
	switch t {
	case "", ".", "..", "~":
		return true
	}
	return strings.HasSuffix(t, "/") || strings.HasSuffix(t, "/.") || strings.HasSuffix(t, "/..")
}

// parseEntry parses `Cmmmm size name` or `Dmmmm size name` exactly as
// OpenSSH's sink does: four octal digits, a space, decimal digits, a space,
// and the rest of the line as the name.
func parseEntry(line string) (mode uint32, size int64, name string, err error) {
	bad := func(what string) error {
		return fmt.Errorf("transfer: scp %c message: %s: %w", line[0], what, ErrMalformed)
	}
	if len(line) < 6 || line[5] != ' ' {
		return 0, 0, "", bad("mode not delimited")
	}
	for _, d := range line[1:5] {
		if d < '0' || d > '7' {
			return 0, 0, "", bad("bad mode")
		}
		mode = mode<<3 | uint32(d-'0')
	}
	rest := line[6:]
	sp := strings.IndexByte(rest, ' ')
	if sp < 1 {
		return 0, 0, "", bad("size not delimited")
	}
	for _, d := range rest[:sp] {
		if d < '0' || d > '9' {
			return 0, 0, "", bad("bad size")
		}
	}
	size, perr := strconv.ParseInt(rest[:sp], 10, 64)
	if perr != nil {
		return 0, 0, "", bad("size out of range")
	}
	return mode, size, rest[sp+1:], nil
}

// validTimes reports whether t is the rest of a T message as OpenSSH sends
// it and its sink accepts it: `MTIME 0 ATIME 0`, four decimal numbers, the
// microseconds below one million.
func validTimes(t string) bool {
	f := strings.Split(t, " ")
	if len(f) != 4 {
		return false
	}
	for i, n := range f {
		if n == "" || len(n) > 20 || (i%2 == 1 && len(n) > 6) {
			return false
		}
		for _, d := range n {
			if d < '0' || d > '9' {
				return false
			}
		}
	}
	return true
}
