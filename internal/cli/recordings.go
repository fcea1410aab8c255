package cli

import (
	"context"
	"io"

	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/recorder"
	"github.com/warden-gw/warden/recstore"
)

// cliRecordings resolves where a data command (play, audit verify) reads
// recordings: the object store of the policy's recordings section when a
// policy is in use (-c, or ./warden.yaml when --data is not given), else
// the files under the data directory, as before S3 existed. It returns the
// store (nil: local files) and the data directory.
func cliRecordings(cfgPath, dataFlag string) (recstore.Store, string, error) {
	if cfgPath == "" && dataFlag != "" {
		return nil, dataFlag, nil
	}
	cfg, dir, err := policyAndData(cfgPath, dataFlag, false)
	if err != nil {
		return nil, "", err
	}
	if cfg == nil || cfg.Recordings.Store != policy.StoreS3 {
		return nil, dir, nil
	}
	s, err := recstore.OpenS3(cfg.Recordings.S3, dir)
	if err != nil {
		return nil, "", err
	}
	return s, dir, nil
}

// openStored opens the recording rel from recs, or from dir's files when
// recs is nil (byte for byte as recorder.OpenRecording gives them).
func openStored(ctx context.Context, recs recstore.Store, dir, rel string) (io.ReadCloser, error) {
	if recs == nil {
		return recorder.OpenRecording(dir, rel)
	}
	r, err := recs.Open(ctx, rel)
	if err != nil {
		return nil, err
	}
	return r, nil
}
