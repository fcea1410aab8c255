// Copyright 2026 The Warden Authors. Warden patch, not part of x/crypto.

package ssh

import (
	"io"
	"sync"
	"sync/atomic"
)

// Warden patch: packet buffers that do not outlive bulk transfers.
//
// Upstream, each cipher keeps the largest packet buffer it ever needed
// (for reading, or for sealing), and each channel keeps the largest
// packet it ever wrote, for the life of the connection: after one bulk
// transfer, some 32 KiB each. A gateway holding a thousand connections
// that printed something large once, then idle, keeps a hundred MB that
// way. Here a buffer of up to packetBufKeep bytes is still kept (no
// allocation per packet for interactive traffic), while a larger one is
// taken from bigPackets for one packet and given back after it: a
// connection idle after bulk output holds only small buffers, and bulk
// output still allocates nothing per packet.
const (
	// packetBufKeep is the largest buffer kept between packets.
	packetBufKeep = 1024
	// bigPacketMin is the smallest buffer bigPackets makes: a full
	// 32 KiB channel packet (OpenSSH's and x/crypto's maximum packet
	// size) with its headers, padding and MAC, so that one size serves
	// nearly every large packet.
	bigPacketMin = 32<<10 + 512
)

var bigPackets sync.Pool // of *[]byte, each at least bigPacketMin

// packetBuffer returns a buffer of length n. Up to packetBufKeep it is
// *small, grown if need be and kept; above, it comes from bigPackets and
// is noted in *big until releasePacketBuffer. A buffer still noted in
// *big is released first.
func packetBuffer(small *[]byte, big **[]byte, n int) []byte {
	releasePacketBuffer(big)
	if n <= packetBufKeep {
		if cap(*small) < n {
			*small = make([]byte, n)
		}
		return (*small)[:n]
	}
	bp, _ := bigPackets.Get().(*[]byte)
	if bp == nil || cap(*bp) < n {
		b := make([]byte, max(n, bigPacketMin))
		bp = &b
	}
	*big = bp
	return (*bp)[:n]
}

// releasePacketBuffer gives back the large buffer noted in *big, if any.
// Whatever was in it must no longer be used.
func releasePacketBuffer(big **[]byte) {
	if *big != nil {
		bigPackets.Put(*big)
		*big = nil
	}
}

// writeBufSize is the size of flushWriter's buffer, that of the
// bufio.Writer it replaces.
const writeBufSize = 4096

var writeBufs = sync.Pool{New: func() any { b := make([]byte, writeBufSize); return &b }}

// flushWriter is the transport's write buffer (Warden patch). It behaves
// as the bufio.Writer upstream uses, whose 4 KiB buffer each connection
// held for its whole life, but holds a buffer from writeBufs only between
// a Write and the Flush that follows it: the transport flushes after
// every packet, so an idle connection holds none. Only the transport's
// writePacket, under the handshake's write lock, uses it.
type flushWriter struct {
	w   io.Writer
	buf *[]byte // from writeBufs while bytes wait in it
	n   int     // bytes waiting in *buf
	err error   // sticky, as bufio.Writer's
}

func newFlushWriter(w io.Writer) *flushWriter { return &flushWriter{w: w} }

func (f *flushWriter) Write(p []byte) (nn int, err error) {
	for len(p) > 0 && f.err == nil {
		if f.n == 0 && len(p) >= writeBufSize {
			// Large write, empty buffer: write directly, as bufio does.
			n, err := f.w.Write(p)
			nn += n
			if err != nil {
				f.err = err
			} else if n < len(p) {
				f.err = io.ErrShortWrite
			}
			return nn, f.err
		}
		if f.buf == nil {
			f.buf = writeBufs.Get().(*[]byte)
		}
		n := copy((*f.buf)[f.n:], p)
		f.n += n
		nn += n
		p = p[n:]
		if f.n == len(*f.buf) {
			f.flush()
		}
	}
	return nn, f.err
}

// Flush writes what waits and gives the buffer back.
func (f *flushWriter) Flush() error {
	f.flush()
	if f.buf != nil {
		writeBufs.Put(f.buf)
		f.buf = nil
	}
	return f.err
}

func (f *flushWriter) flush() {
	if f.err != nil || f.n == 0 {
		return
	}
	n, err := f.w.Write((*f.buf)[:f.n])
	if err == nil && n < f.n {
		err = io.ErrShortWrite
	}
	if err != nil {
		f.err = err
		return
	}
	f.n = 0
}

// readBufSmall is what readBuffer holds at all times; readBufSize the
// buffer it takes while data is queued, that of the bufio.Reader it
// replaces.
const (
	readBufSmall = 256
	readBufSize  = 4096
)

