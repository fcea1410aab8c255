package transfer

import "fmt"

// sftpVersion is the only protocol version whose packets this parser reads.
const sftpVersion = 3

// hostPacket handles one host reply. Replies whose id matches no tracked
// request answer something that is not reported (a STAT, a READDIR, ...)
// and are ignored.
func (s *SFTP) hostPacket(body []byte, length uint32) error {
	d := decoder{b: body}
	typ := d.u8()
	if !s.started[1] {
		if typ != fxpVersion {
			return fmt.Errorf("transfer: sftp host began with packet type %d, not VERSION: %w", typ, ErrMalformed)
		}
		s.started[1] = true
	}
	if typ == fxpVersion {
		// Later versions change the packet layouts (attributes, open
		// flags, new request types); reading them as v3 would report
		// nonsense, so stopping is the honest outcome.
		v := d.u32()
		if err := d.check("version", nil); err != nil {
			return err
		}
		if v != sftpVersion {
			return fmt.Errorf("transfer: sftp version %d: %w", v, ErrVersion)
		}
		return nil
	}
	id := d.u32()
	switch typ {
	case fxpStatus:
		code := d.u32() // message and language tag follow; v3 servers may omit them
		return d.check("status", func() error { s.status(id, code); return nil })
	case fxpHandle:
		handle := d.str()
		return d.check("handle", func() error {
			r, ok := s.take(id)
			if !ok || r.typ != fxpOpen {
				return nil
			}
			return s.open(handle, r.f)
		})
	case fxpData:
		n := d.u32()
		if err := d.check("data", nil); err != nil {
			return err
		}
		// Bytes after the data are ignored, as OpenSSH's client ignores
		// them.
		if int64(length)-9 < int64(n) {
			return fmt.Errorf("transfer: sftp data length %d in a packet of %d bytes: %w", n, length, ErrMalformed)
		}
		if r, ok := s.take(id); ok && r.typ == fxpRead {
			s.reading, s.readN = r.f, int64(n)
		}
		return nil
	case fxpName, fxpAttrs, fxpExtendedReply:
		s.take(id)
		return d.check("reply", nil)
	}
	return nil
}

// status applies a STATUS reply to the request it answers.
func (s *SFTP) status(id, code uint32) {
	r, ok := s.take(id)
	if !ok {
		return
	}
	failed := code != fxOK
	switch r.typ {
	case reqPathOp:
		r.op.Failed = failed
		s.out = append(s.out, *r.op)
	case fxpOpen:
		// A STATUS instead of a HANDLE means the open was refused. It is
		// reported, marked failed, because a refused read of a sensitive
		// file is exactly what an auditor looks for.
		r.f.op.Failed = true
		s.out = append(s.out, r.f.op)
	case fxpClose:
		r.f.op.Failed = r.f.op.Failed || failed
		s.out = append(s.out, r.f.op)
	case fxpWrite:
		if failed {
			r.f.op.Failed = true
		} else {
			r.f.op.Bytes += r.n
		}
	case fxpRead:
		if code != fxEOF && failed {
			r.f.op.Failed = true
		}
	}
}

// readDone counts a DATA packet once all its data has passed.
func (s *SFTP) readDone() {
	if s.reading != nil {
		s.reading.op.Bytes += s.readN
		s.reading = nil
	}
}
