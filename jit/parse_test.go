package jit

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseID(t *testing.T) {
	tests := []struct {
		in   string
		want int64 // 0: must be refused
	}{
		{"17", 17},
		{"1", 1},
		{"9223372036854775807", 9223372036854775807},
		{"0", 0},
		{"-3", 0},
		{"+3", 0},
		{"017", 0},
		{"", 0},
		{" 17", 0},
		{"17x", 0},
		{"9223372036854775808", 0},
		{"0x11", 0},
	}
	for _, tc := range tests {
		t.Run(strconv.Quote(tc.in), func(t *testing.T) {
			got, err := ParseID(tc.in)
			if tc.want == 0 {
				if !errors.Is(err, ErrInvalid) {
					t.Fatalf("ParseID(%q) = %d, %v; want ErrInvalid", tc.in, got, err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseID(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantMsg string // non-empty: the refusal
	}{
		{"90m", 90 * time.Minute, ""},
		{"2h", 2 * time.Hour, ""},
		{"1h30m", 90 * time.Minute, ""},
		{"0", 0, "duration must be positive (asked 0s)"},
		{"-1h", 0, "duration must be positive (asked -1h)"},
		{"60", 0, `bad duration "60": use a Go duration such as 90m or 2h`},
		{"forever", 0, `bad duration "forever": use a Go duration such as 90m or 2h`},
		{"99999999999h", 0, `bad duration "99999999999h": use a Go duration such as 90m or 2h`},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseDuration(tc.in)
			if tc.wantMsg != "" {
				msg, ok := UserMessage(err)
				if !ok || msg != tc.wantMsg || !errors.Is(err, ErrInvalid) {
					t.Fatalf("ParseDuration(%q) error = %v, want %q", tc.in, err, tc.wantMsg)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("ParseDuration(%q) = %s, %v", tc.in, got, err)
			}
		})
	}
}

func TestParseErrorsStayShort(t *testing.T) {
	huge := strings.Repeat("9", 100_000)
	for _, parse := range []func(string) error{
		func(s string) error { _, err := ParseID(s); return err },
		func(s string) error { _, err := ParseDuration(s); return err },
	} {
		err := parse(huge)
		if err == nil || len(err.Error()) > 120 {
			t.Errorf("error for a 100 kB argument is %d bytes", len(err.Error()))
		}
	}
}

func FuzzParseID(f *testing.F) {
	for _, s := range []string{"1", "17", "0", "-1", "007", "9223372036854775807", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("ParseID(%q): bad error %v", s, err)
			}
			return
		}
		if id <= 0 || strconv.FormatInt(id, 10) != s {
			t.Fatalf("ParseID(%q) = %d accepted a non-canonical ID", s, id)
		}
	})
}

func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{"1h", "90m", "0", "-5s", "1.5h", "1e9h", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) || strings.ContainsAny(err.Error(), "\n\r") {
				t.Fatalf("ParseDuration(%q): bad error %v", s, err)
			}
			return
		}
		if d <= 0 {
			t.Fatalf("ParseDuration(%q) = %s accepted a non-positive duration", s, d)
		}
	})
}
