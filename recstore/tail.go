package recstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/warden-gw/warden/recorder"
)

// Audit events of a node that comes back after a survivor reaped its
// sessions (see the package documentation, "A node that comes back").
const (
	// EventTailRecovered: the bytes of a spool after the sealed recording
	// were stored as the tail object.
	EventTailRecovered = "recording.tail_recovered"
	// EventConflict: a spool does not start with the sealed recording (or
	// the store holds something else under its names); nothing was
	// overwritten and the spool was kept under a .conflict name.
	EventConflict = "recording.conflict"
)

// tailSuffix follows a recording's key to name its tail object.
const tailSuffix = ".tail"

// conflictSuffix follows a spool's name when a conflict sets it aside.
const conflictSuffix = ".conflict"

// recoverTail handles the spool of a session sealed by another node from
// the object store: the sealed prefix is the recording (the final object,
// made here from the segments if the reaper could not), the spool must
// start with it byte for byte, and the rest of the spool is stored as the
// tail object. The final object is never replaced.
func (u *Uploader) recoverTail(ctx context.Context, rel, key, id string, s Sealed) (bool, error) {
	sealedLen, err := u.sealedObject(ctx, rel, key, id, s.SHA256)
	if errors.Is(err, errConflict) {
		return false, u.conflict(ctx, rel, key, id, s.SHA256, err)
	}
	if err != nil {
		return false, u.recoverFailed(ctx, id, err)
	}
	prefixSHA, prefixLen, size, err := u.hashSpool(rel, 0, sealedLen)
	if err != nil {
		return false, u.recoverFailed(ctx, id, err)
	}
	if prefixLen < sealedLen || prefixSHA != s.SHA256 {
		cause := fmt.Errorf("%w: the spool's first %d bytes (of %d) are not the sealed recording", errConflict, sealedLen, size)
		return false, u.conflict(ctx, rel, key, id, s.SHA256, cause)
	}
	tailSHA, tailLen, _, err := u.hashSpool(rel, sealedLen, -1)
	if err != nil {
		return false, u.recoverFailed(ctx, id, err)
	}
	tkey := key + tailSuffix
	ok, _, err := u.s3.exists(ctx, tkey)
	if err != nil {
		return false, u.recoverFailed(ctx, id, err)
	}
	if ok {
		// Stored by an earlier run that stopped before the clean-up (its
		// event may be in the chain already; a repeat names the same
		// digest). Anything else there is not ours to replace.
		if err := u.s3.checkDigest(ctx, tkey, tailSHA); err != nil {
			return false, u.conflict(ctx, rel, key, id, s.SHA256, fmt.Errorf("%w: %v", errConflict, err))
		}
	} else {
		f, err := recorder.OpenRecording(u.s3.dataDir, rel)
		if err != nil {
			return false, u.recoverFailed(ctx, id, err)
		}
		err = u.s3.putNew(ctx, tkey, io.NewSectionReader(f, sealedLen, tailLen), tailLen, "application/octet-stream")
		f.Close()
		if err == nil {
			err = u.s3.checkDigest(ctx, tkey, tailSHA)
		}
		if err != nil {
			return false, u.recoverFailed(ctx, id, err)
		}
	}
	u.log.Warn("recordings: stored the tail of a recording sealed by another node while this one was down",
		"session", id, "tail_bytes", tailLen, "object", tkey)
	if u.opt.Events != nil {
		data := map[string]any{
			"session_id": id, "bytes": tailLen, "sha256": tailSHA, "object": tkey,
			"offset": sealedLen, "sealed_sha256": s.SHA256,
		}
		if err := u.opt.Events(ctx, EventTailRecovered, id, data); err != nil {
			// The spool stays: the next start stores nothing new and
			// writes the event again.
			u.log.Error("audit event not written", "type", EventTailRecovered, "err", err)
			return false, ctx.Err()
		}
	}
	if err := u.s3.removeParts(ctx, key, -1); err != nil {
		u.log.Warn("recordings: segments not removed", "session", id, "err", err)
		return true, ctx.Err()
	}
	if err := removeSpool(u.s3.dataDir, rel); err != nil {
		u.log.Warn("recordings: spool not removed", "path", rel, "err", err)
	}
	return true, ctx.Err()
}

// errConflict marks what the object store or the spool holds against the
// seal: never overwritten, reported as recording.conflict.
var errConflict = errors.New("recstore: conflicts with the sealed recording")

