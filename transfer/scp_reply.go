package transfer

import (
	"bytes"
	"fmt"
)

// maxExpects caps the answers an SCP parser waits for. The lock-step rule
// keeps at most one outstanding; the cap is a second line of defence for
// memory, should that rule ever be loosened.
const maxExpects = 1024

// expect is a message of the sender that the receiver will answer: one
// byte, 0 for yes, or 1 or 2 followed by an error text and a newline.
type expect struct {
	kind byte  // 'I' the receiver's opening, 'T', 'E', 'C', 'D', 'F' a file's final answer
	op   *Op   // C, D and F: the operation the answer decides
	size int64 // C: the body length
}

// Reply parses bytes of the direction that does not carry the protocol:
// the receiver's one-byte answers (host→client for Upload, client→host for
// Download). With the answers, a file the receiver refuses (a write to a
// path it may not create, for instance) is reported as failed instead of
// being mistaken for the start of a body, and a failed final write marks
// its file failed. An error answer's text is reported as a KindError op.
//
// Every byte must answer a message of the sender: the receiver speaks
// first (its opening answer), then once per message. A byte that answers
// nothing stops the parser with ErrMalformed, since such bytes would
// otherwise be a channel nobody logs.
func (s *SCP) Reply(p []byte) []Op {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.closed || len(p) == 0 {
		return nil
	}
	s.out = nil
	s.err = s.reply(p)
	return s.out
}

func (s *SCP) reply(p []byte) error {
	for len(p) > 0 {
		if s.inText {
			var done bool
			var err error
			p, done, err = s.errorText(p)
			if err != nil || !done {
				return err
			}
			s.inText = false
			continue
		}
		b := p[0]
		p = p[1:]
		if len(s.expects) == 0 {
			return fmt.Errorf("transfer: scp answer %#x to no message: %w", b, ErrMalformed)
		}
		// Like OpenSSH's response(), any byte but 0 starts an error text.
		s.inText = b != 0
		e := s.expects[0]
		s.expects = s.expects[1:]
		s.answered(e, b == 0)
	}
	return nil
}

// errorText collects an error text up to its newline, reporting it as a
// KindError op once complete. It returns the bytes after the text and
// whether the text ended. A text longer than MaxPacket stops the parser:
// it could not be logged whole.
func (s *SCP) errorText(p []byte) (rest []byte, done bool, err error) {
	i := bytes.IndexByte(p, '\n')
	end := i
	if i < 0 {
		end = len(p)
	}
	if len(s.text)+end > MaxPacket {
		return nil, false, fmt.Errorf("transfer: scp error text above %d bytes: %w", MaxPacket, ErrTooLarge)
	}
	s.text = append(s.text, p[:end]...)
	if i < 0 {
		return nil, false, nil
	}
	s.out = append(s.out, Op{Kind: KindError, Path: string(s.text)})
	s.text = s.text[:0]
	return p[i+1:], true, nil
}

// answered applies the receiver's answer to the message it answers.
func (s *SCP) answered(e *expect, yes bool) {
	switch e.kind {
	case 'C', 'D':
		if yes {
			s.accept(e)
		} else {
			// Refused: the sender skips the file's body, or the
			// directory's contents and its E, and goes on.
			e.op.Failed = true
			s.state, s.ack = scpLine, nil
			if e.kind == 'C' {
				s.out = append(s.out, *e.op)
			}
		}
		if e.kind == 'D' {
			s.reportDir(e)
		}
	case 'F':
		e.op.Failed = e.op.Failed || !yes
		s.out = append(s.out, *e.op)
	}
}

// await queues a message for its answer.
func (s *SCP) await(e *expect) error {
	if len(s.expects) >= maxExpects {
		return fmt.Errorf("transfer: scp sender ran %d messages ahead of the answers: %w", maxExpects, ErrLimit)
	}
	s.expects = append(s.expects, e)
	return nil
}
