package exceptions

import (
	"regexp"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"
)

// Limits on free text, in characters. An exception is read by people, in
// terminals and on a printed page; a bound keeps a pasted log or a 100 kB
// blob out of the register and out of every evidence packet after it.
const (
	MaxReason   = 500
	MaxControls = 1000
	MaxNote     = 500
)

// MaxTerm is the longest an exception may run. An exception is a temporary
// departure from policy: one that never comes up for review is a policy
// change nobody approved, so the register insists on a yearly look at least.
const MaxTerm = 366 * 24 * time.Hour

// nameRE is the policy's alphabet for tenant, user and login names (see
// policy/names.go): names in the register are the names in the policy.
var nameRE = regexp.MustCompile(`^[a-z_][a-zA-Z0-9._-]{0,63}$`)

func invalidf(format string, args ...any) error { return kindf(ErrInvalid, format, args...) }

// checkName accepts a policy-style name.
func checkName(field, s string) error {
	if !nameRE.MatchString(s) {
		return invalidf("%s %q: want a name like the policy's (a lowercase letter or '_', then letters, digits, '.', '_' or '-'; at most 64)", field, s)
	}
	return nil
}

// checkText accepts non-blank, printable UTF-8 of at most max characters.
// Control characters could rewrite an auditor's terminal, and format
// characters such as U+202E (right-to-left override) could make a report
// show text other than what is stored; unicode.IsPrint refuses both.
func checkText(field, s string, max int) error {
	if !utf8.ValidString(s) {
		return invalidf("%s is not valid UTF-8", field)
	}
	blank := true
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return invalidf("%s contains the unprintable character %U", field, r)
		}
		if r != ' ' {
			blank = false
		}
	}
	if blank {
		return invalidf("%s is empty", field)
	}
	if n := utf8.RuneCountInString(s); n > max {
		return invalidf("%s is %d characters long; at most %d", field, n, max)
	}
	return nil
}

// ParseID reads an exception ID as typed on a command line: decimal digits
// only (no sign, no spaces), a positive value that fits in int64.
func ParseID(s string) (int64, error) {
	if s == "" || len(s) > 18 {
		return 0, invalidf("exception ID %q: want a positive integer", s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, invalidf("exception ID %q: want a positive integer", s)
		}
	}
	id, err := strconv.ParseInt(s, 10, 64)
	if err != nil || id <= 0 {
		return 0, invalidf("exception ID %q: want a positive integer", s)
	}
	return id, nil
}

// ParseExpiry reads an expiry date YYYY-MM-DD. The exception lapses at the
// start of that day, 00:00 UTC: the day printed in every list is the first
// day the exception no longer holds.
func ParseExpiry(s string) (time.Time, error) {
	t, err := time.Parse(time.DateOnly, s)
	if err != nil || t.Format(time.DateOnly) != s {
		return time.Time{}, invalidf("expiry %q: want a date YYYY-MM-DD", s)
	}
	return t, nil
}

// check validates an entry about to be added at now.
func (e Exception) check(now time.Time) error {
	for _, f := range []struct{ name, v string }{{"tenant", e.Tenant}, {"owner", e.Owner}, {"created_by", e.CreatedBy}} {
		if err := checkName(f.name, f.v); err != nil {
			return err
		}
	}
	if err := checkText("reason", e.Reason, MaxReason); err != nil {
		return err
	}
	if err := checkText("controls", e.Controls, MaxControls); err != nil {
		return err
	}
	if !e.ExpiresAt.After(now) {
		return invalidf("expiry %s is not in the future", e.ExpiresAt.UTC().Format(time.RFC3339))
	}
	if e.ExpiresAt.Sub(now) > MaxTerm {
		return invalidf("expiry %s is more than %d days away; record a shorter exception and renew it",
			e.ExpiresAt.UTC().Format(time.DateOnly), MaxTerm/(24*time.Hour))
	}
	return nil
}
