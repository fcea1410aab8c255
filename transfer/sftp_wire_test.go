package transfer

import (
	"errors"
	"slices"
	"testing"
)

func TestDecoderAttrs(t *testing.T) {
	tests := []struct {
		name  string
		attrs []byte
		mode  uint32
		bad   bool
	}{
		{"no attributes", noAttrs(), 0, false},
		{"permissions only", permAttrs(0o100644), 0o644, false},
		{"setuid bits kept", permAttrs(0o4755), 0o4755, false},
		{"every attribute", fullAttrs(0o600), 0o600, false},
		{"size and times without permissions", slices.Concat(be32(attrSize|attrACModTime), be64(1), be32(1), be32(2)), 0, false},
		{"missing permissions field", be32(attrPermissions), 0, true},
		{"missing flags", []byte{0, 0}, 0, true},
		{"extended pairs past the end", slices.Concat(be32(attrExtended), be32(3), sstr("a"), sstr("b")), 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := decoder{b: append(slices.Clone(tt.attrs), 0xEE)}
			mode := d.attrs()
			if d.bad != tt.bad || (!tt.bad && mode != tt.mode) {
				t.Fatalf("attrs() = %o, bad %v; want %o, bad %v", mode, d.bad, tt.mode, tt.bad)
			}
			if !tt.bad && (len(d.b) != 1 || d.b[0] != 0xEE) {
				t.Fatalf("attrs() left %x, want the trailing byte only", d.b)
			}
		})
	}
}

func TestDecoderStopsAtTheFirstShortField(t *testing.T) {
	d := decoder{b: slices.Concat(be32(7), be32(100), []byte("abc"))}
	if v := d.u32(); v != 7 || d.bad {
		t.Fatalf("u32() = %d, bad %v", v, d.bad)
	}
	if s := d.str(); s != "" || !d.bad {
		t.Fatalf("str() past the end = %q, bad %v", s, d.bad)
	}
	if d.u8() != 0 || d.u64() != 0 {
		t.Fatal("reads after a short field returned data")
	}
	if err := d.check("x", func() error { t.Fatal("then ran on a bad packet"); return nil }); !errors.Is(err, ErrMalformed) {
		t.Fatalf("check() = %v", err)
	}
}

func TestFramerDeliversPacketsAndSkipsData(t *testing.T) {
	stream := slices.Concat(
		pathPkt(fxpRemove, 1, "/a"),
		writePkt(2, "h", 0, []byte("0123456789")),
		pkt(fxpWrite, be32(3), sstr("h"), be64(0), be32(0)),
		pathPkt(fxpRmdir, 4, "/d"),
	)
	for _, split := range []func([]byte) [][]byte{whole, bytewise, randomChunks(3)} {
		f := framer{skipType: fxpWrite}
		var got []string
		packet := func(body []byte, length uint32) error {
			got = append(got, string(body)+"|"+string(be32(length)))
			return nil
		}
		done := func() { got = append(got, "done") }
		for _, p := range split(stream) {
			if err := f.feed(p, packet, done); err != nil {
				t.Fatal(err)
			}
		}
		want := []string{
			string(pathPkt(fxpRemove, 1, "/a")[4:]) + "|" + string(be32(11)),
			// the whole WRITE is shorter than the prefix bound, so the
			// body arrives with its data and nothing is left to skip
			string(writePkt(2, "h", 0, []byte("0123456789"))[4:]) + "|" + string(be32(32)), "done",
			string(pkt(fxpWrite, be32(3), sstr("h"), be64(0), be32(0))[4:]) + "|" + string(be32(22)), "done",
			string(pathPkt(fxpRmdir, 4, "/d")[4:]) + "|" + string(be32(11)),
		}
		if !slices.Equal(got, want) {
			t.Fatalf("got %q\nwant %q", got, want)
		}
	}
}

func TestFramerBuffersOnlyTheWritePrefix(t *testing.T) {
	data := make([]byte, 10*writePrefix)
	stream := writePkt(1, "h", 0, data)
	f := framer{skipType: fxpWrite}
	var bodyLen, doneCalls int
	for _, p := range bytewise(stream) {
		err := f.feed(p, func(body []byte, length uint32) error {
			bodyLen = len(body)
			if int(length) != len(stream)-4 {
				t.Fatalf("length %d, want %d", length, len(stream)-4)
			}
			return nil
		}, func() { doneCalls++ })
		if err != nil {
			t.Fatal(err)
		}
	}
	if bodyLen != writePrefix || doneCalls != 1 {
		t.Fatalf("buffered %d bytes and finished %d times, want %d and 1", bodyLen, doneCalls, writePrefix)
	}
}
