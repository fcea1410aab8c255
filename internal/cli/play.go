package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/warden-gw/warden/recorder"
)

func runPlay(e *env, args []string) error {
	fs := newFlags(e, "play", "play [--speed X] [--idle-limit S] [--data DIR] SESSION_ID|FILE.cast")
	speed := fs.Float64("speed", 1, "playback speed factor")
	idle := fs.Float64("idle-limit", 0, "cap every pause at this many seconds (0: no cap)")
	data := fs.String("data", "", "data directory (default: data_dir of ./warden.yaml, else ./data)")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 {
		return usageError("play takes one SESSION_ID or FILE.cast")
	}
	if *speed <= 0 || *speed > 1000 {
		return usageError("--speed must be above 0 and at most 1000")
	}
	if *idle < 0 {
		return usageError("--idle-limit must not be negative")
	}
	path, err := castPath(*data, pos[0])
	if err != nil {
		return err
	}
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open recording: %w", err)
	}
	defer f.Close()
	_, err = recorder.Play(e.stdout, f, recorder.PlayOptions{
		Speed: *speed, IdleLimit: time.Duration(*idle * float64(time.Second)),
	})
	return err
}

// castPath resolves a session ID through the database, or takes a .cast
// file as given. A session ID is validated before it is used at all.
func castPath(data, arg string) (string, error) {
	if strings.HasSuffix(arg, ".cast") || strings.ContainsRune(arg, os.PathSeparator) {
		return arg, nil
	}
	if !recorder.ValidSessionID(arg) {
		return "", usageError("%q is neither a session ID nor a .cast file", arg)
	}
	r, err := openReader(data)
	if err != nil {
		return "", err
	}
	defer r.Close()
	s, err := r.Session(context.Background(), arg)
	if err != nil {
		return "", fmt.Errorf("session %s: %w", arg, err)
	}
	if s.RecordingPath == "" {
		return "", fmt.Errorf("session %s has no terminal recording (file transfers are in: warden commands --session %s)", arg, arg)
	}
	dir, err := dataDir(data)
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, filepath.FromSlash(s.RecordingPath)), nil
}
