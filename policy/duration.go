package policy

import (
	"fmt"
	"time"
)

// Duration is a time.Duration that unmarshals from Go-style strings such as
// "90m" or "2h", the form the contract uses everywhere.
type Duration time.Duration

// Std returns d as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }

// String formats d the way time.Duration does ("1h30m0s").
func (d Duration) String() string { return time.Duration(d).String() }

// MarshalText encodes d as a Go-style duration string.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText decodes a Go-style duration string. Bare numbers are refused:
// "120" could mean seconds or minutes, and a wrong guess changes how long
// privileged access lasts.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("policy: bad duration %q: use a Go duration such as 90m or 2h", b)
	}
	*d = Duration(v)
	return nil
}
