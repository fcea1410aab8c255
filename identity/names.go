package identity

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxUserName bounds a userName; an email address is at most 254 bytes.
const maxUserName = 256

// CheckUserName says why s cannot be a Warden user name, or returns "".
// A SCIM userName is kept as sent (dana@contoso.com), so the checks are
// about what would hurt where names are shown and stored: it reaches
// terminals (whoami, sessions lists), audit rows and evidence files.
//   - no C0, C1 or bidi controls, no other invisible formatting: a name
//     must read as what it is;
//   - no whitespace, '/' or '\': names are not paths and not several words;
//   - not starting with '-' or '.': never a flag or a hidden file.
func CheckUserName(s string) string {
	switch {
	case s == "":
		return "userName is empty"
	case len(s) > maxUserName:
		return "userName is longer than 256 bytes"
	case !utf8.ValidString(s):
		return "userName is not valid UTF-8"
	case s[0] == '-' || s[0] == '.':
		return "userName starts with '-' or '.'"
	}
	for _, r := range s {
		switch {
		case r < 0x80 && !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("._@+'-", r)) && !unicode.IsSpace(r) && r >= 0x20 && r != 0x7f && r != '/' && r != '\\':
			return "userName may hold only letters, digits and . _ @ + ' -"
		case r >= 0x80 && r >= 0xa0 && !unicode.Is(unicode.Bidi_Control, r) && !unicode.In(r, unicode.Cf):
			return "userName must be ASCII: letters, digits and . _ @ + ' -"
		case r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0:
			return "userName contains control characters"
		case unicode.Is(unicode.Bidi_Control, r) || unicode.In(r, unicode.Cf):
			return "userName contains invisible formatting characters"
		case unicode.IsSpace(r):
			return "userName contains whitespace"
		case r == '/' || r == '\\':
			return "userName contains '/' or '\\'"
		}
	}
	return ""
}

// checkText says why an attribute value (displayName, externalId, email)
// cannot be stored, or returns "".
func checkText(what, s string, max int) string {
	if len(s) > max {
		return what + " is too long"
	}
	if !utf8.ValidString(s) {
		return what + " is not valid UTF-8"
	}
	if strings.IndexFunc(s, func(r rune) bool {
		return r < 0x20 || r == 0x7f || r >= 0x80 && r < 0xa0 || unicode.Is(unicode.Bidi_Control, r)
	}) >= 0 {
		return what + " contains control characters"
	}
	return ""
}

// fold is the case-insensitive form of a user name.
func fold(s string) string { return strings.ToLower(s) }
