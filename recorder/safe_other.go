//go:build !amd64 || purego

package recorder

// haveAVX2 is false: there is no block scan here.
var haveAVX2 = false

// unsafeMasks is the portable stand-in for the AVX2 scan of safe_amd64.go:
// it does no block, and appendEscaped's eight-byte loop does the work.
func unsafeMasks(p []byte, masks []uint32) int { return 0 }
