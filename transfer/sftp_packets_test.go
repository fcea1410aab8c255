package transfer

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// This file encodes SFTP v3 packets for the tests, independently of the
// parser's decoder, and feeds conversations split in every way.

func be32(v uint32) []byte { return binary.BigEndian.AppendUint32(nil, v) }
func be64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }
func sstr(s string) []byte { return append(be32(uint32(len(s))), s...) }

// pkt frames a packet: uint32 length, type, fields.
func pkt(typ byte, fields ...[]byte) []byte {
	body := []byte{typ}
	for _, f := range fields {
		body = append(body, f...)
	}
	return append(be32(uint32(len(body))), body...)
}

// noAttrs is an ATTRS with no fields; permAttrs carries permissions only.
func noAttrs() []byte { return be32(0) }
func permAttrs(mode uint32) []byte {
	return slices.Concat(be32(attrPermissions), be32(mode))
}

// fullAttrs carries every v3 attribute, with one extended pair.
func fullAttrs(mode uint32) []byte {
	return slices.Concat(be32(attrSize|attrUIDGID|attrPermissions|attrACModTime|attrExtended),
		be64(1234), be32(1000), be32(1000), be32(mode), be32(1), be32(2), be32(1), sstr("x@y"), sstr("z"))
}

func initPkt() []byte { return pkt(fxpInit, be32(3)) }

// startedSFTP returns a parser past the INIT and VERSION exchange.
func startedSFTP() *SFTP {
	s := NewSFTP()
	s.ClientData(initPkt())
	s.HostData(versionPkt())
	return s
}
func versionPkt() []byte {
	return pkt(fxpVersion, be32(3), sstr("posix-rename@openssh.com"), sstr("1"))
}
func openPkt(id uint32, path string, flags uint32, attrs []byte) []byte {
	return pkt(fxpOpen, be32(id), sstr(path), be32(flags), attrs)
}
func closePkt(id uint32, h string) []byte { return pkt(fxpClose, be32(id), sstr(h)) }
func readPkt(id uint32, h string, off uint64, n uint32) []byte {
	return pkt(fxpRead, be32(id), sstr(h), be64(off), be32(n))
}
func writePkt(id uint32, h string, off uint64, data []byte) []byte {
	return pkt(fxpWrite, be32(id), sstr(h), be64(off), sstr(string(data)))
}
func pathPkt(typ byte, id uint32, paths ...string) []byte {
	fields := [][]byte{be32(id)}
	for _, p := range paths {
		fields = append(fields, sstr(p))
	}
	return pkt(typ, fields...)
}
func extPkt(id uint32, name string, fields ...[]byte) []byte {
	return pkt(fxpExtended, slices.Concat(append([][]byte{be32(id), sstr(name)}, fields...)...))
}
func statusPkt(id, code uint32) []byte {
	return pkt(fxpStatus, be32(id), be32(code), sstr(fmt.Sprintf("code %d", code)), sstr(""))
}
func handlePkt(id uint32, h string) []byte { return pkt(fxpHandle, be32(id), sstr(h)) }
func dataPkt(id uint32, data []byte) []byte {
	return pkt(fxpData, be32(id), sstr(string(data)))
}
func attrsPkt(id uint32) []byte { return pkt(fxpAttrs, be32(id), permAttrs(0o644)) }
func namePkt(id uint32, name string) []byte {
	return pkt(fxpName, be32(id), be32(1), sstr(name), sstr(name), noAttrs())
}

// msg is one run of bytes in one direction of a conversation. Runs are in
// causal order: a reply never precedes its request.
type msg struct {
	host bool
	b    []byte
}

func c(parts ...[]byte) msg { return msg{b: slices.Concat(parts...)} }
func h(parts ...[]byte) msg { return msg{host: true, b: slices.Concat(parts...)} }

// feedSFTP feeds a conversation, each run cut into pieces by split, and
// returns every op including Close's, and the final error.
func feedSFTP(conv []msg, split func(run []byte) [][]byte) ([]Op, error) {
	s := startedSFTP()
	var ops []Op
	for _, m := range conv {
		for _, piece := range split(m.b) {
			if m.host {
				ops = append(ops, s.HostData(piece)...)
			} else {
				ops = append(ops, s.ClientData(piece)...)
			}
		}
	}
	err := s.Err()
	return append(ops, s.Close()...), err
}

func whole(run []byte) [][]byte { return [][]byte{run} }

func bytewise(run []byte) [][]byte {
	out := make([][]byte, len(run))
	for i := range run {
		out[i] = run[i : i+1]
	}
	return out
}

// randomChunks returns a splitter that cuts runs at random points from a
// fixed seed, so a failure reproduces.
func randomChunks(seed uint64) func([]byte) [][]byte {
	r := rand.New(rand.NewPCG(seed, seed))
	return func(run []byte) [][]byte {
		var out [][]byte
		for len(run) > 0 {
			n := min(1+r.IntN(64), len(run))
			if r.IntN(8) == 0 {
				n = min(1+r.IntN(4096), len(run))
			}
			out = append(out, run[:n])
			run = run[n:]
		}
		return out
	}
}

// assertSplitInvariant checks that a conversation yields want however its
// runs are cut: whole, byte by byte, at every single boundary of every run,
// and at random points.
func assertSplitInvariant(t *testing.T, conv []msg, feed func([]msg, func([]byte) [][]byte) ([]Op, error), want []Op) {
	t.Helper()
	check := func(how string, split func([]byte) [][]byte) {
		t.Helper()
		got, err := feed(conv, split)
		if err != nil {
			t.Fatalf("%s: Err() = %v", how, err)
		}
		if !slices.Equal(got, want) {
			t.Fatalf("%s: ops differ\n got: %v\nwant: %v", how, got, want)
		}
	}
	check("whole runs", whole)
	check("byte by byte", bytewise)
	for i := range conv {
		for k := 1; k < len(conv[i].b); k++ {
			check(fmt.Sprintf("run %d split at %d", i, k), func(run []byte) [][]byte {
				if &run[0] == &conv[i].b[0] {
					return [][]byte{run[:k], run[k:]}
				}
				return [][]byte{run}
			})
		}
	}
	for seed := range uint64(20) {
		check(fmt.Sprintf("random chunks seed %d", seed), randomChunks(seed))
	}
}
