package recstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	"github.com/minio/minio-go/v7"

	"github.com/warden-gw/warden/recorder"
)

// Import stores the finished local recording rel (under the data
// directory) in the object store, for warden migrate: a node that kept its
// recordings on disk moving to recordings.store s3. sha is the sealed
// SHA-256 from the database. The local file is hashed first and must
// match it (a file changed since the session ended is never uploaded as
// the sealed recording); the object is then stored and read back, and must
// match again. An object already stored with the sealed digest is left
// alone (stored false), so a second run uploads nothing; one stored with
// another digest is an error, never overwritten. The local file is kept:
// the SQLite data directory stays as it was.
func (s *S3) Import(ctx context.Context, rel, sha string) (stored bool, err error) {
	key, err := Key(s.prefix, rel)
	if err != nil {
		return false, err
	}
	ok, _, err := s.exists(ctx, key)
	if err != nil {
		return false, err
	}
	if ok {
		if err := s.checkDigest(ctx, key, sha); err != nil {
			return false, fmt.Errorf("%w; it was not overwritten", err)
		}
		return false, nil
	}
	f, err := recorder.OpenRecording(s.dataDir, rel)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return false, fmt.Errorf("recstore: hash %s: %w", rel, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != sha {
		return false, fmt.Errorf("%w: local file %s is %s, sealed %s; not uploaded", ErrDigestMismatch, rel, got, sha)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return false, err
	}
	if _, err := s.client.PutObject(ctx, s.bucket, key, io.LimitReader(f, n), n,
		minio.PutObjectOptions{ContentType: "application/x-asciicast"}); err != nil {
		return false, fmt.Errorf("recstore: upload %s: %w", key, err)
	}
	if err := s.checkDigest(ctx, key, sha); err != nil {
		return false, err
	}
	return true, nil
}

// checkDigest reads key back and compares its SHA-256 with want.
func (s *S3) checkDigest(ctx context.Context, key, want string) error {
	obj, _, err := s.get(ctx, key)
	if err != nil {
		return err
	}
	defer obj.Close()
	h := sha256.New()
	if _, err := io.Copy(h, obj); err != nil {
		return fmt.Errorf("recstore: read back %s: %w", key, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%w: %s is %s, sealed %s", ErrDigestMismatch, key, got, want)
	}
	return nil
}
