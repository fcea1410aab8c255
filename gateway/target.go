package gateway

import (
	"errors"
	"fmt"
	"strings"
)

// maxUserName bounds the SSH user name we are willing to parse. OpenSSH
// itself allows long names; anything near this is an attack or a mistake.
const maxUserName = 512

// target is a parsed SSH user name LOGIN@HOST, where HOST may be TENANT/HOST.
type target struct {
	login  string
	host   string // host name or TENANT/HOST, as typed
	direct bool   // false: the user name selects the command interface
}

// errBadTarget is returned for user names that are neither a plain name
// (command interface) nor LOGIN@HOST.
var errBadTarget = errors.New("bad target")

// parseTarget splits an SSH user name. OpenSSH clients split the
// destination at the last '@', so "root@web01@gw" arrives as "root@web01".
// Exactly one '@' is accepted: a second one would make the split ambiguous.
func parseTarget(user string) (target, error) {
	if len(user) > maxUserName {
		return target{}, fmt.Errorf("%w: user name is %d bytes long (at most %d)", errBadTarget, len(user), maxUserName)
	}
	for _, r := range user {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return target{}, fmt.Errorf("%w: user name contains a control character", errBadTarget)
		}
	}
	i := strings.IndexByte(user, '@')
	if i < 0 {
		if !validName(user) {
			return target{}, fmt.Errorf("%w: %q is not a valid name; use LOGIN@HOST", errBadTarget, user)
		}
		return target{login: user}, nil
	}
	login, host := user[:i], user[i+1:]
	switch {
	case login == "" && host == "":
		return target{}, fmt.Errorf("%w: %q names neither login nor host; use LOGIN@HOST", errBadTarget, user)
	case login == "":
		return target{}, fmt.Errorf("%w: %q has no login; use LOGIN@HOST", errBadTarget, user)
	case host == "":
		return target{}, fmt.Errorf("%w: %q has no host; use LOGIN@HOST", errBadTarget, user)
	case strings.Contains(host, "@"):
		return target{}, fmt.Errorf("%w: %q has more than one '@'; use LOGIN@HOST", errBadTarget, user)
	case !validName(login):
		return target{}, fmt.Errorf("%w: %q is not a valid login", errBadTarget, login)
	}
	tenant, name, ok := strings.Cut(host, "/")
	if ok && (!validName(tenant) || !validName(name)) || !ok && !validName(host) {
		return target{}, fmt.Errorf("%w: %q is not a valid host; use HOST or TENANT/HOST", errBadTarget, host)
	}
	return target{login: login, host: host, direct: true}, nil
}

// validName accepts the characters policy names may use. It is checked here
// as well as in the policy so that no raw user input reaches a log field,
// SQL parameter or error message unchecked.
func validName(s string) bool {
	if s == "" || len(s) > 64 || s[0] == '.' || s[0] == '-' {
		return false // no "..", no option-like names
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c == '.' || c == '_' || c == '-':
		default:
			return false
		}
	}
	return true
}

// String renders the target for messages.
func (t target) String() string { return t.login + "@" + t.host }
