package recstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/minio/minio-go/v7"

	"github.com/warden-gw/warden/recorder"
)

// Seal is what a survivor that reaps a dead node's session can bind of its
// recording: the object store's copy, since the spool is on the dead node.
type Seal struct {
	SHA256   string // of the recording's bytes as stored
	Bytes    int64
	Segments int    // segments read; 0 when the final object was read
	Object   string // the final object's key
}

// Sealer seals recordings from the object store for audit.ReapDeadNodes;
// [*S3] implements it.
type Sealer interface {
	// SealRemote reads what the store holds of session id's recording rel
	// (the segments, which must tile it from byte 0; a final object of a
	// session still open is never taken, and without segments is refused,
	// ErrUnexpectedFinal) and returns its
	// digest and length. rel must be
	// the recording path the recorder gives session id: a path edited in
	// the database to name anything else is refused (recorder.ErrUnsafePath).
	SealRemote(ctx context.Context, id, rel string) (Seal, error)
	// StoreSealed makes the final object of rel out of its segments, once
	// the seal is in the chain: read back, it must hash to seal.SHA256. A
	// final object already stored is never replaced.
	StoreSealed(ctx context.Context, rel string, seal Seal) error
}

// ErrGap is matched by SealRemote's error when the segments do not tile
// the recording from byte 0: one was removed, and what is left is not the
// recording.
var ErrGap = errors.New("recstore: segments do not tile the recording")

// ErrUnexpectedFinal is matched by SealRemote's error when a final object
// is stored for the session being reaped: a final object is made only once
// the session's end is in the chain, so for a session still open it was
// put there by someone else, and sealing it would bind their bytes as the
// recording (and let StoreSealed delete the node's segments it "covers").
var ErrUnexpectedFinal = errors.New("recstore: a final object is stored for a session that is still open")

// checkOwn returns rel's key when rel is a recording path whose file is
// named after session id.
func (s *S3) checkOwn(id, rel string) (string, error) {
	tail, rid, err := parseRel(rel)
	if err != nil {
		return "", err
	}
	if rid != id {
		// A valid-looking path of another session: sealing it would bind
		// that session's recording to this one.
		return "", fmt.Errorf("%w: %q is not the recording of session %s", recorder.ErrUnsafePath, rel, id)
	}
	return s.prefix + tail, nil
}

// SealRemote implements [Sealer].
func (s *S3) SealRemote(ctx context.Context, id, rel string) (Seal, error) {
	key, err := s.checkOwn(id, rel)
	if err != nil {
		return Seal{}, err
	}
	// Only the segments the node uploaded are its recording. A final
	// object is never sealed from here: for an open session it cannot be
	// the node's (see ErrUnexpectedFinal). With segments, they are sealed
	// and StoreSealed then refuses the object that does not match them
	// (verify names it); without, nothing is. Where a racing survivor made
	// the object after ending the row, this survivor's end is not written
	// anyway.
	parts, err := s.parts(ctx, key)
	if err != nil {
		return Seal{}, err
	}
	if len(parts) == 0 {
		if there, _, err := s.exists(ctx, key); err != nil {
			return Seal{}, err
		} else if there {
			return Seal{}, fmt.Errorf("%w: %s, and no segments", ErrUnexpectedFinal, key)
		}
		return Seal{}, fmt.Errorf("recstore: %s: no segments in the object store: %w", key, os.ErrNotExist)
	}
	end, gapAt := coverage(parts)
	if gapAt >= 0 {
		return Seal{}, fmt.Errorf("%w: %s: gap at byte %d", ErrGap, key, gapAt)
	}
	r := &segmentReader{ctx: ctx, s: s, parts: parts}
	defer r.Close()
	sum, n, err := hashReader(r)
	if err != nil {
		return Seal{}, fmt.Errorf("recstore: read segments of %s: %w", key, err)
	}
	if n != end {
		return Seal{}, fmt.Errorf("recstore: segments of %s: read %d bytes, listed %d", key, n, end)
	}
	return Seal{SHA256: sum, Bytes: n, Segments: len(parts), Object: key}, nil
}

