package audit

import (
	"errors"
	"sort"
	"testing"
	"time"
)

func TestStoredTimesSortAsText(t *testing.T) {
	base := time.Date(2026, 11, 29, 23, 59, 59, 0, time.UTC)
	// RFC3339Nano would store these as "...:59.5Z", "...:59.05Z", "...:59Z",
	// whose text order is not their time order.
	times := []time.Time{
		base.Add(500 * time.Millisecond),
		base.Add(50 * time.Millisecond),
		base,
		base.Add(time.Second).In(time.FixedZone("east", 5*3600)),
		time.Date(999, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	var texts []string
	for _, tm := range times {
		s, err := formatTime(tm)
		if err != nil {
			t.Fatal(err)
		}
		if len(s) != len(timeLayout) {
			t.Errorf("%v stored as %q: not fixed width", tm, s)
		}
		texts = append(texts, s)
	}
	sort.Strings(texts)
	for i := 1; i < len(texts); i++ {
		a, _ := parseTime(texts[i-1])
		b, _ := parseTime(texts[i])
		if !a.Before(b) {
			t.Errorf("text order %q < %q is not time order", texts[i-1], texts[i])
		}
	}
}

func TestFormatTimeRefusesYearsOutsideFourDigits(t *testing.T) {
	for _, tm := range []time.Time{time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC)} {
		if _, err := formatTime(tm); !errors.Is(err, ErrInvalid) {
			t.Errorf("formatTime(%v) = %v, want ErrInvalid", tm, err)
		}
	}
}

func TestParseTimeIsStrict(t *testing.T) {
	for _, s := range []string{
		"2026-11-29T08:00:00Z",
		"2026-11-29T08:00:00.000000+01:00",
		"2026-11-29T08:00:00.0000000Z",
		"2026-11-29 08:00:00.000000Z",
		"0000-01-01T00:00:00.000000Z", // year 0: formatTime refuses it (fuzz finding)
		"",
	} {
		if _, err := parseTime(s); err == nil {
			t.Errorf("parseTime(%q) accepted", s)
		}
	}
	got, err := parseTime("2026-11-29T08:00:00.000001Z")
	if err != nil || !got.Equal(time.Date(2026, 11, 29, 8, 0, 0, 1000, time.UTC)) {
		t.Errorf("parseTime = %v, %v", got, err)
	}
}

func FuzzParseTime(f *testing.F) {
	f.Add("2026-11-29T08:00:00.000000Z")
	f.Add("0001-01-01T00:00:00.000000Z")
	f.Add("2026-02-30T08:00:00.000000Z")
	f.Add("2026-11-29T08:00:00.5Z")
	f.Fuzz(func(t *testing.T, s string) {
		tm, err := parseTime(s)
		if err != nil {
			return
		}
		// Only text that formatTime itself would write is accepted.
		back, err := formatTime(tm)
		if err != nil || back != s {
			t.Fatalf("parseTime(%q) accepted a value that formats as %q, %v", s, back, err)
		}
	})
}
