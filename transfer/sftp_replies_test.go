package transfer

import (
	"slices"
	"testing"
)

func TestSFTPReportsEachOperationWhenItsReplyArrives(t *testing.T) {
	s := startedSFTP()
	s.ClientData(slices.Concat(initPkt(), pathPkt(fxpRemove, 1, "/x")))
	s.HostData(versionPkt())
	if got := s.ClientData(pathPkt(fxpRmdir, 2, "/d")); got != nil {
		t.Fatalf("request alone reported %v", got)
	}
	got := s.HostData(statusPkt(2, fxOK))
	if want := []Op{{Kind: KindRmdir, Path: "/d"}}; !slices.Equal(got, want) {
		t.Fatalf("reply to rmdir: got %v, want %v", got, want)
	}
	got = s.HostData(statusPkt(1, fxOK))
	if want := []Op{{Kind: KindRemove, Path: "/x"}}; !slices.Equal(got, want) {
		t.Fatalf("out-of-order reply to remove: got %v, want %v", got, want)
	}
	if got := s.HostData(statusPkt(1, fxOK)); got != nil {
		t.Fatalf("second reply to the same id reported %v", got)
	}
}

func TestSFTPStatusOutcomes(t *testing.T) {
	tests := []struct {
		name string
		conv []msg
		want []Op
	}{
		{"EOF on read is not a failure", []msg{
			c(openPkt(1, "/f", flRead, noAttrs())), h(handlePkt(1, "h")),
			c(readPkt(2, "h", 0, 10)), h(statusPkt(2, fxEOF)),
			c(closePkt(3, "h")), h(statusPkt(3, fxOK))},
			[]Op{{Kind: KindGet, Path: "/f"}}},
		{"read error marks the get failed", []msg{
			c(openPkt(1, "/f", flRead, noAttrs())), h(handlePkt(1, "h")),
			c(readPkt(2, "h", 0, 10)), h(statusPkt(2, 4)),
			c(closePkt(3, "h")), h(statusPkt(3, fxOK))},
			[]Op{{Kind: KindGet, Path: "/f", Failed: true}}},
		{"failed close marks the put failed", []msg{
			c(openPkt(1, "/f", flPutNew, noAttrs())), h(handlePkt(1, "h")),
			c(writePkt(2, "h", 0, []byte("abc"))), h(statusPkt(2, fxOK)),
			c(closePkt(3, "h")), h(statusPkt(3, 4))},
			[]Op{{Kind: KindPut, Path: "/f", Bytes: 3, Failed: true}}},
		{"a reply of the wrong type drops the request", []msg{
			c(pathPkt(fxpRemove, 1, "/x")), h(handlePkt(1, "h")),
			c(writePkt(2, "h", 0, []byte("abc"))), h(statusPkt(2, fxOK))},
			nil},
		{"a reused handle reports the file it replaces", []msg{
			c(openPkt(1, "/a", flRead, noAttrs())), h(handlePkt(1, "h")),
			c(openPkt(2, "/b", flRead, noAttrs())), h(handlePkt(2, "h"))},
			[]Op{{Kind: KindGet, Path: "/a"}, {Kind: KindGet, Path: "/b"}}},
		{"status without message and language is accepted", []msg{
			c(pathPkt(fxpRemove, 1, "/x")), h(pkt(fxpStatus, be32(1), be32(fxOK)))},
			[]Op{{Kind: KindRemove, Path: "/x"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := feedSFTP(tt.conv, whole)
			if err != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}
