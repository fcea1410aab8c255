package evidence

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ErrBadMonth is matched by errors about a month that is not YYYY-MM.
var ErrBadMonth = errors.New("evidence: bad month")

// ErrFutureMonth is matched by errors about a month that has not begun.
var ErrFutureMonth = errors.New("evidence: month in the future")

// ParseMonth reads a month written YYYY-MM and returns its first instant,
// 00:00 UTC on the 1st. Month boundaries are always UTC, so a packet covers
// the same rows wherever it is built.
func ParseMonth(s string) (time.Time, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil || t.Format("2006-01") != s || t.Year() < 1 {
		return time.Time{}, fmt.Errorf("%w %q: want YYYY-MM, e.g. 2026-11", ErrBadMonth, s)
	}
	return t, nil
}

// monthStart returns the first instant of t's month in UTC.
func monthStart(t time.Time) time.Time {
	u := t.UTC()
	return time.Date(u.Year(), u.Month(), 1, 0, 0, 0, 0, time.UTC)
}

// ParseWindow reads a look-back window such as "90d": a whole number of
// days ("90d"), weeks ("12w"), or a Go duration ("2160h"). It must be
// positive and at most ten years.
func ParseWindow(s string) (time.Duration, error) {
	const day, maxWindow = 24 * time.Hour, 3660 * 24 * time.Hour
	if s == "" {
		return 0, errors.New("evidence: empty window: want days like 90d")
	}
	bad := fmt.Errorf("evidence: window %q: want days like 90d, weeks like 12w, or a Go duration like 2160h", s)
	var d time.Duration
	if n, unit := len(s)-1, s[len(s)-1:]; n > 0 && (unit == "d" || unit == "w") && strings.Trim(s[:n], "0123456789") == "" {
		v, err := strconv.ParseUint(s[:n], 10, 16)
		if err != nil {
			return 0, bad
		}
		d = time.Duration(v) * day
		if unit == "w" {
			d *= 7
		}
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, bad
		}
	}
	if d <= 0 || d > maxWindow {
		return 0, fmt.Errorf("evidence: window %q: must be more than 0 and at most 3660d", s)
	}
	return d, nil
}

// FormatWindow prints a window the way ParseWindow reads it, in whole days
// when it is whole days ("90d").
func FormatWindow(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.FormatInt(int64(d/(24*time.Hour)), 10) + "d"
	}
	return d.String()
}
