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

// withoutAnswers drops the receiver's runs: what a parser fed by Data
// alone sees.
func withoutAnswers(conv []msg) []msg {
	return slices.DeleteFunc(slices.Clone(conv), func(m msg) bool { return m.host })
}

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
	feed := feedSCP(Upload, "/srv", true)
	t.Run("with answers", func(t *testing.T) { assertSplitInvariant(t, recursiveUpload(), feed, want) })
	t.Run("sender only", func(t *testing.T) { assertSplitInvariant(t, withoutAnswers(recursiveUpload()), feed, want) })
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
			[]Op{{Kind: KindGet, Path: "/etc/shadow", Failed: true}}},
		{"unreadable file inside a directory", "/srv", true,
			[]msg{ans(yes), snd(dline(0o755, "srv")), ans(yes), snd("\x01scp: /srv/x: Permission denied\n"), snd("E\n"), ans(yes)},
			[]Op{{Kind: KindGet, Path: "/srv", Failed: true}}},
		{"directory without -r", "/srv", false,
			[]msg{ans(yes), snd(dline(0o755, "srv")), ans("\x01scp: received directory without -r\n")},
			[]Op{{Kind: KindGet, Path: "/srv", Mode: 0o755, Failed: true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			feed := feedSCP(Download, tt.target, tt.recursive)
			assertSplitInvariant(t, tt.conv, feed, tt.want)
			assertSplitInvariant(t, withoutAnswers(tt.conv), feed, tt.want)
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
			s := NewSCP(Upload, tt.target, false)
			got := s.Data([]byte(cline(0, 0, tt.file) + yes))
			if err := s.Err(); err != nil {
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
		{"body cut short, sender only", []msg{
			snd(cline(0o644, 2, "done") + "dd" + yes), snd(cline(0o644, 100, "big") + "0123456789")},
			[]Op{{Kind: KindPut, Path: "/tmp/big", Bytes: 10, Mode: 0o644}}},
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
			if s.Close() != nil || s.Data([]byte(cline(0, 0, "x")+yes)) != nil || s.Reply([]byte(yes)) != nil {
				t.Fatal("parsed after Close")
			}
		})
	}
}

func TestSCPStopsOnBadInput(t *testing.T) {
	tests := []struct {
		name string
		data string
		want error
	}{
		{"unknown message", "X0644 1 a\n", ErrMalformed},
		{"empty message", "\n", ErrMalformed},
		{"mode not octal", "C0684 1 a\n", ErrMalformed},
		{"mode too short", "C644 1 a\n", ErrMalformed},
		{"size not delimited", "C0644 1\n", ErrMalformed},
		{"size not a number", "C0644 -1 a\n", ErrMalformed},
		{"size out of range", "C0644 99999999999999999999 a\n", ErrMalformed},
		{"end outside a directory", "E\n", ErrMalformed},
		{"bad status after body", cline(0o644, 1, "a") + "a\x05", ErrMalformed},
		{"message line too long", "C0644 1 " + strings.Repeat("n", MaxPacket), ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, split := range []func([]byte) [][]byte{whole, randomChunks(2)} {
				s := NewSCP(Upload, "/tmp", true)
				for _, p := range split([]byte(tt.data)) {
					s.Data(p)
				}
				err := s.Err()
				if !errors.Is(err, tt.want) || !strings.HasPrefix(err.Error(), "transfer: ") {
					t.Fatalf("Err() = %v, want %v", err, tt.want)
				}
				if ops := s.Data([]byte(cline(0, 0, "x") + yes)); ops != nil || s.Err() != err {
					t.Fatalf("parsed after error: %v, %v", ops, s.Err())
				}
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

// FuzzSCP feeds an arbitrary sender stream, optionally with answers fed
// first. It checks that nothing panics and that cutting the streams
// differently changes nothing.
func FuzzSCP(f *testing.F) {
	var data, answers []byte
	for _, m := range recursiveUpload() {
		if m.host {
			answers = append(answers, m.b...)
		} else {
			data = append(data, m.b...)
		}
	}
	f.Add(data, answers, true)
	f.Add(data, []byte{}, false)
	f.Add([]byte("\x01scp: x: denied\nD0755 0 ../x\nE\n"), []byte("\x00\x01no\n"), false)
	f.Fuzz(func(t *testing.T, data, answers []byte, upload bool) {
		dir := Download
		if upload {
			dir = Upload
		}
		run := func(split func([]byte) [][]byte) ([]Op, error) {
			s := NewSCP(dir, "/t", true)
			var ops []Op
			for _, p := range split(answers) {
				ops = append(ops, s.Reply(p)...)
			}
			for _, p := range split(data) {
				ops = append(ops, s.Data(p)...)
			}
			err := s.Err()
			return append(ops, s.Close()...), err
		}
		ops1, err1 := run(whole)
		ops2, err2 := run(bytewise)
		if !slices.Equal(ops1, ops2) || (err1 == nil) != (err2 == nil) {
			t.Fatalf("whole: %v %v; bytewise: %v %v", ops1, err1, ops2, err2)
		}
	})
}
