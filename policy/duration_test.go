package policy

import (
	"testing"
	"time"
)

func TestDurationUnmarshalText(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"90m", 90 * time.Minute, false},
		{"2h", 2 * time.Hour, false},
		{"1h30m", 90 * time.Minute, false},
		{"120", 0, true}, // bare numbers are ambiguous
		{"2 hours", 0, true},
		{"", 0, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var d Duration
			err := d.UnmarshalText([]byte(tc.in))
			if (err != nil) != tc.wantErr {
				t.Fatalf("UnmarshalText(%q) error = %v, wantErr %v", tc.in, err, tc.wantErr)
			}
			if d.Std() != tc.want {
				t.Errorf("UnmarshalText(%q) = %v, want %v", tc.in, d.Std(), tc.want)
			}
		})
	}
}

func TestDurationTextRoundTrip(t *testing.T) {
	d := Duration(90 * time.Minute)
	b, err := d.MarshalText()
	if err != nil || string(b) != "1h30m0s" {
		t.Fatalf("MarshalText = %q, %v", b, err)
	}
	var back Duration
	if err := back.UnmarshalText(b); err != nil || back != d {
		t.Errorf("round trip = %v, %v; want %v", back, err, d)
	}
	if d.String() != "1h30m0s" {
		t.Errorf("String() = %q", d.String())
	}
}
