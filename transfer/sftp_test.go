package transfer

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
)

const (
	flRead   = 0x01
	flPutNew = fxfWrite | fxfCreat | fxfTrunc
)

// session is a conversation that exercises every reported operation, with
// pipelined writes and reads, a reused handle, and requests that are not
// reported (stat, directory listing).
func session() ([]msg, []Op) {
	up := bytes.Repeat([]byte("u"), 1000)
	conv := []msg{
		c(initPkt()), h(versionPkt()),
		c(pathPkt(16, 1, ".")), h(namePkt(1, "/home/alice")), // REALPATH, not reported
		// put: two pipelined writes, acknowledged, then close.
		c(openPkt(2, "/up/a.bin", flPutNew, permAttrs(0o644))), h(handlePkt(2, "h0")),
		c(writePkt(3, "h0", 0, up), writePkt(4, "h0", 1000, up[:500])),
		h(statusPkt(3, fxOK), statusPkt(4, fxOK)),
		c(pkt(fxpFsetstat, be32(5), sstr("h0"), fullAttrs(0o600))), h(statusPkt(5, fxOK)),
		c(closePkt(6, "h0")), h(statusPkt(6, fxOK)),
		// get: the host reuses handle h0; a short read then EOF.
		c(pathPkt(17, 7, "/etc/hosts")), h(attrsPkt(7)), // STAT, not reported
		c(openPkt(8, "/etc/hosts", flRead, noAttrs())), h(handlePkt(8, "h0")),
		c(readPkt(9, "h0", 0, 32768), readPkt(10, "h0", 32768, 32768)),
		h(dataPkt(9, []byte(strings.Repeat("127.0.0.1 localhost\n", 35)))), h(statusPkt(10, fxEOF)),
		c(closePkt(11, "h0")), h(statusPkt(11, fxOK)),
		// refused open and refused remove are reported as failed attempts.
		c(openPkt(12, "/etc/shadow", flRead, noAttrs())), h(statusPkt(12, 3)),
		c(pathPkt(fxpRemove, 13, "/etc/passwd")), h(statusPkt(13, 3)),
		c(pathPkt(fxpRemove, 14, "/tmp/old")), h(statusPkt(14, fxOK)),
		c(pathPkt(fxpRename, 15, "/tmp/a", "/tmp/b")), h(statusPkt(15, fxOK)),
		c(extPkt(16, extPosixRename, sstr("/tmp/b"), sstr("/tmp/c"))), h(statusPkt(16, fxOK)),
		c(extPkt(17, extHardlink, sstr("/tmp/c"), sstr("/tmp/hard"))), h(statusPkt(17, fxOK)),
		c(pathPkt(fxpSymlink, 18, "/etc/motd", "/tmp/soft")), h(statusPkt(18, fxOK)),
		c(pkt(fxpMkdir, be32(19), sstr("/tmp/d"), permAttrs(0o755))), h(statusPkt(19, fxOK)),
		c(pathPkt(fxpRmdir, 20, "/tmp/d")), h(statusPkt(20, fxOK)),
		c(pkt(fxpSetstat, be32(21), sstr("/tmp/c"), permAttrs(0o4755))), h(statusPkt(21, fxOK)),
		c(extPkt(22, extLsetstat, sstr("/tmp/soft"), noAttrs())), h(statusPkt(22, 2)),
		c(extPkt(23, "statvfs@openssh.com", sstr("/"))), h(pkt(fxpExtendedReply, be32(23), be64(1))),
		// a server-side copy between two handles.
		c(openPkt(40, "/src", flRead, noAttrs()), openPkt(41, "/dst", flPutNew, noAttrs())),
		h(handlePkt(40, "hs"), handlePkt(41, "hd")),
		c(extPkt(42, extCopyData, sstr("hs"), be64(0), be64(0), sstr("hd"), be64(0))), h(statusPkt(42, fxOK)),
		c(closePkt(43, "hs"), closePkt(44, "hd")), h(statusPkt(43, fxOK), statusPkt(44, fxOK)),
		// a directory listing is not reported, nor is closing its handle.
		c(pathPkt(11, 24, "/tmp")), h(handlePkt(24, "d1")),
		c(pkt(12, be32(25), sstr("d1"))), h(namePkt(25, "x")),
		c(closePkt(26, "d1")), h(statusPkt(26, fxOK)),
		// read+write opens are puts; a write the host refuses marks it failed.
		c(openPkt(27, "/var/db", flRead|fxfWrite, noAttrs())), h(handlePkt(27, "h1")),
		c(writePkt(28, "h1", 0, up[:10])), h(statusPkt(28, 4)),
		c(closePkt(29, "h1")), h(statusPkt(29, fxOK)),
		// an append open left unclosed is reported by Close with its bytes.
		c(openPkt(30, "/var/log/x", fxfAppend, noAttrs())), h(handlePkt(30, "h2")),
		c(writePkt(31, "h2", 0, up[:7])), h(statusPkt(31, fxOK)),
	}
	want := []Op{
		{Kind: KindSetstat, Path: "/up/a.bin", Mode: 0o600},
		{Kind: KindPut, Path: "/up/a.bin", Bytes: 1500, Mode: 0o644},
		{Kind: KindGet, Path: "/etc/hosts", Bytes: 700},
		{Kind: KindGet, Path: "/etc/shadow", Failed: true},
		{Kind: KindRemove, Path: "/etc/passwd", Failed: true},
		{Kind: KindRemove, Path: "/tmp/old"},
		{Kind: KindRename, Path: "/tmp/a", Path2: "/tmp/b"},
		{Kind: KindRename, Path: "/tmp/b", Path2: "/tmp/c"},
		{Kind: KindLink, Path: "/tmp/hard", Path2: "/tmp/c"},
		{Kind: KindSymlink, Path: "/tmp/soft", Path2: "/etc/motd"},
		{Kind: KindMkdir, Path: "/tmp/d", Mode: 0o755},
		{Kind: KindRmdir, Path: "/tmp/d"},
		{Kind: KindSetstat, Path: "/tmp/c", Mode: 0o4755},
		{Kind: KindSetstat, Path: "/tmp/soft", Failed: true},
		{Kind: KindCopy, Path: "/src", Path2: "/dst"},
		{Kind: KindGet, Path: "/src"},
		{Kind: KindPut, Path: "/dst"},
		{Kind: KindPut, Path: "/var/db", Failed: true},
		{Kind: KindPut, Path: "/var/log/x", Bytes: 7},
	}
	return conv, want
}

