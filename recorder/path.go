package recorder

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"time"
)

// ErrInvalidSessionID is returned by [Create] when the header's session ID
// is not 8 to 64 characters from [A-Za-z0-9_-].
var ErrInvalidSessionID = errors.New("recorder: invalid session id")

// ValidSessionID reports whether id may name a recording: 8 to 64
// characters from [A-Za-z0-9_-]. The session ID becomes a file name, so the
// check allows no separator, no dot and nothing a shell or URL would need to
// quote; commands that take a session ID from a user should check it with
// this function before they look for the file.
func ValidSessionID(id string) bool {
	if len(id) < 8 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// relPath is the recording's path relative to the data directory, with
// forward slashes whatever the OS, as stored in sessions.recording_path.
func relPath(id string, start time.Time) string {
	return path.Join("recordings", start.UTC().Format(time.DateOnly), id+".cast")
}

// createFile makes the recording file and its directories. O_EXCL refuses
// an existing file or symlink: a recording is never appended to or
// redirected, and two sessions can never share one file.
func createFile(dataDir, rel string) (*os.File, string, error) {
	if dataDir == "" {
		return nil, "", errors.New("recorder: create: empty data directory")
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, "", fmt.Errorf("recorder: create: %w", err)
	}
	full := filepath.Join(abs, filepath.FromSlash(rel))
	// 0700: recordings hold what administrators typed, passwords included
	// when input recording is on. Existing directories are left as the
	// operator set them.
	if err := os.MkdirAll(filepath.Dir(full), 0o700); err != nil {
		return nil, "", fmt.Errorf("recorder: create: %w", err)
	}
	f, err := os.OpenFile(full, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return nil, "", fmt.Errorf("recorder: create: %w", err)
	}
	return f, full, nil
}
