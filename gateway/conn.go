package gateway

import (
	"bufio"
	"net"
)

// readBufferSize is the read buffer put under each SSH connection.
// x/crypto/ssh reads through a 4 KiB bufio.Reader, so a 32 KiB data packet
// costs several read system calls; with a larger buffer beneath it, one
// read takes in several packets, which is most of the gateway's cost on
// bulk output.
const readBufferSize = 256 << 10

// bufferedConn is a net.Conn whose reads go through a large buffer.
type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func newBufferedConn(c net.Conn) net.Conn {
	return &bufferedConn{Conn: c, r: bufio.NewReaderSize(c, readBufferSize)}
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
