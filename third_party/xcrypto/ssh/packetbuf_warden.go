// Copyright 2026 The Warden Authors. Warden patch, not part of x/crypto.

package ssh

import "sync"

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
