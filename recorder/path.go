package recorder

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
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

// ErrUnsafePath is matched (with errors.Is) by the errors of [CheckRelPath]
// and [OpenRecording] about a recording path that could lead outside the
// data directory or to something that is not a recording file.
var ErrUnsafePath = errors.New("recorder: unsafe recording path")

// CheckRelPath accepts a recording path as stored in
// sessions.recording_path: '/'-separated, clean, relative, and inside the
// data directory by its letters alone (no "..", no leading '/', no '\', no
// NUL). The database can be edited by anyone who can write its file, so
// every reader of a stored path checks it again with this function, through
// [OpenRecording].
func CheckRelPath(rel string) error {
	switch {
	case rel == "" || rel == ".":
		return fmt.Errorf("%w: empty", ErrUnsafePath)
	case strings.ContainsAny(rel, "\\\x00"):
		return fmt.Errorf("%w: %q: use '/' separators", ErrUnsafePath, rel)
	case !filepath.IsLocal(filepath.FromSlash(rel)) || path.Clean(rel) != rel:
		return fmt.Errorf("%w: %q is not a clean path inside the data directory", ErrUnsafePath, rel)
	}
	return nil
}

// OpenRecording opens the recording rel (a stored recording_path) under
// dataDir for reading, or refuses it. Beyond [CheckRelPath], it resolves the
// path inside an [os.Root] of the data directory, so a symbolic link on the
// way that points outside is refused, and it refuses a last element that is
// itself a symbolic link or not a regular file: recordings are created with
// O_EXCL and are never links, so a link there was planted.
func OpenRecording(dataDir, rel string) (*os.File, error) {
	return openRecording(dataDir, rel, os.O_RDONLY)
}

// openRecording is OpenRecording with the open flag: read-only, or
// read-write for RepairTail.
func openRecording(dataDir, rel string, flag int) (*os.File, error) {
	if err := CheckRelPath(rel); err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(dataDir)
	if err != nil {
		return nil, fmt.Errorf("recorder: open data directory: %w", err)
	}
	defer root.Close()
	name := filepath.FromSlash(rel)
	fi, err := root.Lstat(name)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: %q: %v", ErrUnsafePath, rel, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %q is a %s, not a recording file", ErrUnsafePath, rel, kind(fi.Mode()))
	}
	f, err := root.OpenFile(name, flag, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %v", ErrUnsafePath, rel, err)
	}
	// The file opened must be the one inspected, not one swapped in since.
	if got, err := f.Stat(); err != nil || !os.SameFile(fi, got) {
		f.Close()
		return nil, fmt.Errorf("%w: %q changed while it was opened", ErrUnsafePath, rel)
	}
	return f, nil
}

func kind(m os.FileMode) string {
	switch {
	case m&os.ModeSymlink != 0:
		return "symbolic link"
	case m.IsDir():
		return "directory"
	}
	return "special file"
}
