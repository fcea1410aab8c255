package recorder

import (
	"hash"
	"os"
)

// castFile writes a recording's bytes at their offsets in its file and
// feeds them, in the same order, to the file's SHA-256.
//
// Bulk output goes to the disk without the page cache (O_DIRECT) where the
// file system takes it: a recording is written once and seldom read back,
// and copying it into the page cache was the largest single cost of
// recording (a quarter of the gateway's CPU on bulk output, before the
// kernel's own work writing those pages back and reclaiming them). Only
// whole, aligned blocks of at least directMin bytes go direct, so an
// interactive session's small flushes stay in the page cache as before; the
// partial blocks at either end of a bulk write go through the page cache,
// and the two never touch the same block. Whatever direct I/O refuses (a
// file system without it, an alignment it does not take, a full disk) is
// written again through the page cache at the same offset, which gives the
// error a buffered write gives, and direct I/O is not tried again on that
// file.
type castFile struct {
	f      *os.File
	sum    hash.Hash
	direct direct // nil: no direct I/O on this file
	// directBytes counts what went direct, for tests; written by the
	// spool's goroutine, read after the spool is closed.
	directBytes int64
}

const (
	// directAlign is the block size direct writes are lined up with: the
	// page size, a multiple of every common logical block size.
	directAlign = 4096
	// directMin is the least a direct write carries: below it the page
	// cache's copy costs less than waiting on the device.
	directMin = 64 << 10
)

// direct is a file's direct-I/O writer: write sets O_DIRECT on the
// descriptor if it is not set and writes p at off in one system call;
// buffered clears O_DIRECT. Both report whether they succeeded.
type direct interface {
	write(p []byte, off int64) (int, bool)
	buffered() bool
}

func newCastFile(f *os.File, sum hash.Hash) *castFile {
	return &castFile{f: f, sum: sum, direct: newDirect(f)}
}

// align is the block size bulk buffers should line up with, 0 if this file
// takes no direct writes.
func (c *castFile) align() int {
	if c.direct == nil {
		return 0
	}
	return directAlign
}

// writeAt writes p at off, then hashes it: after a failed write the digest
// is never used.
func (c *castFile) writeAt(p []byte, off int64) error {
	if err := c.write(p, off); err != nil {
		return err
	}
	c.sum.Write(p)
	return nil
}

func (c *castFile) write(p []byte, off int64) error {
	head, mid, ok := c.directSpan(p, off)
	if !ok {
		return c.buffered(p, off)
	}
	if err := c.buffered(p[:head], off); err != nil {
		return err
	}
	n, ok := c.direct.write(p[head:head+mid], off+int64(head))
	if !ok {
		// Not again on this file; the rest goes buffered.
		c.direct.buffered()
		c.direct = nil
	}
	c.directBytes += int64(n)
	head += n
	return c.buffered(p[head:], off+int64(head))
}

// directSpan returns the part of p, written at off, that may go direct:
// p[head:head+mid], whole blocks both in the file and in memory, at least
// directMin bytes; ok is false when there is none.
func (c *castFile) directSpan(p []byte, off int64) (head, mid int, ok bool) {
	if c.direct == nil || len(p) < directMin {
		return 0, 0, false
	}
	head = int((directAlign - off%directAlign) % directAlign)
	if head >= len(p) {
		return 0, 0, false
	}
	mid = (len(p) - head) &^ (directAlign - 1)
	return head, mid, mid >= directMin && lineUp(p[head:], off+int64(head), directAlign) == 0
}

// buffered writes p at off through the page cache.
func (c *castFile) buffered(p []byte, off int64) error {
	if len(p) == 0 {
		return nil
	}
	if c.direct != nil && !c.direct.buffered() {
		c.direct = nil
	}
	_, err := c.f.WriteAt(p, off)
	return err
}
