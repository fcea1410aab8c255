package jit

import (
	"errors"
	"fmt"
)

// Sentinel errors. Every refusal of the Service is an *Error that matches
// exactly one of them with errors.Is, so callers can branch (the HTTP API
// maps them to 404, 403, 400 and 409).
var (
	// ErrNotFound: the request, grant or role does not exist.
	ErrNotFound = errors.New("jit: not found")
	// ErrForbidden: the caller may not do this (not eligible, not an
	// approver, deciding their own request, revoking someone else's grant).
	ErrForbidden = errors.New("jit: forbidden")
	// ErrInvalid: the input is wrong (duration, reason, ticket, ID).
	ErrInvalid = errors.New("jit: invalid input")
	// ErrState: the request or grant is no longer in a state that allows
	// this (already decided, expired, cancelled, ended).
	ErrState = errors.New("jit: wrong state")
)

// Error is a refusal meant for the user who caused it. Msg is one clear
// line without a prefix, e.g. "request 17 is already approved", which the
// gateway shows as "warden: " + Msg. Errors of any other type are internal
// (a database failure) and must not be shown to users.
type Error struct {
	Kind error  // ErrNotFound, ErrForbidden, ErrInvalid or ErrState
	Msg  string // the user-facing line
}

// Error returns Msg with the package prefix, for logs.
func (e *Error) Error() string { return "jit: " + e.Msg }

// Unwrap returns Kind, so errors.Is(err, ErrState) works.
func (e *Error) Unwrap() error { return e.Kind }

// refuse builds an *Error of kind.
func refuse(kind error, format string, args ...any) error {
	return &Error{Kind: kind, Msg: fmt.Sprintf(format, args...)}
}

// UserMessage returns the line to show a user for err: Msg for an *Error,
// and ok false for internal errors, whose text must stay in the log.
func UserMessage(err error) (msg string, ok bool) {
	var e *Error
	if errors.As(err, &e) {
		return e.Msg, true
	}
	return "", false
}
