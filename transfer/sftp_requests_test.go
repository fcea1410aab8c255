package transfer

import (
	"slices"
	"testing"
)

func TestSFTPOpenFlagsDecideGetOrPut(t *testing.T) {
	const excl = 0x20
	tests := []struct {
		name  string
		flags uint32
		kind  string
	}{
		{"read", flRead, KindGet},
		{"read exclusive", flRead | excl, KindGet},
		{"write", fxfWrite, KindPut},
		{"read and write", flRead | fxfWrite, KindPut},
		{"append", fxfAppend, KindPut},
		{"create", fxfCreat, KindPut},
		{"truncate", fxfTrunc, KindPut},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := feedSFTP([]msg{
				c(openPkt(1, "/f", tt.flags, noAttrs())), h(handlePkt(1, "h")),
				c(closePkt(2, "h")), h(statusPkt(2, fxOK)),
			}, whole)
			if want := []Op{{Kind: tt.kind, Path: "/f"}}; err != nil || !slices.Equal(got, want) {
				t.Fatalf("got %v, %v; want %v", got, err, want)
			}
		})
	}
}

func TestSFTPRequestsThatChangeNothingAreNotReported(t *testing.T) {
	conv := []msg{
		c(pathPkt(7, 1, "/x")), h(attrsPkt(1)), // LSTAT
		c(pathPkt(17, 2, "/x")), h(attrsPkt(2)), // STAT
		c(pathPkt(16, 3, ".")), h(namePkt(3, "/home")), // REALPATH
		c(pathPkt(19, 4, "/l")), h(namePkt(4, "/t")), // READLINK
		c(pathPkt(11, 5, "/d")), h(handlePkt(5, "d")), // OPENDIR
		c(pkt(12, be32(6), sstr("d"))), h(statusPkt(6, fxEOF)), // READDIR
		c(pkt(8, be32(7), sstr("d"))), h(attrsPkt(7)), // FSTAT
		c(pkt(fxpFsetstat, be32(8), sstr("d"), permAttrs(0o700))), h(statusPkt(8, fxOK)), // on a directory handle
		c(readPkt(9, "d", 0, 1)), h(statusPkt(9, 4)), // I/O on an untracked handle
		c(closePkt(10, "d")), h(statusPkt(10, fxOK)),
		c(extPkt(11, "fsync@openssh.com", sstr("d"))), h(statusPkt(11, fxOK)),
		c(extPkt(12, "limits@openssh.com")), h(pkt(fxpExtendedReply, be32(12), be64(1), be64(2), be64(3), be64(4))),
		c(pkt(99, be32(13))), h(statusPkt(13, 8)), // a request type v3 does not have
	}
	got, err := feedSFTP(conv, bytewise)
	if err != nil || len(got) != 0 {
		t.Fatalf("got %v, %v; want nothing", got, err)
	}
}