// StoreSealed implements [Sealer]. The segments the final object covers
// are removed after it is read back; a spool left on the dead node is its
// own business when it comes back ([Uploader.Recover]).
func (s *S3) StoreSealed(ctx context.Context, rel string, seal Seal) error {
	key, err := Key(s.prefix, rel)
	if err != nil {
		return err
	}
	if checkSHA(seal.SHA256) != nil || seal.Bytes < 0 {
		return fmt.Errorf("recstore: store sealed %s: invalid seal", key)
	}
	ok, _, err := s.exists(ctx, key)
	if err != nil {
		return err
	}
	if !ok {
		parts, err := s.parts(ctx, key)
		if err != nil {
			return err
		}
		if end, gapAt := coverage(parts); gapAt >= 0 || end < seal.Bytes {
			return fmt.Errorf("recstore: %s: the segments no longer hold the sealed %d bytes", key, seal.Bytes)
		}
		r := &segmentReader{ctx: ctx, s: s, parts: parts}
		err = s.putNew(ctx, key, io.LimitReader(r, seal.Bytes), seal.Bytes, "application/x-asciicast")
		r.Close()
		if err != nil {
			return err
		}
	}
	if err := s.checkDigest(ctx, key, seal.SHA256); err != nil {
		return fmt.Errorf("%w; it was not replaced", err)
	}
	return s.removeParts(ctx, key, seal.Bytes)
}

// putNew stores a new object, never one over another: If-None-Match: *
// where the store honours it, and a refusal read as "already there". The
// caller checks the digest of what is there either way.
func (s *S3) putNew(ctx context.Context, key string, r io.Reader, n int64, ctype string) error {
	opts := minio.PutObjectOptions{ContentType: ctype}
	opts.SetMatchETagExcept("*")
	if _, err := s.client.PutObject(ctx, s.bucket, key, r, n, opts); err != nil {
		if code := minio.ToErrorResponse(err).Code; code == "PreconditionFailed" || code == "ConditionalRequestConflict" {
			return nil
		}
		return fmt.Errorf("recstore: upload %s: %w", key, err)
	}
	return nil
}

// removeParts removes the segments of key that lie within its first upTo
// bytes (all of them for upTo < 0).
func (s *S3) removeParts(ctx context.Context, key string, upTo int64) error {
	parts, err := s.parts(ctx, key)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if upTo >= 0 && p.off+p.size > upTo {
			continue
		}
		if err := s.client.RemoveObject(ctx, s.bucket, p.key, removeOpts); err != nil {
			return fmt.Errorf("recstore: remove segment %s: %w", p.key, err)
		}
	}
	return nil
}

// hashReader returns the SHA-256 and length of what r holds.
func hashReader(r io.Reader) (string, int64, error) {
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "", n, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// checkSHA accepts 64 lowercase hex digits.
func checkSHA(s string) error {
	if len(s) != 64 {
		return errors.New("not a SHA-256")
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return errors.New("not a SHA-256")
		}
	}
	return nil
}

// sealPrefix finds the run of rel's segments from byte 0 that hashes to
// want, the digest a survivor sealed: the segments it read then, before
// the node it reaped (cut off, not dead) may have added more. The seal is
// always taken at a segment's end, so only those are tried.
func (s *S3) sealPrefix(ctx context.Context, id, rel, want string) (Seal, error) {
	key, err := s.checkOwn(id, rel)
	if err != nil {
		return Seal{}, err
	}
	parts, err := s.parts(ctx, key)
	if err != nil {
		return Seal{}, err
	}
	var ends []int64
	var end int64
	for _, p := range parts {
		if p.off == end {
			end += p.size
			ends = append(ends, end)
		} else if p.off > end || p.off+p.size > end {
			break // a gap: nothing after it is from byte 0
		}
	}
	if len(ends) == 0 {
		return Seal{}, fmt.Errorf("recstore: %s: no segments in the object store: %w", key, os.ErrNotExist)
	}
	r := &segmentReader{ctx: ctx, s: s, parts: parts}
	defer r.Close()
	h := sha256.New()
	var pos int64
	for i, e := range ends {
		if _, err := io.CopyN(h, r, e-pos); err != nil {
			return Seal{}, fmt.Errorf("recstore: read segments of %s: %w", key, err)
		}
		pos = e
		if hex.EncodeToString(h.Sum(nil)) == want {
			return Seal{SHA256: want, Bytes: e, Segments: i + 1, Object: key}, nil
		}
	}
	return Seal{}, fmt.Errorf("%w: no run of segments of %s from byte 0 hashes to it", errConflict, key)
}