func TestSFTPReportsOperationsHoweverTheStreamIsSplit(t *testing.T) {
	conv, want := session()
	assertSplitInvariant(t, conv, feedSFTP, want)
}

func TestSFTPCountsLargeTransfersWithoutBuffering(t *testing.T) {
	const size = 3 << 20 // WRITE and DATA packets far above MaxPacket
	s := startedSFTP()
	s.ClientData(openPkt(1, "/big", flPutNew, noAttrs()))
	s.HostData(handlePkt(1, "h"))
	hdr := slices.Concat(be32(uint32(1+4+4+1+8+4+size)), []byte{fxpWrite}, be32(2), sstr("h"), be64(0), be32(size))
	s.ClientData(hdr)
	chunk := make([]byte, 64<<10)
	for range size / len(chunk) {
		s.ClientData(chunk)
	}
	s.HostData(statusPkt(2, fxOK))
	s.ClientData(slices.Concat(closePkt(3, "h"), openPkt(4, "/big", flRead, noAttrs())))
	s.HostData(slices.Concat(statusPkt(3, fxOK), handlePkt(4, "h")))
	s.ClientData(readPkt(5, "h", 0, size))
	s.HostData(slices.Concat(be32(uint32(1+4+4+size)), []byte{fxpData}, be32(5), be32(size)))
	for range size / len(chunk) {
		s.HostData(chunk)
	}
	s.ClientData(closePkt(6, "h"))
	got := s.HostData(statusPkt(6, fxOK))
	if err := s.Err(); err != nil {
		t.Fatalf("Err() = %v", err)
	}
	if want := []Op{{Kind: KindGet, Path: "/big", Bytes: size}}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if cap(s.client.buf) > keepBuf || cap(s.host.buf) > keepBuf {
		t.Fatalf("buffers grew to %d and %d bytes", cap(s.client.buf), cap(s.host.buf))
	}
}

