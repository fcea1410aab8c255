package transfer

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
)

// In scp conversations, c() runs are the sender's protocol (fed to Data)
// and h() runs are the receiver's answers (fed to Reply).

const yes = "\x00"

func cline(mode uint32, size int, name string) string {
	return fmt.Sprintf("C%04o %d %s\n", mode, size, name)
}
func dline(mode uint32, name string) string { return fmt.Sprintf("D%04o 0 %s\n", mode, name) }

func snd(s string) msg { return c([]byte(s)) }
func ans(s string) msg { return h([]byte(s)) }

func feedSCP(dir Direction, target string, recursive bool) func([]msg, func([]byte) [][]byte) ([]Op, error) {
	return func(conv []msg, split func([]byte) [][]byte) ([]Op, error) {
		s := NewSCP(dir, target, recursive)
		var ops []Op
		for _, m := range conv {
			for _, p := range split(m.b) {
				if m.host {
					ops = append(ops, s.Reply(p)...)
				} else {
					ops = append(ops, s.Data(p)...)
				}
			}
		}
		err := s.Err()
		return append(ops, s.Close()...), err
	}
}

// recursiveUpload is `scp -O -r -p site dest:/srv` as the sink sees it.
func recursiveUpload() []msg {
	return []msg{
		ans(yes),
		snd("T1700000000 0 1700000001 0\n"), ans(yes),
		snd(dline(0o755, "site")), ans(yes),
		snd("T1700000000 0 1700000001 0\n"), ans(yes),
		snd(cline(0o644, 11, "index.html")), ans(yes), snd("<h1>hi</h1>" + yes), ans(yes),
		snd(dline(0o700, "private")), ans(yes),
		snd(cline(0o600, 3, "key")), ans(yes), snd("k\nC" + yes), ans(yes), // a body may look like a message
		snd("E\n"), ans(yes),
		snd(cline(0o644, 0, "empty")), ans(yes), snd(yes), ans(yes),
		snd("E\n"), ans(yes),
		snd(cline(0o755, 4, "top.sh")), ans(yes), snd("#!/b" + yes), ans(yes),
	}
}

func TestSCPUploadRecursiveHoweverTheStreamIsSplit(t *testing.T) {
	want := []Op{
		{Kind: KindMkdir, Path: "/srv/site", Mode: 0o755},
		{Kind: KindPut, Path: "/srv/site/index.html", Bytes: 11, Mode: 0o644},
		{Kind: KindMkdir, Path: "/srv/site/private", Mode: 0o700},
		{Kind: KindPut, Path: "/srv/site/private/key", Bytes: 3, Mode: 0o600},
		{Kind: KindPut, Path: "/srv/site/empty", Mode: 0o644},
		{Kind: KindPut, Path: "/srv/top.sh", Bytes: 4, Mode: 0o755},
	}
	assertSplitInvariant(t, recursiveUpload(), feedSCP(Upload, "/srv", true), want)
}

