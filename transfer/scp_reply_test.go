package transfer

import (
	"errors"
	"strings"
	"testing"
)

func TestSCPAnswersDecideRefusedAndFailedFiles(t *testing.T) {
	denied := "\x01scp: /etc/x: Permission denied\n"
	deniedOp := Op{Kind: KindError, Path: "scp: /etc/x: Permission denied"}
	tests := []struct {
		name string
		conv []msg
		want []Op
	}{
		{"refused file has no body; the next file parses", []msg{
			ans(yes), snd(cline(0o644, 5, "x")), ans(denied),
			snd(cline(0o644, 2, "y")), ans(yes), snd("yy" + yes), ans(yes)},
			[]Op{{Kind: KindPut, Path: "/etc/x", Mode: 0o644, Failed: true}, deniedOp,
				{Kind: KindPut, Path: "/etc/y", Bytes: 2, Mode: 0o644}}},
		{"failed final write", []msg{
			ans(yes), snd(cline(0o644, 2, "x")), ans(yes), snd("xx" + yes), ans("\x01scp: /etc/x: No space left on device\n")},
			[]Op{{Kind: KindPut, Path: "/etc/x", Bytes: 2, Mode: 0o644, Failed: true},
				{Kind: KindError, Path: "scp: /etc/x: No space left on device"}}},
		{"sender read error after the body", []msg{
			ans(yes), snd(cline(0o644, 2, "x")), ans(yes), snd("xx\x01scp: x: Input/output error\n"), ans(yes)},
			[]Op{{Kind: KindError, Path: "scp: x: Input/output error"},
				{Kind: KindPut, Path: "/etc/x", Bytes: 2, Mode: 0o644, Failed: true}}},
		{"refused directory is skipped with its contents", []msg{
			ans(yes), snd(dline(0o755, "d")), ans(denied),
			snd(cline(0o644, 1, "z")), ans(yes), snd("z" + yes), ans(yes)},
			[]Op{{Kind: KindMkdir, Path: "/etc/d", Mode: 0o755, Failed: true}, deniedOp,
				{Kind: KindPut, Path: "/etc/z", Bytes: 1, Mode: 0o644}}},
		{"sink that cannot start: its text is the opening answer", []msg{
			ans("\x01scp: /etc/nosuch: No such file or directory\n")},
			[]Op{{Kind: KindError, Path: "scp: /etc/nosuch: No such file or directory"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assertSplitInvariant(t, tt.conv, feedSCP(Upload, "/etc", true), tt.want)
		})
	}
}

func TestSCPSenderFarAheadOfAnswersStops(t *testing.T) {
	s := NewSCP(Upload, "/tmp", false)
	s.Reply([]byte(yes))
	s.Data([]byte(strings.Repeat("T1 0 1 0\n", maxExpects+1)))
	if !errors.Is(s.Err(), ErrMalformed) {
		t.Fatalf("Err() = %v, want ErrMalformed", s.Err())
	}
}
