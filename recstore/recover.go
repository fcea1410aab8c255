package recstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// Sealed is what the database holds about a session's end.
type Sealed struct {
	Ended     bool
	EndReason string // e.g. "interrupted" (audit.EndInterrupted) after a crash
	SHA256    string // the sealed recording digest; "" when none
}

// endInterrupted is audit.EndInterrupted (not imported: audit reads
// recordings through this package).
const endInterrupted = "interrupted"

// Recover uploads the spools a previous run left in the data directory:
// those whose session has ended (run it after audit.CloseOrphans, which
// ends and seals the sessions a crash left open) and whose final object is
// missing. A spool that does not hash to the sealed digest belongs to a
// session another node reaped from the object store while this one was
// down: its bytes after the sealed ones become the tail object
// (recording.tail_recovered), or, when its start is not the sealed
// recording, it is set aside (recording.conflict); see tail.go. For a session ended as
// interrupted, or one whose segments lagged its spool, it appends
// recording.gap with the bytes the object store lacked: the spool's length
// less the segments' coverage. An upload that fails is reported
// (recording.upload_failed) and left for the next start. It returns how
// many spools it stored.
func (u *Uploader) Recover(ctx context.Context, lookup func(ctx context.Context, id string) (Sealed, error)) (int, error) {
	base := filepath.Join(u.s3.dataDir, "recordings")
	days, err := os.ReadDir(base)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var stored int
	for _, day := range days {
		if !day.IsDir() {
			continue
		}
		files, err := os.ReadDir(filepath.Join(base, day.Name()))
		if err != nil {
			return stored, err
		}
		for _, f := range files {
			if !f.Type().IsRegular() || !strings.HasSuffix(f.Name(), ".cast") {
				continue
			}
			rel := "recordings/" + day.Name() + "/" + f.Name()
			ok, err := u.recoverOne(ctx, rel, lookup)
			if err != nil {
				return stored, err
			}
			if ok {
				stored++
			}
		}
	}
	return stored, nil
}

// recoverOne stores one leftover spool; an error is returned only when the
// context ends, other failures are reported and skipped.
func (u *Uploader) recoverOne(ctx context.Context, rel string, lookup func(ctx context.Context, id string) (Sealed, error)) (bool, error) {
	key, err := Key(u.s3.prefix, rel)
	if err != nil {
		u.log.Warn("recordings: not a recording, left alone", "path", rel, "err", err)
		return false, nil
	}
	_, id, _ := parseRel(rel)
	s, err := lookup(ctx, id)
	if err != nil {
		u.log.Warn("recordings: spool of an unknown session, left alone", "path", rel, "err", err)
		return false, nil
	}
	if !s.Ended {
		return false, nil // live: its own Upload stores it
	}
	if s.SHA256 != "" {
		spoolSHA, _, _, err := u.hashSpool(rel, 0, -1)
		if err != nil {
			return false, u.recoverFailed(ctx, id, err)
		}
		if spoolSHA != s.SHA256 {
			// Sealed elsewhere: a survivor reaped the session from the
			// object store while this node was down (tail.go).
			return u.recoverTail(ctx, rel, key, id, s)
		}
		if ok, _, err := u.s3.exists(ctx, key); err == nil && ok && u.verify(ctx, key, s.SHA256) == nil {
			// Stored and verified before the crash; only the clean-up is left.
			return false, u.finalizeStored(ctx, rel, key)
		}
	} else if ok, _, err := u.s3.exists(ctx, key); err == nil && ok {
		return false, nil // no sealed digest: stored once, spool kept as evidence
	}
	parts, err := u.s3.parts(ctx, key)
	if err != nil {
		return false, u.recoverFailed(ctx, id, err)
	}
	stored, _ := coverage(parts)
	fi, err := os.Stat(filepath.Join(u.s3.dataDir, filepath.FromSlash(rel)))
	if err != nil {
		return false, nil
	}
	missing := max(fi.Size()-stored, 0)
	// Without a sealed digest (a survivor that found nothing to seal ended
	// the session with a note), nothing in the chain would say what the
	// object stored now holds, and it is the copy the console, play and
	// backups see: its digest goes into the recording.gap event, which
	// audit verify checks it against.
	var unsealedSHA string
	if s.SHA256 == "" {
		if unsealedSHA, _, _, err = u.hashSpool(rel, 0, -1); err != nil {
			return false, u.recoverFailed(ctx, id, err)
		}
	}
	if err := u.finalize(ctx, rel, key, s.SHA256); err != nil {
		if errors.Is(err, errNotReplaced) && s.SHA256 != "" {
			return false, u.conflict(ctx, rel, key, id, s.SHA256, err)
		}
		return false, u.recoverFailed(ctx, id, err)
	}
	u.log.Info("recordings: stored a spool left by the previous run", "session", id, "missing_bytes", missing)
	if s.EndReason == endInterrupted || missing > 0 || unsealedSHA != "" {
		data := map[string]any{
			"session_id": id, "end_reason": s.EndReason,
			"spool_bytes": fi.Size(), "stored_bytes": min(stored, fi.Size()), "missing_bytes": missing,
		}
		if unsealedSHA != "" {
			data["sha256"], data["object"] = unsealedSHA, key
		}
		u.report(ctx, EventGap, id, data)
	}
	return true, ctx.Err()
}

// finalizeStored removes the segments and spool of a recording whose final
// object is already verified.
func (u *Uploader) finalizeStored(ctx context.Context, rel, key string) error {
	parts, err := u.s3.parts(ctx, key)
	if err == nil {
		for _, p := range parts {
			_ = u.s3.client.RemoveObject(ctx, u.s3.bucket, p.key, removeOpts)
		}
		err = removeSpool(u.s3.dataDir, rel)
	}
	if err != nil {
		u.log.Warn("recordings: clean-up after upload failed", "path", rel, "err", err)
	}
	return ctx.Err()
}

func (u *Uploader) recoverFailed(ctx context.Context, id string, err error) error {
	u.log.Error("recordings: leftover spool not uploaded; kept for the next start", "session", id, "err", err)
	u.report(ctx, EventUploadFailed, id, map[string]any{"session_id": id, "cause": err.Error(), "at": "recover"})
	return ctx.Err()
}
