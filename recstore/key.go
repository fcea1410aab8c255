package recstore

import (
	"fmt"
	"strings"
	"time"

	"github.com/warden-gw/warden/recorder"
)

// partsSuffix follows a recording's key to make the folder of its
// segments.
const partsSuffix = ".parts/"

// parseRel checks that rel (a stored recording_path) has exactly the shape
// the recorder writes, recordings/YYYY-MM-DD/SESSION_ID.cast, and returns
// the part after "recordings/" and the session ID. Anything else is
// refused with recorder.ErrUnsafePath: the path becomes an object key.
func parseRel(rel string) (tail, id string, err error) {
	if err := recorder.CheckRelPath(rel); err != nil {
		return "", "", err
	}
	parts := strings.Split(rel, "/")
	if len(parts) != 3 || parts[0] != "recordings" || !strings.HasSuffix(parts[2], ".cast") {
		return "", "", fmt.Errorf("%w: %q is not recordings/YYYY-MM-DD/SESSION_ID.cast", recorder.ErrUnsafePath, rel)
	}
	if _, err := time.Parse(time.DateOnly, parts[1]); err != nil || len(parts[1]) != len(time.DateOnly) {
		return "", "", fmt.Errorf("%w: %q: %q is not a date", recorder.ErrUnsafePath, rel, parts[1])
	}
	id = strings.TrimSuffix(parts[2], ".cast")
	if !recorder.ValidSessionID(id) {
		return "", "", fmt.Errorf("%w: %q: invalid session id", recorder.ErrUnsafePath, rel)
	}
	return parts[1] + "/" + parts[2], id, nil
}

// Key returns the object key of the recording rel under prefix, or an
// error matching recorder.ErrUnsafePath when rel is not a recording path
// the recorder could have written.
func Key(prefix, rel string) (string, error) {
	tail, _, err := parseRel(rel)
	if err != nil {
		return "", err
	}
	return prefix + tail, nil
}

// partKey names the segment of key that starts at byte off of the spool.
func partKey(key string, off int64) string {
	return fmt.Sprintf("%s%s%016d", key, partsSuffix, off)
}

// parsePartKey returns the offset named by a segment key under key.
func parsePartKey(key, obj string) (int64, bool) {
	s, ok := strings.CutPrefix(obj, key+partsSuffix)
	if !ok || len(s) != 16 {
		return 0, false
	}
	var off int64
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
		off = off*10 + int64(s[i]-'0')
	}
	return off, true
}
