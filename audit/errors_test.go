package audit

import (
	"errors"
	"fmt"
	"testing"
)

func TestKindErrorsMatchTheirSentinel(t *testing.T) {
	for _, c := range []struct {
		err    error
		target error
		other  error
		msg    string
	}{
		{invalidf("empty %s", "user"), ErrInvalid, ErrNotFound, "audit: empty user"},
		{notFoundf("session %q not found", "x"), ErrNotFound, ErrInvalid, `audit: session "x" not found`},
	} {
		wrapped := fmt.Errorf("gateway: start: %w", c.err)
		if !errors.Is(wrapped, c.target) || errors.Is(wrapped, c.other) {
			t.Errorf("%v: errors.Is(%v) false or matches %v", c.err, c.target, c.other)
		}
		if c.err.Error() != c.msg {
			t.Errorf("message %q, want %q", c.err, c.msg)
		}
	}
}
