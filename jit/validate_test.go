package jit

import (
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

func TestCheckText(t *testing.T) {
	tests := []struct {
		name, in string
		ok       bool
	}{
		{"plain", "INC-4711 disk full on db01", true},
		{"accents and CJK", "Störung – 障害", true},
		{"emoji", "🔥 prod down", true},
		{"empty", "", true},
		{"exactly at limit", strings.Repeat("a", 32), true},
		{"over limit", strings.Repeat("a", 33), false},
		{"tab", "a\tb", false},
		{"newline", "a\nb", false},
		{"escape", "\x1b]0;title\x07", false},
		{"NUL", "a\x00", false},
		{"DEL", "a\x7f", false},
		{"bidi override", "abc\u202edef", false},
		{"zero-width space", "ad\u200bmin", false},
		{"invalid UTF-8", "\xc3\x28", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := checkText("reason", tc.in, 32)
			if (err == nil) != tc.ok {
				t.Fatalf("checkText(%q) = %v, want ok=%v", tc.in, err, tc.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalid) {
				t.Errorf("error %v is not ErrInvalid", err)
			}
		})
	}
}

func TestShortDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		2 * time.Hour: "2h", 90 * time.Minute: "1h30m", 45 * time.Second: "45s", 30 * time.Minute: "30m",
		time.Hour + time.Second: "1h0m1s", 0: "0s", -time.Hour: "-1h",
	} {
		if got := shortDuration(d); got != want {
			t.Errorf("shortDuration(%s) = %q, want %q", d, got, want)
		}
	}
}

func FuzzCheckText(f *testing.F) {
	for _, s := range []string{"INC-1", "a\nb", "\u202e", "\xff", strings.Repeat("x", 1100), "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := checkText("reason", s, maxReason)
		if err != nil {
			msg, ok := UserMessage(err)
			if !ok || strings.ContainsAny(msg, "\r\n") || len(msg) > 100 {
				t.Fatalf("bad refusal %q for %q", msg, s)
			}
			return
		}
		// Whatever is accepted is short, valid, printable single-line text.
		if len(s) > maxReason || !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return !unicode.IsPrint(r) }) {
			t.Fatalf("checkText accepted %q", s)
		}
	})
}