// sealedObject returns the length of the final object of rel, which must
// hash to sealed. A missing one is made from the segments when they hash
// to sealed (the reaper sealed them but did not get to store them).
func (u *Uploader) sealedObject(ctx context.Context, rel, key, id, sealed string) (int64, error) {
	ok, size, err := u.s3.exists(ctx, key)
	if err != nil {
		return 0, err
	}
	if ok {
		if err := u.verify(ctx, key, sealed); err != nil {
			if errors.Is(err, ErrDigestMismatch) {
				return 0, fmt.Errorf("%w: %v", errConflict, err)
			}
			return 0, err
		}
		return size, nil
	}
	seal, err := u.s3.sealPrefix(ctx, id, rel, sealed)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, recorder.ErrUnsafePath) {
			return 0, fmt.Errorf("%w: the object store holds no copy of it: %v", errConflict, err)
		}
		return 0, err
	}
	if err := u.s3.StoreSealed(ctx, rel, seal); err != nil {
		return 0, err
	}
	return seal.Bytes, nil
}

// conflict reports a spool that does not continue the sealed recording and
// sets it aside as SPOOL.conflict, kept as evidence: the next start does
// not take it again, and nothing in the object store is touched.
func (u *Uploader) conflict(ctx context.Context, rel, key, id, sealed string, cause error) error {
	u.log.Error("recordings: a spool conflicts with the sealed recording; nothing overwritten, spool set aside",
		"session", id, "path", rel+conflictSuffix, "err", cause)
	spoolSHA, _, size, herr := u.hashSpool(rel, 0, -1)
	if u.opt.Events != nil {
		data := map[string]any{
			"session_id": id, "cause": cause.Error(), "sealed_sha256": sealed, "object": key,
			"spool_bytes": size, "spool_sha256": spoolSHA, "spool_kept_as": rel + conflictSuffix,
		}
		if herr != nil {
			data["spool_sha256"] = ""
		}
		if err := u.opt.Events(ctx, EventConflict, id, data); err != nil {
			u.log.Error("audit event not written", "type", EventConflict, "err", err)
			return ctx.Err() // keep the spool where it is: reported next start
		}
	}
	if err := renameSpool(u.s3.dataDir, rel, rel+conflictSuffix); err != nil {
		u.log.Error("recordings: conflicting spool not set aside", "path", rel, "err", err)
	}
	return ctx.Err()
}

// hashSpool hashes n bytes (n < 0: to the end) of the spool rel from off,
// returning the digest, the bytes hashed and the spool's size.
func (u *Uploader) hashSpool(rel string, off, n int64) (sha string, got, size int64, err error) {
	f, err := recorder.OpenRecording(u.s3.dataDir, rel)
	if err != nil {
		return "", 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, 0, err
	}
	size = fi.Size()
	if n < 0 {
		n = max(size-off, 0)
	}
	sha, got, err = hashReader(io.NewSectionReader(f, off, n))
	if err != nil {
		return "", 0, 0, fmt.Errorf("recstore: hash spool %s: %w", rel, err)
	}
	return sha, got, size, nil
}

// renameSpool renames a spool inside the data directory (an os.Root: no
// link or ".." can reach anything else), never over an existing file.
func renameSpool(dataDir, from, to string) error {
	if err := recorder.CheckRelPath(from); err != nil {
		return err
	}
	root, err := os.OpenRoot(dataDir)
	if err != nil {
		return fmt.Errorf("recstore: open data directory: %w", err)
	}
	defer root.Close()
	if _, err := root.Lstat(filepath.FromSlash(to)); err == nil {
		return fmt.Errorf("recstore: %s exists", to)
	}
	return root.Rename(filepath.FromSlash(from), filepath.FromSlash(to))
}

// TailStore is a Store that also holds tail objects: what a node that came
// back stored of a reaped session's spool beyond the sealed recording
// (recording.tail_recovered). [*S3] implements it.
type TailStore interface {
	// OpenTail returns the tail object of the recording rel, with an error
	// matching os.ErrNotExist when there is none.
	OpenTail(ctx context.Context, rel string) (*Recording, error)
}

// OpenTail implements [TailStore].
func (s *S3) OpenTail(ctx context.Context, rel string) (*Recording, error) {
	key, err := Key(s.prefix, rel)
	if err != nil {
		return nil, err
	}
	obj, size, err := s.get(ctx, key+tailSuffix)
	if err != nil {
		return nil, err
	}
	return &Recording{ReadCloser: obj, Size: size}, nil
}
