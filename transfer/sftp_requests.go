package transfer

import "fmt"

// OpenSSH extensions (PROTOCOL in the OpenSSH sources) that act on files.
const (
	extPosixRename = "posix-rename@openssh.com"
	extHardlink    = "hardlink@openssh.com"
	extLsetstat    = "lsetstat@openssh.com"
	extCopyData    = "copy-data"
)

// clientPacket handles one client request. Requests that only read
// metadata or list directories (STAT, REALPATH, OPENDIR, READDIR, ...) and
// unknown extensions are not tracked: they change nothing and are not
// reported.
func (s *SFTP) clientPacket(body []byte, length uint32) error {
	d := decoder{b: body}
	typ := d.u8()
	if !s.started[0] {
		// sftp-server ends the session on anything before INIT; so does
		// this parser, so that a subsystem that is not SFTP cannot pass
		// bytes as if it were.
		if typ != fxpInit {
			return fmt.Errorf("transfer: sftp client began with packet type %d, not INIT: %w", typ, ErrMalformed)
		}
		s.started[0] = true
	}
	if typ == fxpInit {
		d.u32()
		return d.check("init", nil)
	}
	id := d.u32()
	switch typ {
	case fxpOpen:
		path, flags, mode := d.str(), d.u32(), d.attrs()
		op := Op{Kind: KindGet, Path: path, Mode: mode}
		// Read+write counts as a put: the file may have been changed, and
		// an auditor must not see a write as a mere read.
		if flags&(fxfWrite|fxfAppend|fxfCreat|fxfTrunc) != 0 {
			op.Kind = KindPut
		}
		return d.check("open", func() error {
			s.seq++
			f := &file{op: op, seq: s.seq}
			return s.await(id, request{typ: typ, f: f, cost: entryCost + len(path)})
		})
	case fxpClose:
		handle := d.str()
		return d.check("close", func() error {
			if f := s.closeHandle(handle); f != nil {
				// The path stays held until the reply: the file is
				// reported then.
				return s.await(id, request{typ: typ, f: f, cost: entryCost + len(f.op.Path)})
			}
			return nil
		})
	case fxpRead:
		handle := d.str()
		d.u64()
		d.u32()
		return d.check("read", func() error { return s.awaitIO(id, typ, handle, 0) })
	case fxpWrite:
		handle := d.str()
		d.u64()
		n := d.u32()
		// Bytes after the data are ignored, as sftp-server ignores them;
		// the write is reported with the data length it names.
		if !d.bad && int64(length)-int64(len(body)-len(d.b)) < int64(n) {
			return fmt.Errorf("transfer: sftp write data length %d in a packet of %d bytes: %w", n, length, ErrMalformed)
		}
		return d.check("write", func() error { return s.awaitIO(id, typ, handle, int64(n)) })
	case fxpSetstat:
		path, mode := d.str(), d.attrs()
		return s.awaitOp(&d, "setstat", id, Op{Kind: KindSetstat, Path: path, Mode: mode})
	case fxpFsetstat:
		handle, mode := d.str(), d.attrs()
		f := s.handles[handle]
		if f == nil {
			return d.check("fsetstat", nil)
		}
		return s.awaitOp(&d, "fsetstat", id, Op{Kind: KindSetstat, Path: f.op.Path, Mode: mode})
	case fxpRemove:
		return s.awaitOp(&d, "remove", id, Op{Kind: KindRemove, Path: d.str()})
	case fxpMkdir:
		path, mode := d.str(), d.attrs()
		return s.awaitOp(&d, "mkdir", id, Op{Kind: KindMkdir, Path: path, Mode: mode})
	case fxpRmdir:
		return s.awaitOp(&d, "rmdir", id, Op{Kind: KindRmdir, Path: d.str()})
	case fxpRename:
		from, to := d.str(), d.str()
		return s.awaitOp(&d, "rename", id, Op{Kind: KindRename, Path: from, Path2: to})
	case fxpSymlink:
		// OpenSSH sends the target first and the link second, the reverse
		// of the draft; every widespread client and server follows OpenSSH,
		// so the bytes mean what OpenSSH's sftp-server makes of them.
		target, link := d.str(), d.str()
		return s.awaitOp(&d, "symlink", id, Op{Kind: KindSymlink, Path: link, Path2: target})
	case fxpExtended:
		return s.extended(&d, id)
	}
	return nil
}

// extended handles the OpenSSH extensions that change files.
func (s *SFTP) extended(d *decoder, id uint32) error {
	switch name := d.str(); name {
	case extPosixRename:
		from, to := d.str(), d.str()
		return s.awaitOp(d, name, id, Op{Kind: KindRename, Path: from, Path2: to})
	case extHardlink:
		existing, link := d.str(), d.str()
		return s.awaitOp(d, name, id, Op{Kind: KindLink, Path: link, Path2: existing})
	case extLsetstat:
		path, mode := d.str(), d.attrs()
		return s.awaitOp(d, name, id, Op{Kind: KindSetstat, Path: path, Mode: mode})
	case extCopyData:
		// The host copies between two open handles, so file contents
		// change without a WRITE: report it, naming the files behind the
		// handles (empty when a handle is not a tracked file).
		from := d.str()
		d.u64()
		d.u64()
		to := d.str()
		d.u64()
		return s.awaitOp(d, name, id, Op{Kind: KindCopy, Path: s.handlePath(from), Path2: s.handlePath(to)})
	}
	return d.check("extended", nil)
}

// handlePath is the path of the file open under handle, or "".
func (s *SFTP) handlePath(handle string) string {
	if f := s.handles[handle]; f != nil {
		return f.op.Path
	}
	return ""
}

// awaitOp records a path operation, reported when the host answers it.
func (s *SFTP) awaitOp(d *decoder, what string, id uint32, op Op) error {
	return d.check(what, func() error {
		return s.await(id, request{typ: reqPathOp, op: &op, cost: entryCost + len(op.Path) + len(op.Path2)})
	})
}

// awaitIO records a READ or WRITE on a tracked handle; I/O on unknown
// handles (directories, or files opened before parsing began) is ignored.
func (s *SFTP) awaitIO(id uint32, typ byte, handle string, n int64) error {
	f := s.handles[handle]
	if f == nil {
		return nil
	}
	return s.await(id, request{typ: typ, f: f, n: n})
}

// check returns ErrMalformed when a field ran past the packet, and
// otherwise runs then (when not nil). Trailing bytes are tolerated, as
// OpenSSH's sftp-server tolerates them.
func (d *decoder) check(what string, then func() error) error {
	if d.bad {
		return fmt.Errorf("transfer: sftp %s packet truncated: %w", what, ErrMalformed)
	}
	if then == nil {
		return nil
	}
	return then()
}
