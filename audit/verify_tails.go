package audit

import (
	"bytes"
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/warden-gw/warden/recorder"
	"github.com/warden-gw/warden/recstore"
)

// verifyTails re-hashes every tail object the chain binds, and the object a
// returning node stored for a session no end sealed (recording.gap with
// "sha256", checkUnsealed). A tail object is the bytes a
// node that came back found in its spool beyond the recording a survivor
// had sealed from the object store (recstore, recording.tail_recovered).
// The tail holds the last seconds of a session whose node died, so it is
// evidence like the recording: an object replaced or removed in the bucket
// is a problem, as for the recording itself. The object is found from the
// session's recording path, never from the event's "object" text.
func verifyTails(ctx context.Context, tx *sql.Tx, recs recstore.Store, rep *VerifyReport) error {
	rows, err := tx.QueryContext(ctx, `SELECT seq, type, data FROM audit_events WHERE type IN (?, ?) ORDER BY seq`,
		recstore.EventTailRecovered, recstore.EventGap)
	if err != nil {
		return fmt.Errorf("audit: verify tails: %w", err)
	}
	type tail struct {
		seq        int64
		gap        bool // a recording.gap that binds the object stored for an unsealed session
		id, sum    string
		size       int64
		sizeParsed bool
	}
	var list []tail
	for rows.Next() {
		var tl tail
		var typ, data string
		if err := rows.Scan(&tl.seq, &typ, &data); err != nil {
			rows.Close()
			return fmt.Errorf("audit: verify tails: %w", err)
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(data)))
		dec.UseNumber()
		var m map[string]any
		if dec.Decode(&m) == nil {
			tl.id, _ = m[keySessionID].(string)
			tl.sum, _ = m["sha256"].(string)
			tl.size, tl.sizeParsed = intOf(m["bytes"])
		}
		if tl.gap = typ == recstore.EventGap; tl.gap {
			if tl.sum == "" {
				continue // a gap of a sealed session: its session.end binds the recording
			}
			tl.size, tl.sizeParsed = intOf(m["spool_bytes"])
		}
		list = append(list, tl)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return fmt.Errorf("audit: verify tails: %w", err)
	}
	for _, tl := range list {
		p := Problem{Seq: tl.seq, Session: tl.id}
		var rel sql.NullString
		switch {
		case tl.id == "" || tl.sum == "" || !tl.sizeParsed:
			p.Msg = "recording.tail_recovered data unreadable"
		default:
			err := tx.QueryRowContext(ctx, `SELECT recording_path FROM sessions WHERE id = ?`, tl.id).Scan(&rel)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("audit: verify tails: %w", err)
			}
			p.File = rel.String
			if tl.gap {
				p.Msg = checkUnsealed(ctx, tx, recs, tl.id, rel.String, tl.sum)
			} else {
				p.Msg = checkTail(ctx, recs, rel.String, tl.sum, tl.size)
			}
		}
		if p.Msg != "" {
			rep.Problems = append(rep.Problems, p)
		}
	}
	return nil
}

// checkTail re-hashes the tail object of rel and says what is wrong, or "".
func checkTail(ctx context.Context, recs recstore.Store, rel, want string, size int64) string {
	if rel == "" {
		return "tail object bound by the chain, but the session has no recording path"
	}
	ts, ok := recs.(recstore.TailStore)
	if !ok {
		return "tail object not checked: the recordings are not read from an object store (use -c with recordings.store s3)"
	}
	r, err := ts.OpenTail(ctx, rel)
	switch {
	case errors.Is(err, recorder.ErrUnsafePath):
		return "unsafe recording path: tail object not opened"
	case errors.Is(err, os.ErrNotExist):
		return "tail object missing (removed?)"
	case err != nil:
		return "cannot open tail object: " + err.Error()
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return "cannot read tail object: " + err.Error()
	}
	if hex.EncodeToString(h.Sum(nil)) != want || n != size {
		return "tail object differs from the chained recording.tail_recovered digest: it was altered"
	}
	return ""
}

// checkUnsealed checks the recording of a session its end did not seal (a
// survivor found nothing to seal) against the digest of the object its
// node stored when it came back, bound by recording.gap (recstore
// Recover). A session whose end carries a digest is checked by that.
func checkUnsealed(ctx context.Context, tx *sql.Tx, recs recstore.Store, id, rel, want string) string {
	var sealed sql.NullString
	if err := tx.QueryRowContext(ctx, `SELECT recording_sha256 FROM sessions WHERE id = ?`, id).Scan(&sealed); err != nil || sealed.String != "" {
		return ""
	}
	if rel == "" {
		return "recording bound by recording.gap, but the session has no recording path"
	}
	got, msg := hashRecording(ctx, recs, rel)
	switch {
	case msg != "":
		return msg
	case got != want:
		return "sha256 differs from the recording.gap digest of the object stored for this unsealed session: the recording was altered"
	}
	return ""
}