func TestSFTPCloseReportsOpenAndClosingFilesInOpenOrder(t *testing.T) {
	s := startedSFTP()
	s.ClientData(slices.Concat(openPkt(1, "/a", flRead, noAttrs()), openPkt(2, "/b", flPutNew, noAttrs()),
		openPkt(3, "/never-answered", flRead, noAttrs())))
	s.HostData(slices.Concat(handlePkt(2, "hb"), handlePkt(1, "ha")))
	s.ClientData(slices.Concat(writePkt(4, "hb", 0, []byte("12345")), readPkt(5, "ha", 0, 10), closePkt(6, "ha")))
	s.HostData(slices.Concat(statusPkt(4, fxOK), dataPkt(5, []byte("abc"))))
	got := s.Close()
	want := []Op{{Kind: KindGet, Path: "/a", Bytes: 3}, {Kind: KindPut, Path: "/b", Bytes: 5}}
	if !slices.Equal(got, want) {
		t.Fatalf("Close() = %v, want %v", got, want)
	}
	if got := s.Close(); got != nil {
		t.Fatalf("second Close() = %v", got)
	}
	if got := s.ClientData(pathPkt(fxpRemove, 7, "/x")); got != nil || s.HostData(statusPkt(7, fxOK)) != nil {
		t.Fatal("data after Close was parsed")
	}
}

func TestSFTPStopsOnBadInput(t *testing.T) {
	huge := slices.Concat(be32(MaxPacket+1), []byte{fxpOpen})
	tests := []struct {
		name   string
		client []byte
		host   []byte
		want   error
	}{
		{"zero length packet", be32(0), nil, ErrMalformed},
		{"before INIT: a request", pathPkt(fxpRemove, 1, "/x"), nil, ErrMalformed},
		{"before INIT: a reply", initPkt(), statusPkt(1, fxOK), ErrMalformed},
		{"before INIT: shell text", []byte("id\nid\n"), nil, ErrTooLarge},
		{"before INIT: a packet that looks fine", pkt(fxpOpen, be32(1), sstr("/x"), be32(0), noAttrs()), nil, ErrMalformed},
		{"before INIT: shell text, longer", []byte("cat /etc/shadow\n"), nil, ErrTooLarge},
		{"oversized request", huge, nil, ErrTooLarge},
		{"oversized reply", nil, slices.Concat(be32(MaxPacket+1), []byte{fxpName}), ErrTooLarge},
		{"string past packet end", pkt(fxpOpen, be32(1), be32(100), []byte("short")), nil, ErrMalformed},
		{"attrs past packet end", pkt(fxpMkdir, be32(1), sstr("/d"), be32(attrPermissions)), nil, ErrMalformed},
		{"extended attrs count past end", pkt(fxpSetstat, be32(1), sstr("/d"), be32(attrExtended), be32(1<<31)), nil, ErrMalformed},
		{"write handle longer than allowed", writePkt(1, strings.Repeat("h", maxHandle+1), 0, []byte("x")), nil, ErrMalformed},
		{"write of type byte only", pkt(fxpWrite), nil, ErrMalformed},
		{"data length beyond the packet", nil, pkt(fxpData, be32(1), be32(10), []byte("abcdefgh")), ErrMalformed},
		{"write length beyond the packet", pkt(fxpWrite, be32(1), sstr("h"), be64(0), be32(10), []byte("abc")), nil, ErrMalformed},
		{"status without code", nil, pkt(fxpStatus, be32(1)), ErrMalformed},
		{"version other than 3", nil, pkt(fxpVersion, be32(6)), ErrVersion},
		{"one large path within the state cap", pathPkt(fxpRemove, 1, strings.Repeat("p", 200<<10)), nil, nil},
		{"write with bytes after its data", pkt(fxpWrite, be32(1), sstr("h"), be64(0), be32(3), []byte("abc"), []byte("trailing")), nil, nil},
		{"data with bytes after its data", nil, pkt(fxpData, be32(1), be32(3), []byte("abc"), []byte("trailing")), nil},
		{"second INIT is left to the host", initPkt(), versionPkt(), nil},
	}
	var flood, many []byte
	for id := range uint32(maxHeld / (200 << 10) * 2) {
		flood = append(flood, pathPkt(fxpRemove, id, strings.Repeat("p", 200<<10))...)
	}
	for id := range uint32(maxPending + 1) {
		many = append(many, pathPkt(fxpRemove, id, "p")...)
	}
	tests = append(tests, []struct {
		name   string
		client []byte
		host   []byte
		want   error
	}{
		{"pipelined paths beyond the state cap", flood, nil, ErrLimit},
		{"pipelined requests beyond the count cap", many, nil, ErrLimit},
	}...)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, split := range []func([]byte) [][]byte{whole, randomChunks(1)} {
				s := startedSFTP()
				if strings.HasPrefix(tt.name, "before INIT:") {
					s = NewSFTP()
				}
				for _, p := range split(tt.client) {
					s.ClientData(p)
				}
				for _, p := range split(tt.host) {
					s.HostData(p)
				}
				err := s.Err()
				if tt.want == nil {
					if err != nil {
						t.Fatalf("Err() = %v, want nil", err)
					}
					continue
				}
				if !errors.Is(err, tt.want) {
					t.Fatalf("Err() = %v, want %v", err, tt.want)
				}
				if !strings.HasPrefix(err.Error(), "transfer: ") {
					t.Fatalf("error %q lacks the package prefix", err)
				}
				// Sticky: valid input afterwards is ignored and the error stays.
				if ops := s.ClientData(pathPkt(fxpRemove, 99, "/x")); ops != nil {
					t.Fatalf("parsed after error: %v", ops)
				}
				if ops := s.HostData(statusPkt(99, fxOK)); ops != nil {
					t.Fatalf("parsed after error: %v", ops)
				}
				if s.Err() != err {
					t.Fatalf("Err changed from %v to %v", err, s.Err())
				}
			}
		})
	}
}

