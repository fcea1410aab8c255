package cli

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/recstore"
)

// s3CheckTimeout bounds the start-up check of the object store.
const s3CheckTimeout = 15 * time.Second

// openRecordingStore opens recordings.store: nil for local. With s3 a store
// that cannot be reached now fails the start: sessions would be recorded
// to a spool that never leaves this node, which is not what the policy
// says.
func openRecordingStore(ctx context.Context, cfg *policy.Config) (*recstore.S3, error) {
	if cfg.Recordings.Store != policy.StoreS3 {
		return nil, nil
	}
	s, err := recstore.OpenS3(cfg.Recordings.S3, cfg.DataDir)
	if err != nil {
		return nil, err
	}
	cctx, cancel := context.WithTimeout(ctx, s3CheckTimeout)
	defer cancel()
	if err := s.Check(cctx); err != nil {
		return nil, fmt.Errorf("recordings store s3 unreachable, refusing to start: %w", err)
	}
	return s, nil
}

// recordingsOf is s as a recstore.Store, or nil (local) without one: a nil
// *S3 must not become a non-nil interface.
func recordingsOf(s *recstore.S3) recstore.Store {
	if s == nil {
		return nil
	}
	return s
}

// startUploads starts the uploader of store and stores the spools the last
// run left (after CloseOrphans sealed them). Nil store: nil uploader.
func startUploads(ctx context.Context, cfg *policy.Config, st *audit.Store, store *recstore.S3, log *slog.Logger) *recstore.Uploader {
	if store == nil {
		return nil
	}
	u := recstore.NewUploader(store, recstore.Options{
		Interval: cfg.Recordings.UploadInterval.Std(), Log: log,
		Events: func(ctx context.Context, typ, subject string, data map[string]any) error {
			return st.Append(ctx, audit.Event{Type: typ, Actor: "warden", Subject: subject, Data: data})
		},
	})
	n, err := u.Recover(ctx, func(ctx context.Context, id string) (recstore.Sealed, error) {
		s, err := st.Session(ctx, id)
		if err != nil {
			return recstore.Sealed{}, err
		}
		return recstore.Sealed{Ended: !s.EndedAt.IsZero(), EndReason: s.EndReason, SHA256: s.RecordingSHA256}, nil
	})
	if err != nil {
		log.Error("recordings: leftover spools not all uploaded; the rest wait for the next start", "err", err)
	}
	if n > 0 {
		log.Warn("recordings: uploaded spools left by the previous run", "count", n)
	}
	log.Info("recordings go to s3", "bucket", cfg.Recordings.S3.Bucket, "endpoint", cfg.Recordings.S3.Endpoint, "upload_interval", u.Interval().String())
	return u
}
