package transfer

import (
	"bytes"
	"fmt"
)

// maxExpects caps the answers an SCP parser waits for. An honest sender
// waits for each answer before it goes on, so one or two are outstanding;
// the cap only stops a sender that floods messages from growing memory.
const maxExpects = 1024

// expect is a message of the sender that the receiver will answer: one
// byte, 0 for yes, or 1 or 2 followed by an error text and a newline.
type expect struct {
	kind     byte  // 'I' the receiver's opening, 'T', 'E', 'C', 'D', 'F' a file's final answer
	op       *Op   // C, D and F: the operation the answer decides
	size     int64 // C: the body length
	accepted bool  // C and D: the parser went on as if the answer were yes
}

// reply is the state kept for the receiver's answers.
type reply struct {
	acked    bool      // answers are followed
	dataSeen bool      // Data has been called, so it is too late to follow answers
	expects  []*expect // messages awaiting an answer, oldest first
	inText   bool      // the text of an error answer is passing
}

// Reply parses bytes of the direction that does not carry the protocol:
// the receiver's one-byte answers (host→client for Upload, client→host for
// Download). Feeding it is optional, but it must then start before the
// first Data byte, which it always does in a real stream: the receiver
// speaks first. With the answers, a file the receiver refuses (a write to a
// path it may not create, for instance) is reported as failed instead of
// being mistaken for the start of a body, and a failed final write marks
// its file failed. If Data came first, Reply is ignored.
func (s *SCP) Reply(p []byte) []Op {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil || s.closed || len(p) == 0 {
		return nil
	}
	if !s.acked {
		if s.dataSeen {
			return nil
		}
		s.acked = true
		s.expects = []*expect{{kind: 'I'}}
	}
	s.out = nil
	for len(p) > 0 {
		if s.inText {
			i := bytes.IndexByte(p, '\n')
			if i < 0 {
				break
			}
			p = p[i+1:]
			s.inText = false
			continue
		}
		b := p[0]
		p = p[1:]
		// Like OpenSSH's response(), any byte but 0 starts an error text.
		s.inText = b != 0
		if len(s.expects) == 0 {
			continue // nothing was asked: stray output, which the sender ignores too
		}
		e := s.expects[0]
		s.expects = s.expects[1:]
		s.answered(e, b == 0)
	}
	return s.out
}

// answered applies the receiver's answer to the message it answers.
func (s *SCP) answered(e *expect, yes bool) {
	switch e.kind {
	case 'C', 'D':
		if !yes {
			e.op.Failed = true
		}
		if !e.accepted {
			if yes {
				s.accept(e)
			} else {
				// Refused: the sender skips the file's body, or the
				// directory's contents and its E, and goes on.
				s.state, s.ack = scpLine, nil
			}
			if e.kind == 'C' && !yes {
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

// awaitAnswer queues a message whose answer changes nothing, when answers
// are followed.
func (s *SCP) awaitAnswer(kind byte) error {
	if !s.acked {
		return nil
	}
	return s.await(&expect{kind: kind})
}
