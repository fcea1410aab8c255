package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestCheckRecording(t *testing.T) {
	dir := t.TempDir()
	body := []byte("cast")
	sum := sha256.Sum256(body)
	good := hex.EncodeToString(sum[:])
	if err := os.MkdirAll(filepath.Join(dir, "recordings"), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "recordings", "a.cast"), body)
	outside := filepath.Join(t.TempDir(), "outside.cast")
	writeFile(t, outside, body)
	// A planted link inside recordings/ must not make the packet hash (and
	// vouch for) a file outside the data directory.
	if err := os.Symlink(outside, filepath.Join(dir, "recordings", "link.cast")); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		rel, sum, want string
		size           int64
	}{
		{"recordings/a.cast", good, "ok", 4},
		{"recordings/a.cast", hex.EncodeToString(make([]byte, 32)), "mismatch", 4},
		{"recordings/gone.cast", good, "missing", 0},
		{"../outside.cast", good, "unsafe-path", 0},
		{"/etc/passwd", good, "unsafe-path", 0},
		{"recordings/../recordings/a.cast", good, "unsafe-path", 0},
		{"recordings\\a.cast", good, "unsafe-path", 0},
		{"recordings/link.cast", good, "unsafe-path", 0},
	} {
		if status, size := checkRecording(dir, tc.rel, tc.sum); status != tc.want || size != tc.size {
			t.Errorf("checkRecording(%q) = %s, %d; want %s, %d", tc.rel, status, size, tc.want, tc.size)
		}
	}
}

func TestPeriodOfMonthInProgressEndsNow(t *testing.T) {
	oct := at("2026-10-01T00:00:00Z")
	p, err := newPeriod(oct, at("2026-12-01T00:00:00Z"))
	if err != nil || p.partial || !p.end.Equal(at("2026-11-01T00:00:00Z")) || p.endTxt != "2026-11-01T00:00:00.000000Z" {
		t.Fatalf("finished month: %+v, %v", p, err)
	}
	now := at("2026-10-15T08:00:00Z").Add(123 * time.Microsecond)
	if p, err = newPeriod(oct, now); err != nil || !p.partial || !p.end.Equal(now) {
		t.Fatalf("month in progress: %+v, %v", p, err)
	}
}
