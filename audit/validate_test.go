package audit

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckSessionID(t *testing.T) {
	for _, c := range []struct {
		id string
		ok bool
	}{
		{"aZ09-_", true},
		{strings.Repeat("x", maxSessionID), true},
		{"", false},
		{strings.Repeat("x", maxSessionID+1), false},
		{".", false},
		{"a/b", false},
		{`a\b`, false},
		{"a b", false},
		{"a.cast", false},
		{"ä", false},
		{"a\x00", false},
	} {
		err := checkSessionID(c.id)
		if (err == nil) != c.ok || (err != nil && !errors.Is(err, ErrInvalid)) {
			t.Errorf("checkSessionID(%q) = %v, want ok=%v", c.id, err, c.ok)
		}
	}
}

func TestCheckRecordingPath(t *testing.T) {
	for _, c := range []struct {
		path string
		ok   bool
	}{
		{"", true},
		{"recordings/2026-11-29/abc.cast", true},
		{"abc.cast", true},
		{"/etc/passwd", false},
		{"../x", false},
		{"recordings/../../x", false},
		{"recordings/./x", false},
		{"recordings//x", false},
		{"recordings/x/", false},
		{`recordings\x`, false},
		{"..", false},
		{".", false},
		{"a\x00b", false},
	} {
		err := checkRecordingPath(c.path)
		if (err == nil) != c.ok {
			t.Errorf("checkRecordingPath(%q) = %v, want ok=%v", c.path, err, c.ok)
		}
	}
}

func TestCheckSHA256(t *testing.T) {
	for _, c := range []struct {
		h  string
		ok bool
	}{
		{"", true},
		{strings.Repeat("0a", 32), true},
		{strings.Repeat("0A", 32), false},
		{strings.Repeat("0", 63), false},
		{strings.Repeat("g", 64), false},
	} {
		if err := checkSHA256(c.h); (err == nil) != c.ok {
			t.Errorf("checkSHA256(%q) = %v, want ok=%v", c.h, err, c.ok)
		}
	}
}

func FuzzCheckRecordingPath(f *testing.F) {
	for _, s := range []string{"recordings/a.cast", "../a", "/a", "a/../b", "a//b", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		if checkRecordingPath(p) != nil || p == "" {
			return
		}
		// Whatever is accepted stays inside the data directory.
		const root = "/data"
		joined := filepath.Join(root, filepath.FromSlash(p))
		if !strings.HasPrefix(joined, root+"/") {
			t.Fatalf("accepted %q escapes to %q", p, joined)
		}
		rel, err := filepath.Rel(root, joined)
		if err != nil || filepath.ToSlash(rel) != p {
			t.Fatalf("accepted %q is not clean: rel %q, %v", p, rel, err)
		}
	})
}

func FuzzCheckSessionID(f *testing.F) {
	for _, s := range []string{"abc", "a/b", "..", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if checkSessionID(id) != nil {
			return
		}
		// An accepted ID is one path element that is neither "." nor "..".
		if filepath.Base(id) != id || id == "." || id == ".." || strings.ContainsAny(id, "/\\.\x00") {
			t.Fatalf("accepted %q can steer a path", id)
		}
	})
}
