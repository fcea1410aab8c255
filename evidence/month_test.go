package evidence

import (
	"errors"
	"testing"
	"time"
)

func TestParseMonth(t *testing.T) {
	got, err := ParseMonth("2026-11")
	if err != nil || !got.Equal(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)) || got.Location() != time.UTC {
		t.Fatalf("ParseMonth = %v, %v", got, err)
	}
	for _, bad := range []string{"", "2026-13", "2026-00", "2026-1", "26-11", "2026-11-01", "2026/11", " 2026-11", "0000-01", "november"} {
		if _, err := ParseMonth(bad); !errors.Is(err, ErrBadMonth) {
			t.Errorf("ParseMonth(%q) = %v, want ErrBadMonth", bad, err)
		}
	}
}

func FuzzParseMonth(f *testing.F) {
	for _, s := range []string{"2026-11", "9999-12", "0001-01", "2026-13"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMonth(s)
		if err != nil {
			return
		}
		if m.Format("2006-01") != s || !m.Equal(monthStart(m)) {
			t.Fatalf("ParseMonth(%q) = %v", s, m)
		}
	})
}

func TestParseWindow(t *testing.T) {
	day := 24 * time.Hour
	for _, tc := range []struct {
		in   string
		want time.Duration // 0 means refused
	}{
		{"90d", 90 * day},
		{"1d", day},
		{"12w", 84 * day},
		{"2160h", 90 * day},
		{"36h30m", 36*time.Hour + 30*time.Minute},
		{"3660d", 3660 * day},
		{"3661d", 0},
		{"0d", 0},
		{"-5d", 0},
		{"d", 0},
		{"", 0},
		{"90", 0},
		{"9x0d", 0},
		{"90dd", 0},
		{"99999999999d", 0},
		{"-1h", 0},
	} {
		got, err := ParseWindow(tc.in)
		if got != tc.want || (err == nil) != (tc.want != 0) {
			t.Errorf("ParseWindow(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	if FormatWindow(90*day) != "90d" || FormatWindow(36*time.Hour+30*time.Minute) != "36h30m0s" {
		t.Fatalf("FormatWindow: %s %s", FormatWindow(90*day), FormatWindow(36*time.Hour+30*time.Minute))
	}
}

func FuzzParseWindow(f *testing.F) {
	for _, s := range []string{"90d", "12w", "2h", "0d", "65536d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseWindow(s)
		if err != nil {
			return
		}
		if d <= 0 || d > 3660*24*time.Hour {
			t.Fatalf("ParseWindow(%q) = %v", s, d)
		}
		if back, err := ParseWindow(FormatWindow(d)); err != nil || back != d {
			t.Fatalf("round trip of %v via %q = %v, %v", d, FormatWindow(d), back, err)
		}
	})
}
