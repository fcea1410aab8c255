package policy

import "regexp"

// nameKind describes one family of names and the alphabet it allows.
//
// Names reach file paths (recordings, evidence packets), SQL rows and
// certificate principals, so the alphabet excludes '/', '@', whitespace and
// control characters, and a name cannot start with '.' or '-': no name can
// climb a directory, split a LOGIN@HOST address or pass for a command-line
// flag.
type nameKind struct {
	noun string
	re   *regexp.Regexp
	hint string
}

var (
	// personal is the alphabet of POSIX-style login and user names.
	personal     = regexp.MustCompile(`^[a-z_][a-zA-Z0-9._-]{0,63}$`)
	personalHint = "start with a lowercase letter or '_', then letters, digits, '.', '_' or '-'; at most 64 characters"

	// hostname also allows a leading digit or uppercase letter, as DNS does.
	hostname     = regexp.MustCompile(`^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,63}$`)
	hostnameHint = "start with a letter, digit or '_', then letters, digits, '.', '_' or '-'; at most 64 characters"

	// labelKey is deliberately close to a host name: labels are matched, not
	// stored in paths, but a tight alphabet keeps selectors unsurprising.
	labelKey = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9._-]{0,62}$`)
)

var (
	tenantName = nameKind{"tenant", personal, personalHint}
	hostName   = nameKind{"host", hostname, hostnameHint}
	userName   = nameKind{"user", personal, personalHint}
	groupName  = nameKind{"group", personal, personalHint}
	roleName   = nameKind{"role", personal, personalHint}
	loginName  = nameKind{"login", personal, personalHint}
)

// valid reports whether s is an acceptable name of this kind.
func (k nameKind) valid(s string) bool { return k.re.MatchString(s) }

// validLabelKey reports whether s may be used as a host label key.
func validLabelKey(s string) bool { return labelKey.MatchString(s) }
