package exceptions

import (
	"errors"
	"strconv"
	"testing"
	"time"
)

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64 // 0 means refused
	}{
		{"1", 1},
		{"42", 42},
		{"007", 7},
		{"999999999999999999", 999999999999999999},
		{"0", 0},
		{"", 0},
		{"-3", 0},
		{"+3", 0},
		{" 3", 0},
		{"3x", 0},
		{"1e3", 0},
		{"9223372036854775808", 0},
		{"١٢", 0}, // Arabic-Indic digits are not ASCII digits
	} {
		got, err := ParseID(tc.in)
		if got != tc.want || (err == nil) != (tc.want != 0) {
			t.Errorf("ParseID(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
		if err != nil && !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseID(%q) error %v does not match ErrInvalid", tc.in, err)
		}
	}
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"1", "0", "-1", "18446744073709551616", "12a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			return
		}
		if id <= 0 {
			t.Fatalf("ParseID(%q) = %d", s, id)
		}
		if n, _ := strconv.ParseInt(s, 10, 64); n != id {
			t.Fatalf("ParseID(%q) = %d, strconv says %d", s, id, n)
		}
	})
}

func TestParseExpiryIsStartOfDayUTC(t *testing.T) {
	got, err := ParseExpiry("2026-12-31")
	if err != nil || !got.Equal(time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("ParseExpiry = %v, %v", got, err)
	}
	for _, bad := range []string{"", "2026-12-32", "2026-02-30", "2026-1-5", "26-12-31", "2026-12-31T00:00:00Z", "31.12.2026", " 2026-12-31"} {
		if _, err := ParseExpiry(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("ParseExpiry(%q) = %v, want ErrInvalid", bad, err)
		}
	}
}

func FuzzParseExpiry(f *testing.F) {
	for _, s := range []string{"2026-12-31", "0000-01-01", "2026-02-29", "9999-12-31"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseExpiry(s)
		if err != nil {
			return
		}
		if d.Format(time.DateOnly) != s || d.Location() != time.UTC || d.Hour()+d.Minute()+d.Second()+d.Nanosecond() != 0 {
			t.Fatalf("ParseExpiry(%q) = %v", s, d)
		}
	})
}

func TestCheckTextAcceptsPrintableUnicode(t *testing.T) {
	for _, s := range []string{"Zugriff nur über Jump-Host", "日本語の理由", "ticket #4711 (p1): 50% risk"} {
		if err := checkText("reason", s, MaxReason); err != nil {
			t.Errorf("checkText(%q) = %v", s, err)
		}
	}
}
