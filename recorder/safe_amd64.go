//go:build amd64 && !purego

package recorder

import "golang.org/x/sys/cpu"

// haveAVX2 is whether unsafeMasks may use the AVX2 scan.
var haveAVX2 = cpu.X86.HasAVX2

// unsafeMasksAVX2 is in safe_amd64.s.
//
//go:noescape
func unsafeMasksAVX2(p []byte, masks []uint32) int

// unsafeMasks sets masks[k], for each whole 32-byte block k of p while k <
// len(masks), to the bits of the block's bytes that jsonSafe rejects (bit b
// for byte 32k+b), and returns how many blocks it did: 0 without AVX2.
//
// Why assembly: escaping a session's output into its cast runs on every
// byte a session prints, on the bridge's goroutine, and appendEscaped's
// eight-byte loop managed about 2 GB/s on plain text, about as slow as the
// recording's SHA-256. This looks at 32 bytes per step, and appendEscaped
// then visits only the bytes that need escaping.
func unsafeMasks(p []byte, masks []uint32) int {
	if !haveAVX2 {
		return 0
	}
	return unsafeMasksAVX2(p, masks)
}
