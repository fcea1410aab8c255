package recorder

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRepairTail(t *testing.T) {
	for _, c := range []struct {
		name, in, want string
		cut            int64
	}{
		{"whole", "{\"version\":2}\n[1,\"o\",\"a\"]\n", "{\"version\":2}\n[1,\"o\",\"a\"]\n", 0},
		{"torn event", "{\"version\":2}\n[1,\"o\",\"a\"]\n[2,\"o\",\"b", "{\"version\":2}\n[1,\"o\",\"a\"]\n", 9},
		{"torn header", "{\"vers", "{\"vers", 0},
		{"empty", "", "", 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			rel := "recordings/2026-11-29/s1234567.cast"
			os.MkdirAll(filepath.Join(dir, "recordings/2026-11-29"), 0o700)
			if err := os.WriteFile(filepath.Join(dir, rel), []byte(c.in), 0o600); err != nil {
				t.Fatal(err)
			}
			r, err := RepairTail(dir, rel)
			if err != nil || r.TruncatedBytes != c.cut || (c.cut > 0) != (r.SHA256Before != "") {
				t.Fatalf("RepairTail = %+v, %v", r, err)
			}
			got, _ := os.ReadFile(filepath.Join(dir, rel))
			if string(got) != c.want {
				t.Fatalf("file %q, want %q", got, c.want)
			}
		})
	}
}

// The repair opens files like OpenRecording: a link planted where a
// recording should be is refused, and its target is not touched.
func TestRepairTailRefusesALink(t *testing.T) {
	dir := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	os.WriteFile(victim, []byte("keep\nthis tail"), 0o600)
	os.MkdirAll(filepath.Join(dir, "recordings/d"), 0o700)
	if err := os.Symlink(victim, filepath.Join(dir, "recordings/d/x.cast")); err != nil {
		t.Fatal(err)
	}
	if _, err := RepairTail(dir, "recordings/d/x.cast"); !errors.Is(err, ErrUnsafePath) {
		t.Fatalf("err %v, want ErrUnsafePath", err)
	}
	if got, _ := os.ReadFile(victim); string(got) != "keep\nthis tail" {
		t.Fatalf("link target changed: %q", got)
	}
}