var readBufs = sync.Pool{New: func() any { b := make([]byte, readBufSize); return &b }}

// readBuffer is the transport's read buffer (Warden patch). Upstream a
// bufio.Reader, whose 4 KiB buffer each connection held for its whole
// life. A transport spends its life in a read that waits for the next
// packet, so here such a read fills a readBufSmall buffer of its own,
// enough for the packets of an interactive session; only after a read
// that filled its buffer (more is probably queued) does the next take a
// readBufSize buffer from readBufs, given back once drained. A read of
// readBufSize or more goes straight to the connection, as in bufio.
// Only the transport's read loop uses it.
type readBuffer struct {
	r     io.Reader
	small [readBufSmall]byte
	big   *[]byte // from readBufs while it holds unread bytes
	buf   []byte  // small[:] or *big
	p, n  int     // unread bytes are buf[p:n]
	full  bool    // the last read filled its buffer
	err   error   // returned once the unread bytes are read
}

func newReadBuffer(r io.Reader) *readBuffer { return &readBuffer{r: r} }

func (b *readBuffer) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.p == b.n {
		if err := b.err; err != nil {
			// An error that came with the last bytes, as in bufio.
			b.err = nil
			return 0, err
		}
		if len(p) >= readBufSize {
			n, err := b.r.Read(p)
			b.full = n == len(p)
			return n, err
		}
		b.fill()
		if b.p == b.n {
			b.release()
			err := b.err
			b.err = nil
			return 0, err
		}
	}
	k := copy(p, b.buf[b.p:b.n])
	b.p += k
	if b.p == b.n {
		b.release()
	}
	return k, nil
}

// fill reads once into the small buffer, or into a pooled one after a read
// that filled its buffer.
func (b *readBuffer) fill() {
	b.buf = b.small[:]
	if b.full {
		b.big = readBufs.Get().(*[]byte)
		b.buf = *b.big
	}
	n, err := b.r.Read(b.buf)
	b.p, b.n, b.full, b.err = 0, max(n, 0), n == len(b.buf), err
}

func (b *readBuffer) release() {
	b.p, b.n = 0, 0
	if b.big != nil {
		readBufs.Put(b.big)
		b.big = nil
	}
	b.buf = nil
}

// Warden patch: read packets recycled once their data is read.
//
// Upstream, connectionState.readPacket copies every packet it returns
// into a fresh allocation (the cipher reuses its own buffer for the next
// packet). For bulk output that is one 32 KiB allocation per 32 KiB
// relayed, which on a gateway is nearly all its garbage: the collector
// then runs every few megabytes and, with its mark workers and stops,
// costs more CPU than the ciphers. Here a packet of more than
// packetBufKeep bytes is copied into a buffer from readPackets, and a
// channel-data packet's buffer goes back to readPackets once the channel's
// reader has copied all its data out (buffer.Read). Every other packet is
// left to the collector, as upstream: decoded messages may keep slices of
// their packet (a request's payload, say), so only channel data, whose
// packet nothing references once read, is recycled.
//
// The buffers from readPackets have a capacity, readPacketCap, that no
// other allocation in this package makes, and readPacket hands them out
// from offset 0; recycleReadPacket takes back only a slice with exactly
// that capacity, which is therefore the whole buffer from its start, and
// only from a mux reading from a handshakeTransport, whose packets all come
// from readPacket. A buffer put back while referenced would hand one
// connection's bytes to another, hence these narrow rules.
const readPacketCap = bigPacketMin + 1

var readPackets sync.Pool // of *[]byte, each of capacity readPacketCap

// readPacketsMade counts the buffers of capacity readPacketCap that
// newReadPacket had to allocate, for the tests.
var readPacketsMade atomic.Int64

// newReadPacket returns a buffer of length n for a packet read off the
// wire: small ones allocated as upstream, others up to readPacketCap from
// readPackets.
func newReadPacket(n int) []byte {
	if n <= packetBufKeep || n > readPacketCap {
		return make([]byte, n)
	}
	if bp, _ := readPackets.Get().(*[]byte); bp != nil {
		return (*bp)[:n]
	}
	readPacketsMade.Add(1)
	return make([]byte, n, readPacketCap)
}

// recycleReadPacket gives p's buffer back to readPackets if it came from
// there (see above); p must not be used afterwards by anyone.
func recycleReadPacket(p []byte) {
	if cap(p) != readPacketCap {
		return
	}
	b := p[:readPacketCap]
	readPackets.Put(&b)
}
