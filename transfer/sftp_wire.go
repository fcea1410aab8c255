package transfer

import (
	"encoding/binary"
	"fmt"
)

// SFTP v3 packet types (draft-ietf-secsh-filexfer-02, section 3).
const (
	fxpInit          = 1
	fxpVersion       = 2
	fxpOpen          = 3
	fxpClose         = 4
	fxpRead          = 5
	fxpWrite         = 6
	fxpSetstat       = 9
	fxpFsetstat      = 10
	fxpRemove        = 13
	fxpMkdir         = 14
	fxpRmdir         = 15
	fxpRename        = 18
	fxpSymlink       = 20
	fxpStatus        = 101
	fxpHandle        = 102
	fxpData          = 103
	fxpName          = 104
	fxpAttrs         = 105
	fxpExtended      = 200
	fxpExtendedReply = 201
)

// SFTP open flags (pflags) that make an OPEN a write.
const (
	fxfWrite  = 0x02
	fxfAppend = 0x04
	fxfCreat  = 0x08
	fxfTrunc  = 0x10
)

// Attribute flags, in the order their fields follow.
const (
	attrSize        = 0x00000001
	attrUIDGID      = 0x00000002
	attrPermissions = 0x00000004
	attrACModTime   = 0x00000008
	attrExtended    = 0x80000000
)

// Status codes that matter here.
const (
	fxOK  = 0
	fxEOF = 1
)

// maxHandle is the longest handle the draft allows (section 3.1). The
// prefix of a WRITE packet, which is all that is buffered of it, has room
// for no longer one.
const maxHandle = 256

// writePrefix is how much of a WRITE packet is buffered: type, id, handle,
// offset and the data length. DATA's prefix (type, id, length) is shorter.
const writePrefix = 1 + 4 + 4 + maxHandle + 8 + 4

// keepBuf is the largest packet buffer kept between packets.
const keepBuf = 32 << 10

// decoder reads SFTP fields from one buffered packet. The first field that
// runs past the end marks it bad and makes every later read return zero, so
// a handler reads all fields and checks ok once.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) u8() byte {
	if d.bad || len(d.b) < 1 {
		d.bad = true
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

func (d *decoder) u32() uint32 {
	if d.bad || len(d.b) < 4 {
		d.bad = true
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) u64() uint64 {
	if d.bad || len(d.b) < 8 {
		d.bad = true
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

// str reads a length-prefixed string. The copy is deliberate: the packet
// buffer is reused for the next packet.
func (d *decoder) str() string {
	n := d.u32()
	if d.bad || uint64(n) > uint64(len(d.b)) {
		d.bad = true
		return ""
	}
	v := string(d.b[:n])
	d.b = d.b[n:]
	return v
}

// attrs reads an ATTRS structure and returns its permission bits, 0 when
// absent.
func (d *decoder) attrs() uint32 {
	flags := d.u32()
	var mode uint32
	if flags&attrSize != 0 {
		d.u64()
	}
	if flags&attrUIDGID != 0 {
		d.u32()
		d.u32()
	}
	if flags&attrPermissions != 0 {
		mode = d.u32() & 0o7777
	}
	if flags&attrACModTime != 0 {
		d.u32()
		d.u32()
	}
	if flags&attrExtended != 0 {
		// Each pair takes at least eight bytes, so a count beyond what is
		// left fails on the first missing pair instead of looping long.
		for n := d.u32(); n > 0 && !d.bad; n-- {
			d.str()
			d.str()
		}
	}
	return mode
}

// framer splits one direction of an SFTP stream into packets: a uint32
// length, then that many bytes starting with the type. Packets are buffered
// whole, up to MaxPacket, except those of skipType (WRITE from the client,
// DATA from the host): of those only the prefix up to the data length is
// buffered and the data is counted off without being kept.
type framer struct {
	skipType byte

	hdr    [4]byte
	hn     int    // bytes of hdr filled
	length uint32 // length of the current packet
	buf    []byte // buffered body of the current packet
	want   int    // body bytes to buffer before the packet is handled
	skip   int64  // data bytes still to pass unbuffered
}

// frameHandler receives a buffered packet body (for skipType packets, only
// its prefix) and the packet's full length.
type frameHandler func(body []byte, length uint32) error

// feed consumes p. It calls packet for each buffered body and done after the
// skipped data of a skipType packet has passed.
func (f *framer) feed(p []byte, packet frameHandler, done func()) error {
	for len(p) > 0 {
		if f.skip > 0 {
			n := int64(len(p))
			if n > f.skip {
				n = f.skip
			}
			f.skip -= n
			p = p[n:]
			if f.skip == 0 {
				done()
			}
			continue
		}
		if f.hn < len(f.hdr) {
			n := copy(f.hdr[f.hn:], p)
			f.hn += n
			p = p[n:]
			if f.hn < len(f.hdr) {
				return nil
			}
			f.length = binary.BigEndian.Uint32(f.hdr[:])
			if f.length == 0 {
				return fmt.Errorf("transfer: sftp packet of length 0: %w", ErrMalformed)
			}
			f.buf = f.buf[:0]
			f.want = 1 // the type decides how much to buffer
		}
		n := min(f.want-len(f.buf), len(p))
		f.buf = append(f.buf, p[:n]...)
		p = p[n:]
		if len(f.buf) < f.want {
			continue
		}
		if f.want == 1 {
			switch {
			case f.buf[0] == f.skipType:
				f.want = int(min(f.length, writePrefix))
			case f.length > MaxPacket:
				return fmt.Errorf("transfer: sftp packet type %d of %d bytes: %w", f.buf[0], f.length, ErrTooLarge)
			default:
				f.want = int(f.length)
			}
			if len(f.buf) < f.want {
				continue
			}
		}
		if err := packet(f.buf, f.length); err != nil {
			return err
		}
		f.hn = 0
		if f.buf[0] == f.skipType {
			f.skip = int64(f.length) - int64(len(f.buf))
			if f.skip == 0 {
				done()
			}
		}
		if cap(f.buf) > keepBuf {
			f.buf = nil // an idle session should not pin a big buffer
		}
	}
	return nil
}
