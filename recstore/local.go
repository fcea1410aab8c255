package recstore

import (
	"context"
	"io"

	"github.com/warden-gw/warden/recorder"
)

// Recording is an open recording: its bytes and, when known, its length
// (-1 when not).
type Recording struct {
	io.ReadCloser
	Size int64
}

// Store opens recordings by their stored path (sessions.recording_path).
// Both [Local] and [*S3] implement it.
type Store interface {
	// Open returns the recording rel. Errors match recorder.ErrUnsafePath
	// for a path that is refused and os.ErrNotExist for one that is
	// nowhere.
	Open(ctx context.Context, rel string) (*Recording, error)
}

// Local is the default store: recordings are the files the recorder wrote
// under the data directory Dir, opened through recorder.OpenRecording, the
// one path check of every reader of a stored path.
type Local struct{ Dir string }

// Open opens DIR/rel, byte for byte as the recorder wrote it.
func (l Local) Open(_ context.Context, rel string) (*Recording, error) {
	f, err := recorder.OpenRecording(l.Dir, rel)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Recording{ReadCloser: f, Size: fi.Size()}, nil
}
