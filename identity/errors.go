package identity

import (
	"errors"
	"fmt"
)

// Sentinels that refusals match, so package scim can pick the status.
var (
	ErrNotFound = errors.New("not found")           // 404
	ErrConflict = errors.New("uniqueness conflict") // 409 uniqueness
	ErrInvalid  = errors.New("invalid value")       // 400 invalidValue
)

// Error is a refusal whose Msg is safe to show to the IdP.
type Error struct {
	Kind error
	Msg  string
}

func (e *Error) Error() string { return e.Msg }
func (e *Error) Unwrap() error { return e.Kind }

func notFoundf(format string, args ...any) error {
	return &Error{Kind: ErrNotFound, Msg: fmt.Sprintf(format, args...)}
}
func conflictf(format string, args ...any) error {
	return &Error{Kind: ErrConflict, Msg: fmt.Sprintf(format, args...)}
}
func invalidf(format string, args ...any) error {
	return &Error{Kind: ErrInvalid, Msg: fmt.Sprintf(format, args...)}
}
