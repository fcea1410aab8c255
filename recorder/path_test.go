package recorder

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"
)

func TestValidSessionID(t *testing.T) {
	for _, tc := range []struct {
		name string
		id   string
		ok   bool
	}{
		{"letters digits dash underscore", "aZ09-_xy", true},
		{"64 characters", strings.Repeat("a", 64), true},
		{"empty", "", false},
		{"7 characters", "abcdefg", false},
		{"65 characters", strings.Repeat("a", 65), false},
		{"parent directory", "../../../../etc/passwd", false},
		{"slash", "abcd/efgh", false},
		{"backslash", `abcd\efgh`, false},
		{"dot", "abcd.efgh", false},
		{"dots only", "........", false},
		{"space", "abcd efgh", false},
		{"NUL", "abcd\x00efgh", false},
		{"non-ASCII letter", "abcdéfgh", false},
		{"newline", "abcdefgh\n", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ValidSessionID(tc.id); got != tc.ok {
				t.Fatalf("ValidSessionID(%q) = %v, want %v", tc.id, got, tc.ok)
			}
		})
	}
}

func TestCreateRefusesBadSessionIDsBeforeTouchingDisk(t *testing.T) {
	for _, id := range []string{"", "short", "../../../../tmp/evil", "abc/../../x", strings.Repeat("x", 65)} {
		dir := t.TempDir()
		h := testHeader(id)
		w, err := Create(dir, h, Options{Now: (&fakeClock{t: testStart}).Now})
		if !errors.Is(err, ErrInvalidSessionID) || w != nil {
			t.Fatalf("Create(%q) = %v, %v; want ErrInvalidSessionID", id, w, err)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Fatalf("Create(%q) left %v in the data directory", id, entries)
		}
	}
}

func TestCreateRefusesEmptyDataDir(t *testing.T) {
	if _, err := Create("", testHeader("sess_0123456789"), Options{Now: time.Now}); err == nil {
		t.Fatal("Create with no data directory succeeded")
	}
}

func TestRelPathUsesUTCDay(t *testing.T) {
	tokyo := time.Date(2025, 1, 1, 8, 59, 0, 0, time.FixedZone("JST", 9*3600)) // 2024-12-31 23:59 UTC
	if got, want := relPath("sess_0123456789", tokyo), "recordings/2024-12-31/sess_0123456789.cast"; got != want {
		t.Fatalf("relPath = %q, want %q", got, want)
	}
}

func TestOpenRecordingRefusesPathsThatLeaveTheDataDirectory(t *testing.T) {
	data, outside := t.TempDir(), t.TempDir()
	secret := outside + "/secret"
	if err := os.WriteFile(secret, []byte("root:x:0:0"), 0o600); err != nil {
		t.Fatal(err)
	}
	day := data + "/recordings/2026-11-29"
	if err := os.MkdirAll(day, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(day+"/good.cast", []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, link := range []struct{ name, target string }{
		{day + "/link.cast", secret},              // the file itself is a link
		{day + "/inner.cast", day + "/good.cast"}, // even one that stays inside
		{data + "/recordings/out", outside},       // a directory on the way leads out
	} {
		if err := os.Symlink(link.target, link.name); err != nil {
			t.Fatal(err)
		}
	}
	f, err := OpenRecording(data, "recordings/2026-11-29/good.cast")
	if err != nil {
		t.Fatalf("a genuine recording: %v", err)
	}
	f.Close()
	for _, rel := range []string{
		"../../etc/passwd", "/etc/passwd", "recordings/../../x.cast", "recordings//2026-11-29/good.cast",
		`recordings\2026-11-29\good.cast`, "recordings/2026-11-29/good.cast\x00", "", ".",
		"recordings/2026-11-29/link.cast", "recordings/2026-11-29/inner.cast", "recordings/out/secret",
		"recordings/2026-11-29",
	} {
		f, err := OpenRecording(data, rel)
		if err == nil {
			f.Close()
			t.Errorf("OpenRecording(%q) opened it", rel)
		} else if !errors.Is(err, ErrUnsafePath) {
			t.Errorf("OpenRecording(%q) = %v, want ErrUnsafePath", rel, err)
		}
	}
	if _, err := OpenRecording(data, "recordings/2026-11-29/missing.cast"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v, want ErrNotExist", err)
	}
}
