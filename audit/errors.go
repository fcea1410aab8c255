package audit

import (
	"errors"
	"fmt"
)

// ErrNotFound is matched (with errors.Is) by errors about a session or other
// row that does not exist.
var ErrNotFound = errors.New("audit: not found")

// ErrInvalid is matched (with errors.Is) by errors about a value that the
// store refuses to write, such as an empty session ID or an unknown command
// source. Such a write never reaches the database.
var ErrInvalid = errors.New("audit: invalid value")

// ErrClosed is returned by writes queued after Close has begun.
var ErrClosed = errors.New("audit: store is closed")

// kindError carries a readable message and unwraps to one of the sentinels,
// so that callers can branch with errors.Is and still show the full message.
type kindError struct {
	msg  string
	kind error
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }

// invalidf returns an error that matches ErrInvalid.
func invalidf(format string, args ...any) error {
	return &kindError{msg: "audit: " + fmt.Sprintf(format, args...), kind: ErrInvalid}
}

// notFoundf returns an error that matches ErrNotFound.
func notFoundf(format string, args ...any) error {
	return &kindError{msg: "audit: " + fmt.Sprintf(format, args...), kind: ErrNotFound}
}

// ErrNoDatabase is matched (with errors.Is) by OpenReader's error for a
// store that does not exist yet: no SQLite file, or a PostgreSQL database
// no Warden has migrated. A command that only reads may treat it as empty.
var ErrNoDatabase = errors.New("audit: no database")

type noDatabaseError struct{ msg string }

func (e *noDatabaseError) Error() string        { return e.msg }
func (e *noDatabaseError) Is(target error) bool { return target == ErrNoDatabase }