func TestSCPDownloadHoweverTheStreamIsSplit(t *testing.T) {
	tests := []struct {
		name      string
		target    string
		recursive bool
		conv      []msg
		want      []Op
	}{
		{"one file", "/etc/hosts", false,
			[]msg{ans(yes), snd(cline(0o644, 5, "hosts")), ans(yes), snd("abcde" + yes), ans(yes)},
			[]Op{{Kind: KindGet, Path: "/etc/hosts", Bytes: 5, Mode: 0o644}}},
		{"glob", "/var/log/*.log", false,
			[]msg{ans(yes), snd(cline(0o640, 2, "a.log")), ans(yes), snd("aa" + yes), ans(yes),
				snd(cline(0o640, 1, "b.log")), ans(yes), snd("b" + yes), ans(yes)},
			[]Op{{Kind: KindGet, Path: "/var/log/a.log", Bytes: 2, Mode: 0o640},
				{Kind: KindGet, Path: "/var/log/b.log", Bytes: 1, Mode: 0o640}}},
		{"relative to home", "notes.txt", false,
			[]msg{ans(yes), snd(cline(0o600, 1, "notes.txt")), ans(yes), snd("n" + yes), ans(yes)},
			[]Op{{Kind: KindGet, Path: "notes.txt", Bytes: 1, Mode: 0o600}}},
		{"recursive directory: reading it is not reported", "/srv/site/", true,
			[]msg{ans(yes), snd(dline(0o755, "site")), ans(yes), snd(cline(0o644, 2, "a")), ans(yes), snd("aa" + yes), ans(yes),
				snd(dline(0o755, "sub")), ans(yes), snd(cline(0o644, 1, "b")), ans(yes), snd("b" + yes), ans(yes),
				snd("E\n"), ans(yes), snd("E\n"), ans(yes)},
			[]Op{{Kind: KindGet, Path: "/srv/site/a", Bytes: 2, Mode: 0o644},
				{Kind: KindGet, Path: "/srv/site/sub/b", Bytes: 1, Mode: 0o644}}},
		{"missing source reported as a failed attempt", "/etc/shadow", false,
			[]msg{ans(yes), snd("\x01scp: /etc/shadow: Permission denied\n")},
			[]Op{{Kind: KindGet, Path: "/etc/shadow", Failed: true},
				{Kind: KindError, Path: "scp: /etc/shadow: Permission denied"}}},
		{"unreadable file inside a directory", "/srv", true,
			[]msg{ans(yes), snd(dline(0o755, "srv")), ans(yes), snd("\x01scp: /srv/x: Permission denied\n"), snd("E\n"), ans(yes)},
			[]Op{{Kind: KindGet, Path: "/srv", Failed: true}, {Kind: KindError, Path: "scp: /srv/x: Permission denied"}}},
		{"directory without -r", "/srv", false,
			[]msg{ans(yes), snd(dline(0o755, "srv")), ans("\x01scp: received directory without -r\n")},
			[]Op{{Kind: KindGet, Path: "/srv", Mode: 0o755, Failed: true},
				{Kind: KindError, Path: "scp: received directory without -r"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			feed := feedSCP(Download, tt.target, tt.recursive)
			assertSplitInvariant(t, tt.conv, feed, tt.want)
		})
	}
}

func TestSCPUploadPaths(t *testing.T) {
	tests := []struct {
		name   string
		target string
		file   string
		want   Op
	}{
		{"into a directory", "/tmp", "a.bin", Op{Kind: KindPut, Path: "/tmp/a.bin"}},
		{"onto the same name", "/tmp/a.bin", "a.bin", Op{Kind: KindPut, Path: "/tmp/a.bin"}},
		{"into a directory named like the file", "/tmp/a.bin/", "a.bin", Op{Kind: KindPut, Path: "/tmp/a.bin/a.bin"}},
		{"home directory", ".", "a.bin", Op{Kind: KindPut, Path: "a.bin"}},
		{"tilde", "~", "a.bin", Op{Kind: KindPut, Path: "~/a.bin"}},
		{"dot name joins to the directory", "/tmp/", ".", Op{Kind: KindPut, Path: "/tmp"}},
		{"parent name is reported as sent", "/tmp", "..", Op{Kind: KindPut, Path: "..", Failed: true}},
		{"slash in name is reported as sent", "/tmp", "../../etc/cron.d/x", Op{Kind: KindPut, Path: "../../etc/cron.d/x", Failed: true}},
		{"empty name", "/tmp", "", Op{Kind: KindPut, Path: "", Failed: true}},
		{"name with spaces", "/tmp", "my file.txt", Op{Kind: KindPut, Path: "/tmp/my file.txt"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := []msg{ans(yes), snd(cline(0, 0, tt.file)), ans(yes), snd(yes), ans(yes)}
			got, err := feedSCP(Upload, tt.target, false)(conv, whole)
			if err != nil {
				t.Fatalf("Err() = %v", err)
			}
			if !slices.Equal(got, []Op{tt.want}) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestSCPCloseReportsFilesWithoutOutcome(t *testing.T) {
	tests := []struct {
		name   string
		conv   []msg
		closed []Op // what Close reports
	}{
		{"body cut short, with answers", []msg{
			ans(yes), snd(cline(0o644, 2, "done")), ans(yes), snd("dd" + yes), ans(yes),
			snd(cline(0o644, 100, "big")), ans(yes), snd("0123456789")},
			[]Op{{Kind: KindPut, Path: "/tmp/big", Bytes: 10, Mode: 0o644}}},
		{"final answer never came: reported as sent", []msg{
			ans(yes), snd(cline(0o644, 2, "done")), ans(yes), snd("dd" + yes)},
			[]Op{{Kind: KindPut, Path: "/tmp/done", Bytes: 2, Mode: 0o644}}},
		{"never accepted: outcome unknown, not reported", []msg{
			ans(yes), snd(cline(0o644, 2, "done"))},
			nil},
		{"message cut off: reported as it stands", []msg{
			ans(yes), snd("C0644 2 half-a-na")},
			[]Op{{Kind: KindError, Path: "incomplete message: C0644 2 half-a-na"}}},
		{"error text cut off: reported as it stands", []msg{
			ans(yes), snd("\x01scp: half")},
			[]Op{{Kind: KindError, Path: "scp: half"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewSCP(Upload, "/tmp", false)
			for _, m := range tt.conv {
				if m.host {
					s.Reply(m.b)
				} else {
					s.Data(m.b)
				}
			}
			if got := s.Close(); !slices.Equal(got, tt.closed) {
				t.Fatalf("Close() = %v, want %v", got, tt.closed)
			}
			if s.Close() != nil || s.Data([]byte(cline(0, 0, "x"))) != nil || s.Reply([]byte(yes)) != nil {
				t.Fatal("parsed after Close")
			}
		})
	}
}

func TestSCPStopsOnBadInput(t *testing.T) {
	tests := []struct {
		name string
		conv []msg // the receiver's opening answer is sent first
		want error
	}{
		{"unknown message", []msg{snd("X0644 1 a\n")}, ErrMalformed},
		{"empty message", []msg{snd("\n")}, ErrMalformed},
		{"mode not octal", []msg{snd("C0684 1 a\n")}, ErrMalformed},
		{"mode too short", []msg{snd("C644 1 a\n")}, ErrMalformed},
		{"size not delimited", []msg{snd("C0644 1\n")}, ErrMalformed},
		{"size not a number", []msg{snd("C0644 -1 a\n")}, ErrMalformed},
		{"size out of range", []msg{snd("C0644 99999999999999999999 a\n")}, ErrMalformed},
		{"end outside a directory", []msg{snd("E\n")}, ErrMalformed},
		{"bad status after body", []msg{snd(cline(0o644, 1, "a")), ans(yes), snd("a\x05")}, ErrMalformed},
		{"message line too long", []msg{snd("C0644 1 " + strings.Repeat("n", MaxPacket))}, ErrTooLarge},

		// What a shell reached through a program named scp would be sent.
		{"shell command", []msg{snd("id\n")}, ErrMalformed},
		{"start of a shell command", []msg{snd("i")}, ErrMalformed},
		{"shell command starting with t", []msg{snd("touch /tmp/pwned\n")}, ErrMalformed},
		{"shell command after a T", []msg{snd("T1 0 1 0; sh\n")}, ErrMalformed},
		{"T without times", []msg{snd("Tid\n")}, ErrMalformed},
		{"T with a fifth field", []msg{snd("T1 0 1 0 0\n")}, ErrMalformed},
		{"T microseconds too long", []msg{snd("T1 1234567 1 0\n")}, ErrMalformed},
		{"E with text", []msg{snd(dline(0o755, "d")), ans(yes), snd("Eid\n")}, ErrMalformed},
		{"sender error text too long", []msg{snd("\x01" + strings.Repeat("e", MaxPacket+1))}, ErrTooLarge},

		// The lock-step that OpenSSH's scp keeps.
		{"sender before the opening answer", []msg{{b: []byte(cline(0o644, 1, "a"))}}, ErrMalformed},
		{"body before the answer to its C", []msg{snd(cline(0o644, 1, "a") + "a")}, ErrMalformed},
		{"next file before the final answer", []msg{snd(cline(0o644, 1, "a")), ans(yes), snd("a" + yes + cline(0o644, 1, "b"))}, ErrMalformed},
		{"contents before the answer to its D", []msg{snd(dline(0o755, "d") + cline(0o644, 1, "b"))}, ErrMalformed},
		{"message before the answer to a T", []msg{snd("T1 0 1 0\n" + cline(0o644, 1, "b"))}, ErrMalformed},
		{"answer to no message", []msg{ans(yes)}, ErrMalformed},
		{"shell output as answers", []msg{snd(cline(0o644, 1, "a")), ans(yes + "uid=0(root)\n")}, ErrMalformed},
		{"answer text too long", []msg{snd(cline(0o644, 1, "a")), ans("\x01" + strings.Repeat("e", MaxPacket+1))}, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			conv := append([]msg{ans(yes)}, tt.conv...)
			if !tt.conv[0].host && tt.name == "sender before the opening answer" {
				conv = tt.conv
			}
			for _, split := range []func([]byte) [][]byte{whole, randomChunks(2)} {
				_, err := feedSCP(Upload, "/tmp", true)(conv, split)
				if !errors.Is(err, tt.want) || !strings.HasPrefix(err.Error(), "transfer: ") {
					t.Fatalf("Err() = %v, want %v", err, tt.want)
				}
			}
			s := NewSCP(Upload, "/tmp", true)
			for _, m := range conv {
				if m.host {
					s.Reply(m.b)
				} else {
					s.Data(m.b)
				}
			}
			err := s.Err()
			if ops := s.Data([]byte(cline(0, 0, "x"))); ops != nil || s.Reply([]byte(yes)) != nil || s.Err() != err {
				t.Fatalf("parsed after error: %v, %v", ops, s.Err())
			}
		})
	}
}

func TestSCPIsSafeForOneGoroutinePerDirection(t *testing.T) {
	conv := recursiveUpload()
	want, _ := feedSCP(Upload, "/srv", true)(conv, whole)
	s := NewSCP(Upload, "/srv", true)
	turn := make([]chan struct{}, len(conv)+1)
	for i := range turn {
		turn[i] = make(chan struct{})
	}
	var mu sync.Mutex
	var got []Op
	var wg sync.WaitGroup
	for _, answers := range []bool{false, true} {
		wg.Go(func() {
			for i, m := range conv {
				if m.host != answers {
					continue
				}
				<-turn[i]
				var ops []Op
				if answers {
					ops = s.Reply(m.b)
				} else {
					ops = s.Data(m.b)
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
	if !slices.Equal(got, want) || len(want) != 6 {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

// encodeConv packs a conversation for the fuzzers: per run, one byte
// whose low bit says which side sends it, a length byte, and the bytes.
func encodeConv(conv []msg) []byte {
	var out []byte
	for _, m := range conv {
		for b := m.b; len(b) > 0; {
			n := min(len(b), 255)
			side := byte(0)
			if m.host {
				side = 1
			}
			out = append(out, side, byte(n))
			out = append(out, b[:n]...)
			b = b[n:]
		}
	}
	return out
}

// decodeConv is the inverse of encodeConv for any input.
func decodeConv(in []byte) []msg {
	var conv []msg
	for len(in) >= 2 {
		host, n := in[0]&1 == 1, int(in[1])
		in = in[2:]
		n = min(n, len(in))
		conv = append(conv, msg{host: host, b: in[:n]})
		in = in[n:]
	}
	return conv
}

// FuzzSCP feeds an arbitrary conversation of sender and receiver runs. It
// checks that nothing panics, that cutting the runs differently changes
// nothing, and that nothing is parsed after an error.
func FuzzSCP(f *testing.F) {
	f.Add(encodeConv(recursiveUpload()), true)
	f.Add(encodeConv([]msg{ans(yes), snd("id\n")}), true)
	f.Add(encodeConv([]msg{ans(yes), snd("T1 0 1 0\n"), ans(yes), snd(cline(0o644, 3, "x")), ans(yes), snd("abc" + yes), ans("\x01no\n")}), false)
	f.Add(encodeConv([]msg{ans(yes), snd("\x01scp: x: denied\nD0755 0 ../x\n"), ans(yes), snd("E\n")}), false)
	f.Fuzz(func(t *testing.T, raw []byte, upload bool) {
		dir := Download
		if upload {
			dir = Upload
		}
		conv := decodeConv(raw)
		feed := feedSCP(dir, "/t", true)
		ops1, err1 := feed(conv, whole)
		ops2, err2 := feed(conv, bytewise)
		if !slices.Equal(ops1, ops2) || (err1 == nil) != (err2 == nil) {
			t.Fatalf("whole: %v %v; bytewise: %v %v", ops1, err1, ops2, err2)
		}
		if err1 != nil && !strings.HasPrefix(err1.Error(), "transfer: ") {
			t.Fatalf("error %q lacks the package prefix", err1)
		}
	})
}
