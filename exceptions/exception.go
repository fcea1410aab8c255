package exceptions

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// ErrNotFound is matched (with errors.Is) by errors about an exception ID
// that is not in the register.
var ErrNotFound = errors.New("exceptions: not found")

// ErrAlreadyClosed is returned by Close for an entry that is already closed:
// a closure is a record, and a second one would overwrite the first.
var ErrAlreadyClosed = errors.New("exceptions: already closed")

// ErrInvalid is matched by errors about a value the register refuses to
// store: a bad name, unprintable or overlong text, an expiry in the past.
var ErrInvalid = errors.New("exceptions: invalid value")

// kindError reads "exceptions: <message>" and matches one of the sentinel
// errors, so callers can branch with errors.Is and still show one clear line.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return "exceptions: " + e.msg }
func (e *kindError) Unwrap() error { return e.kind }

func kindf(kind error, format string, args ...any) error {
	return &kindError{msg: fmt.Sprintf(format, args...), kind: kind}
}

// Status of an entry at a given time.
const (
	StatusOpen    = "open"    // not closed, expiry still ahead
	StatusExpired = "expired" // not closed, expiry passed: overdue for review
	StatusClosed  = "closed"  // closed with a note
)

// Exception is one entry of the register: a row of the exceptions table.
type Exception struct {
	ID        int64     // assigned by the database; positive
	Tenant    string    // the tenant it applies to
	Owner     string    // who answers for it
	Reason    string    // why the control is suspended
	Controls  string    // the compensating controls
	ExpiresAt time.Time // when it lapses
	CreatedBy string
	CreatedAt time.Time
	ClosedAt  time.Time // zero while open
	ClosedBy  string
	CloseNote string

	// Expired is set by the listing functions: the entry is open and its
	// expiry had passed at the time the list was made.
	Expired bool
}

// Closed reports whether the entry has been closed.
func (e Exception) Closed() bool { return !e.ClosedAt.IsZero() }

// ExpiredAt reports whether the entry is open and its expiry has passed at
// now. An entry expiring exactly at now is still valid.
func (e Exception) ExpiredAt(now time.Time) bool {
	return !e.Closed() && e.ExpiresAt.Before(now)
}

// Status returns StatusOpen, StatusExpired or StatusClosed as of the time
// the entry was listed (the Expired field).
func (e Exception) Status() string {
	switch {
	case e.Closed():
		return StatusClosed
	case e.Expired:
		return StatusExpired
	}
	return StatusOpen
}

// exceptionJSON is the stable --json form, shared by the CLI and the SSH
// command interface. Times are RFC 3339 UTC; closure fields are omitted while
// the entry is open.
type exceptionJSON struct {
	ID        int64  `json:"id"`
	Tenant    string `json:"tenant"`
	Owner     string `json:"owner"`
	Reason    string `json:"reason"`
	Controls  string `json:"controls"`
	ExpiresAt string `json:"expires_at"`
	CreatedBy string `json:"created_by"`
	CreatedAt string `json:"created_at"`
	ClosedAt  string `json:"closed_at,omitempty"`
	ClosedBy  string `json:"closed_by,omitempty"`
	CloseNote string `json:"close_note,omitempty"`
	Status    string `json:"status"`
	Expired   bool   `json:"expired"`
}

// MarshalJSON encodes e in the stable form of "warden exceptions --json":
// snake_case keys, RFC 3339 times, and "expired" and "status" flags.
func (e Exception) MarshalJSON() ([]byte, error) {
	return json.Marshal(exceptionJSON{
		ID: e.ID, Tenant: e.Tenant, Owner: e.Owner, Reason: e.Reason, Controls: e.Controls,
		ExpiresAt: rfc3339(e.ExpiresAt), CreatedBy: e.CreatedBy, CreatedAt: rfc3339(e.CreatedAt),
		ClosedAt: rfc3339(e.ClosedAt), ClosedBy: e.ClosedBy, CloseNote: e.CloseNote,
		Status: e.Status(), Expired: e.Expired,
	})
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}
