package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/warden-gw/warden/recorder"
)

func runPlay(e *env, args []string) error {
	fs := newFlags(e, "play", "play [--speed X] [--idle-limit S] [-c warden.yaml | --data DIR] SESSION_ID|FILE.cast")
	speed := fs.Float64("speed", 1, "playback speed factor")
	idle := fs.Float64("idle-limit", 0, "cap every pause at this many seconds (0: no cap)")
	data := fs.String("data", "", "data directory (default: data_dir of ./warden.yaml, else ./data)")
	cfgPath := fs.String("c", "", "policy whose recordings section says where recordings are kept (default: ./warden.yaml when present and --data is not given)")
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
	f, err := openCast(*cfgPath, *data, pos[0])
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = recorder.Play(e.stdout, f, recorder.PlayOptions{
		Speed: *speed, IdleLimit: time.Duration(*idle * float64(time.Second)),
	})
	return err
}

// openCast opens a session's recording, found through the database, or a
// .cast file named by the user. A session ID is validated before it is used
// at all, and the stored recording_path, which anyone who can write the
// database can point anywhere, is opened only through
// recorder.OpenRecording: the path check every reader of a stored path uses
// (and, with recordings.store s3, recstore.Key before it names an object).
func openCast(cfgPath, data, arg string) (io.ReadCloser, error) {
	if strings.HasSuffix(arg, ".cast") || strings.ContainsRune(arg, os.PathSeparator) {
		// A file the user names is theirs to open, like any file argument.
		f, err := os.Open(arg)
		if err != nil {
			return nil, fmt.Errorf("open recording: %w", err)
		}
		return f, nil
	}
	if !recorder.ValidSessionID(arg) {
		return nil, usageError("%q is neither a session ID nor a .cast file", arg)
	}
	recs, dir, err := cliRecordings(cfgPath, data)
	if err != nil {
		return nil, err
	}
	// The configured store (PostgreSQL for a cluster), not DATA/warden.db.
	r, _, err := openStoreReader(cfgPath, data)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	s, err := r.Session(context.Background(), arg)
	if err != nil {
		return nil, fmt.Errorf("session %s: %w", arg, err)
	}
	if s.RecordingPath == "" {
		return nil, fmt.Errorf("session %s has no terminal recording (file transfers are in: warden commands --session %s)", arg, arg)
	}
	f, err := openStored(context.Background(), recs, dir, s.RecordingPath)
	if errors.Is(err, recorder.ErrUnsafePath) {
		return nil, fmt.Errorf("session %s: recording path %s refused: not a recording file inside the data directory (database altered? run: warden audit verify)", arg, q(s.RecordingPath))
	}
	if err != nil {
		return nil, fmt.Errorf("session %s: open recording: %w", arg, err)
	}
	return f, nil
}