func TestSFTPOpsAfterAnErrorInTheSameChunkAreKept(t *testing.T) {
	s := startedSFTP()
	s.ClientData(pathPkt(fxpRemove, 1, "/x"))
	got := s.HostData(slices.Concat(statusPkt(1, fxOK), be32(0)))
	if want := []Op{{Kind: KindRemove, Path: "/x"}}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	if !errors.Is(s.Err(), ErrMalformed) {
		t.Fatalf("Err() = %v", s.Err())
	}
}

func TestSFTPIsSafeForOneGoroutinePerDirection(t *testing.T) {
	conv, want := session()
	s := startedSFTP()
	// Each run is fed by its direction's goroutine, in causal order: run i
	// starts only once run i-1 has been fed, as the bridge guarantees.
	turn := make([]chan struct{}, len(conv)+1)
	for i := range turn {
		turn[i] = make(chan struct{})
	}
	var mu sync.Mutex
	var got []Op
	var wg sync.WaitGroup
	for _, host := range []bool{false, true} {
		wg.Go(func() {
			for i, m := range conv {
				if m.host != host {
					continue
				}
				<-turn[i]
				var ops []Op
				if host {
					ops = s.HostData(m.b)
				} else {
					ops = s.ClientData(m.b)
				}
				mu.Lock()
				got = append(got, ops...)
				mu.Unlock()
				close(turn[i+1])
			}
		})
	}
	close(turn[0])
	wg.Wait()
	got = append(got, s.Close()...)
	if !slices.Equal(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// TestSFTPAcceptsWhatSFTPServerAccepts covers requests that OpenSSH's
// sftp-server takes, so a client sending them must not be cut off: bytes
// after a WRITE's data, and deep pipelines of small writes (beyond the
// 8 MiB of state an earlier version gave up at).
func TestSFTPAcceptsWhatSFTPServerAccepts(t *testing.T) {
	t.Run("write with trailing bytes", func(t *testing.T) {
		conv := []msg{
			c(openPkt(1, "/tmp/t", flPutNew, noAttrs())), h(handlePkt(1, "h")),
			c(pkt(fxpWrite, be32(2), sstr("h"), be64(0), be32(3), []byte("abc"), []byte("ignored by sftp-server"))),
			h(statusPkt(2, fxOK)),
			c(pathPkt(fxpRemove, 3, "/tmp/gone")), h(statusPkt(3, fxOK)),
			c(closePkt(4, "h")), h(statusPkt(4, fxOK)),
		}
		assertSplitInvariant(t, conv, feedSFTP, []Op{{Kind: KindRemove, Path: "/tmp/gone"}, {Kind: KindPut, Path: "/tmp/t", Bytes: 3}})
	})
	t.Run("remove with trailing bytes", func(t *testing.T) {
		conv := []msg{c(pkt(fxpRemove, be32(1), sstr("/tmp/x"), []byte("junk"))), h(statusPkt(1, fxOK))}
		assertSplitInvariant(t, conv, feedSFTP, []Op{{Kind: KindRemove, Path: "/tmp/x"}})
	})
	t.Run("deep pipeline of small writes", func(t *testing.T) {
		const n = 200_000 // 12.8 MB of state at the old accounting
		s := startedSFTP()
		s.ClientData(openPkt(1, "/tmp/p", flPutNew, noAttrs()))
		s.HostData(handlePkt(1, "h"))
		var reqs, acks []byte
		for id := range uint32(n) {
			reqs = append(reqs, writePkt(id+2, "h", uint64(id), []byte("x"))...)
			acks = append(acks, statusPkt(id+2, fxOK)...)
		}
		s.ClientData(reqs)
		s.HostData(acks)
		s.ClientData(closePkt(n+2, "h"))
		got := s.HostData(statusPkt(n+2, fxOK))
		if err := s.Err(); err != nil {
			t.Fatalf("Err() = %v", err)
		}
		if want := []Op{{Kind: KindPut, Path: "/tmp/p", Bytes: n}}; !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	})
}

// FuzzSFTP feeds an arbitrary conversation of client and host runs (see
// encodeConv), from the very start or past INIT. It checks that nothing
// panics, that cutting the runs differently changes nothing, and that
// every error carries the package prefix.
func FuzzSFTP(f *testing.F) {
	conv, _ := session()
	f.Add(encodeConv(conv), true)
	f.Add(encodeConv([]msg{c(pkt(fxpWrite, be32(1), sstr("h"), be64(0), be32(1))), h(pkt(fxpData, be32(1), be32(0)))}), false)
	f.Add(encodeConv([]msg{c(openPkt(1, "/a", flPutNew, noAttrs())), h(handlePkt(1, "h")),
		c(pkt(fxpWrite, be32(2), sstr("h"), be64(0), be32(1), []byte("xtrailing"))), h(statusPkt(2, fxOK))}), false)
	f.Add(encodeConv([]msg{c([]byte("id\nsh -i\n"))}), true)
	f.Fuzz(func(t *testing.T, raw []byte, fromStart bool) {
		conv := decodeConv(raw)
		run := func(split func([]byte) [][]byte) ([]Op, error) {
			s := startedSFTP()
			if fromStart {
				s = NewSFTP()
			}
			var ops []Op
			for _, m := range conv {
				for _, p := range split(m.b) {
					if m.host {
						ops = append(ops, s.HostData(p)...)
					} else {
						ops = append(ops, s.ClientData(p)...)
					}
				}
			}
			err := s.Err()
			return append(ops, s.Close()...), err
		}
		ops1, err1 := run(whole)
		ops2, err2 := run(bytewise)
		if !slices.Equal(ops1, ops2) || (err1 == nil) != (err2 == nil) {
			t.Fatalf("whole: %v %v; bytewise: %v %v", ops1, err1, ops2, err2)
		}
		if err1 != nil && !strings.HasPrefix(err1.Error(), "transfer: ") {
			t.Fatalf("error %q lacks the package prefix", err1)
		}
	})
}
