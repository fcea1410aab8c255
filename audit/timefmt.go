package audit

import (
	"database/sql"
	"fmt"
	"time"
)

// timeLayout is RFC 3339 in UTC with exactly six fractional digits. Every
// stored time has the same width, so comparing the text (ORDER BY, >=) is
// comparing the times; time.RFC3339Nano trims trailing zeros and would not be.
const timeLayout = "2006-01-02T15:04:05.000000Z"

// formatTime renders t for storage. It refuses years outside 1..9999, whose
// text would not have the fixed width that ordering relies on.
func formatTime(t time.Time) (string, error) {
	u := t.UTC()
	if y := u.Year(); y < 1 || y > 9999 {
		return "", invalidf("time %s is outside years 1 to 9999", t)
	}
	return u.Format(timeLayout), nil
}

// parseTime is the strict inverse of formatTime: it accepts only text that
// formatTime could have produced.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(timeLayout, s)
	if err != nil || len(s) != len(timeLayout) || t.Format(timeLayout) != s {
		return time.Time{}, fmt.Errorf("audit: bad time %q: want %s", s, timeLayout)
	}
	// Only what formatTime would write: it refuses year 0, which
	// time.Parse accepts, so a row could hold a time no write produces
	// (found by FuzzParseTime).
	if _, ferr := formatTime(t); ferr != nil {
		return time.Time{}, fmt.Errorf("audit: bad time %q: %v", s, ferr)
	}
	return t, nil
}

// parseNullTime maps NULL to the zero time.
func parseNullTime(s sql.NullString) (time.Time, error) {
	if !s.Valid {
		return time.Time{}, nil
	}
	return parseTime(s.String)
}

// stampOrNow formats t, or now when t is zero: every write method treats a
// zero time as "now" by the store's clock.
func stampOrNow(t time.Time, now func() time.Time) (string, error) {
	if t.IsZero() {
		t = now()
	}
	return formatTime(t)
}
