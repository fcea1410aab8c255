package jit

import (
	"strconv"
	"time"
)

// maxEcho bounds how much of a bad argument an error message quotes, so a
// 100 kB argument produces a one-line error.
const maxEcho = 32

// ParseID reads a request or grant ID as typed by a user: a positive
// decimal integer without sign or leading zeros, so each ID has exactly one
// spelling in commands, logs and audit rows.
func ParseID(s string) (int64, error) {
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 || strconv.FormatInt(id, 10) != s {
		return 0, refuse(ErrInvalid, "%.*q is not an ID: IDs are positive whole numbers such as 17", maxEcho, s)
	}
	return id, nil
}

// ParseDuration reads the --for argument of a request: a positive Go
// duration such as "90m" or "2h". Whether the role allows that long is
// checked by Service.Request against the current policy.
func ParseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil {
		// Covers garbage and durations too large to represent.
		return 0, refuse(ErrInvalid, "bad duration %.*q: use a Go duration such as 90m or 2h", maxEcho, s)
	}
	if d <= 0 {
		return 0, refuse(ErrInvalid, "duration must be positive (asked %s)", shortDuration(d))
	}
	return d, nil
}
