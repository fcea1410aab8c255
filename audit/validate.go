package audit

import (
	"database/sql"
	"strings"

	"github.com/warden-gw/warden/recorder"
)

// maxSessionID bounds a session ID. IDs are random tokens of a few dozen
// characters; anything much longer is not one of ours.
const maxSessionID = 128

// checkSessionID accepts the URL-safe alphabet only. Session IDs become file
// names (recordings/DAY/ID.cast) and URL path segments, so a dot, a slash or
// any other byte that could steer a path is refused here, before it is stored.
func checkSessionID(id string) error {
	if id == "" {
		return invalidf("empty session ID")
	}
	if len(id) > maxSessionID {
		return invalidf("session ID longer than %d characters", maxSessionID)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return invalidf("session ID %q: only letters, digits, '-' and '_' are allowed", id)
		}
	}
	return nil
}

// checkRecordingPath accepts an empty path or one that recorder.CheckRelPath
// accepts: the one rule for a recording path, applied again by everything
// that opens a stored path.
func checkRecordingPath(p string) error {
	if p == "" {
		return nil
	}
	if err := recorder.CheckRelPath(p); err != nil {
		return invalidf("recording path %q must be a clean path relative to the data directory", p)
	}
	return nil
}

// checkSHA256 accepts an empty digest or 64 lowercase hex digits.
func checkSHA256(h string) error {
	if h == "" {
		return nil
	}
	if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
		return invalidf("recording digest %q: want 64 lowercase hex digits", h)
	}
	return nil
}

// checkRequired reports the first empty field of name/value pairs.
func checkRequired(what string, pairs ...string) error {
	for i := 0; i+1 < len(pairs); i += 2 {
		if pairs[i+1] == "" {
			return invalidf("%s: empty %s", what, pairs[i])
		}
	}
	return nil
}

// nullString stores "" as NULL, so that auditors see "no value" rather than
// an empty string.
// boolInt stores a bool as the 0 or 1 of an INTEGER column: go-sqlite3
// does so itself, pgx refuses a bool for a BIGINT.
func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}

func nullString(s string) sql.NullString {
	return sql.NullString{String: s, Valid: s != ""}
}

// nullInt64 stores 0 as NULL; it is used for references such as grant_id.
func nullInt64(n int64) sql.NullInt64 {
	return sql.NullInt64{Int64: n, Valid: n != 0}
}
