package rotate

import (
	"fmt"
	"path"
	"strings"

	gossh "golang.org/x/crypto/ssh"
)

// DefaultAuthorizedKeys is the remote authorized_keys file when
// Target.AuthorizedKeys is empty; a relative path is taken from the login's
// home directory, where sshd starts every command.
const DefaultAuthorizedKeys = ".ssh/authorized_keys"

// maxRemotePath bounds Target.AuthorizedKeys; no real path is longer.
const maxRemotePath = 1024

// checkRemotePath refuses an authorized_keys path that could escape its
// quoting or its directory: control characters (a newline would end the
// command line) and ".." segments. Every other byte is safe inside
// shellQuote.
func checkRemotePath(p string) error {
	if p == "" || len(p) > maxRemotePath {
		return fmt.Errorf("rotate: authorized_keys path must be 1 to %d bytes", maxRemotePath)
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return fmt.Errorf("rotate: authorized_keys path %q has a control character", p)
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == ".." {
			return fmt.Errorf("rotate: authorized_keys path %q has a \"..\" segment", p)
		}
	}
	if strings.HasSuffix(p, "/") || path.Base(p) == "." {
		return fmt.Errorf("rotate: authorized_keys path %q names a directory", p)
	}
	return nil
}

// shellQuote returns s as one POSIX sh word in single quotes; an embedded
// quote closes the quoting, adds a backslash-escaped quote and reopens it.
// Nothing inside single quotes is special to sh, so no value Rotate sends
// can run as a command.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// blobOf returns the base64 key blob that identifies pub in authorized_keys.
func blobOf(pub gossh.PublicKey) string {
	return strings.Fields(string(gossh.MarshalAuthorizedKey(pub)))[1]
}

// lineFields splits an authorized_keys line the way removeScript's awk
// does: at runs of blanks and tabs, after dropping a trailing CR.
func lineFields(line string) []string {
	line = strings.TrimSuffix(line, "\r")
	return strings.FieldsFunc(line, func(r rune) bool { return r == ' ' || r == '\t' })
}

// hasBlob reports whether any line of content, comments included, has blob
// as a whole field. It is the Go twin of removeScript's match, used to
// check that a removal left nothing behind.
func hasBlob(content []byte, blob string) bool {
	for line := range strings.SplitSeq(string(content), "\n") {
		for _, f := range lineFields(line) {
			if f == blob {
				return true
			}
		}
	}
	return false
}

// findKey returns the first line of an authorized_keys file that
// authorizes the key with this blob, and the options on it. Comment lines
// authorize nothing and are skipped. A line that only mentions the blob
// (inside an option, say) does not count: the line must parse, and its key
// must be the one asked for.
func findKey(content []byte, blob string) (options []string, found bool) {
	for line := range strings.SplitSeq(string(content), "\n") {
		fields := lineFields(line)
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		for _, f := range fields {
			if f != blob {
				continue
			}
			key, _, opts, _, err := gossh.ParseAuthorizedKey([]byte(line))
			if err == nil && blobOf(key) == blob {
				return opts, true
			}
		}
	}
	return nil, false
}

// keyLine is the authorized_keys line for pub: the key and a comment built
// by the caller from a fixed alphabet, and never options (see install).
func keyLine(pub gossh.PublicKey, comment string) string {
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(pub))) + " " + comment
}

// readScript prints the authorized_keys file; a missing file is an error.
func readScript(file string) string {
	return "cat -- " + shellQuote(file)
}

// appendScript appends line to the file, first ending an unterminated last
// line so the key does not fuse with it. umask 077 makes a file created
// here 0600, which sshd's StrictModes requires.
func appendScript(file, line string) string {
	return strings.Join([]string{
		"set -e",
		"umask 077",
		"f=" + shellQuote(file),
		`if [ -s "$f" ] && [ -n "$(tail -c 1 -- "$f")" ]; then printf '\n' >> "$f"; fi`,
		"printf '%s\\n' " + shellQuote(line) + ` >> "$f"`,
	}, "\n")
}

// removeAwk drops every line with the blob b as a whole field, the same
// match as hasBlob.
const removeAwk = `{ l = $0; sub(/\r$/, "", l); n = split(l, a); for (i = 1; i <= n; i++) if (a[i] == b) next; print }`

// removeScript removes every line carrying blob from the file. The result
// is written to a temporary file in the same directory and renamed over the
// original, so sshd never reads a half-written file and a failure leaves
// the original untouched. A symbolic link at the path is replaced by a
// regular file.
func removeScript(file, blob string) string {
	return strings.Join([]string{
		"set -e",
		"umask 077",
		"f=" + shellQuote(file),
		`t="$f.warden-rotate.$$"`,
		`trap 'rm -f -- "$t"' EXIT`,
		"awk -v b=" + shellQuote(blob) + " " + shellQuote(removeAwk) + ` "$f" > "$t"`,
		`mv -f -- "$t" "$f"`,
	}, "\n")
}
