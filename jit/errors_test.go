package jit

import (
	"errors"
	"fmt"
	"testing"
)

func TestErrorsMatchTheirKind(t *testing.T) {
	for _, kind := range []error{ErrNotFound, ErrForbidden, ErrInvalid, ErrState} {
		err := fmt.Errorf("wrapped: %w", refuse(kind, "request %d is already %s", 17, "approved"))
		if !isKind(err, kind) {
			t.Errorf("%v does not match only %v", err, kind)
		}
		msg, ok := UserMessage(err)
		if !ok || msg != "request 17 is already approved" {
			t.Errorf("UserMessage = %q, %v", msg, ok)
		}
	}
	e := refuse(ErrState, "request 17 is already approved")
	if e.Error() != "jit: request 17 is already approved" {
		t.Errorf("Error() = %q", e.Error())
	}
}

func TestInternalErrorsAreNotShown(t *testing.T) {
	if msg, ok := UserMessage(errors.New("jit: read grant 3: database is locked")); ok || msg != "" {
		t.Errorf("internal error shown as %q", msg)
	}
	if _, ok := UserMessage(nil); ok {
		t.Error("nil error shown")
	}
}
