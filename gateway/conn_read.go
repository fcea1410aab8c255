package gateway

import (
	"net"
	"sync"
	"syscall"
)

// readPool holds the readBufferSize buffers of burstReader, shared by all
// connections: only those whose socket holds data have one.
var readPool = sync.Pool{New: func() any { b := make([]byte, readBufferSize); return &b }}

// burstReader is the read side of an authenticated connection, to a
// client or to a managed host. On bulk output, a readBufferSize buffer
// under x/crypto's small one saves most read system calls; but such a
// buffer held by each of a thousand idle sessions would be most of what
// they cost. So the large buffer comes from readPool only to take in what
// the socket already holds (a read that does not wait), and goes back as
// soon as it is drained: a connection that waits for data holds none.
//
// Only x/crypto's read loop calls Read, so it needs no lock.
type burstReader struct {
	conn net.Conn
	raw  syscall.RawConn // nil: no descriptor to read without waiting; reads go straight to conn
	buf  *[]byte         // from readPool while it holds unread bytes
	r, w int             // unread bytes are (*buf)[r:w]
	more bool            // the last read filled all it was given: more is probably queued
}

func newBurstReader(c net.Conn) *burstReader {
	b := &burstReader{conn: c}
	if sc, ok := c.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			b.raw = raw
		}
	}
	return b
}

// Read returns buffered bytes if there are any. Otherwise, after a read
// that filled its buffer (bulk data), it takes in what the socket holds,
// up to readBufferSize, without waiting; when the socket holds nothing, or
// data trickles, it waits on the socket reading straight into p.
func (b *burstReader) Read(p []byte) (int, error) {
	if b.buf == nil && b.more && b.raw != nil && len(p) < readBufferSize {
		b.fill()
	}
	if b.buf != nil {
		n := copy(p, (*b.buf)[b.r:b.w])
		b.r += n
		if b.r == b.w {
			readPool.Put(b.buf)
			b.buf = nil
		}
		return n, nil
	}
	n, err := b.conn.Read(p)
	b.more = n == len(p)
	return n, err
}

// fill reads what the socket holds into a pooled buffer, without waiting.
// It leaves b.buf nil if the socket holds nothing, or on any error: the
// waiting read that follows reports the error or the end of the stream.
func (b *burstReader) fill() {
	bp := readPool.Get().(*[]byte)
	var n int
	var rerr error
	err := b.raw.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), *bp)
		return true // never wait here: EAGAIN means nothing is queued
	})
	if err != nil || rerr != nil || n <= 0 {
		readPool.Put(bp)
		b.more = false
		return
	}
	b.buf, b.r, b.w = bp, 0, n
	b.more = n == len(*bp)
}
