package policy

import (
	"errors"
	"fmt"
	"strings"
)

// ErrUnknownHost is returned (wrapped) by ResolveHost when no tenant has a
// host of the requested name.
var ErrUnknownHost = errors.New("policy: unknown host")

// Error is one problem found in a policy file, at a line of that file.
type Error struct {
	File string // the file name as given to Load or Parse
	Line int    // 1-based; 0 when the YAML parser could not tell
	Msg  string // what is wrong
	Hint string // how to fix it; may be empty
}

// Error formats the problem as "FILE:LINE: message (hint: ...)", the form
// editors and CI logs turn into links.
func (e Error) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
	}
	b.WriteString(": ")
	b.WriteString(e.Msg)
	if e.Hint != "" {
		fmt.Fprintf(&b, " (hint: %s)", e.Hint)
	}
	return b.String()
}

// ErrorList holds every problem found in a policy file, in line order.
// Load and Parse return it as a *ErrorList.
type ErrorList []Error

// Error returns one line per problem.
func (l ErrorList) Error() string {
	lines := make([]string, len(l))
	for i, e := range l {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// AmbiguousHostError is returned by ResolveHost when a bare host name exists
// in several tenants; the user must then say TENANT/HOST.
type AmbiguousHostError struct {
	Name    string   // the host name as requested
	Choices []string // "tenant/host" for every match, sorted
}

// Error lists the qualified names the user may choose from.
func (e *AmbiguousHostError) Error() string {
	return fmt.Sprintf("policy: host %q is ambiguous; use one of: %s", e.Name, strings.Join(e.Choices, ", "))
}
