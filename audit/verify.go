package audit

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
)

// VerifyReport is the outcome of Verify. The data is intact when Problems is
// empty.
type VerifyReport struct {
	Events     int       // events checked
	Recordings int       // finished recordings re-hashed
	Head       string    // hash of the last event; keep a copy elsewhere (see doc.go)
	Problems   []Problem // chain problems in seq order, then recording problems
}

// Problem is one finding of Verify: a chain problem names Seq, a recording
// problem names File (relative to the data directory).
type Problem struct {
	Seq  int64
	File string
	Msg  string
}

// String formats p as one line, e.g. "seq 5: hash mismatch".
func (p Problem) String() string {
	if p.File != "" {
		return p.File + ": " + p.Msg
	}
	return "seq " + strconv.FormatInt(p.Seq, 10) + ": " + p.Msg
}

// Verify checks the database in dataDir without writing to it. It recomputes
// the hash chain of audit_events, requiring seq to run 1, 2, 3... and each
// prev_hash to equal the hash before it, and re-hashes every finished
// recording (sessions with recording_sha256 set) against its digest. Findings
// are reported in Problems; the error is for failures to check at all.
//
// After a problem Verify carries on from the stored row, so one edit gives
// one finding and later rows are still checked.
func Verify(ctx context.Context, dataDir string) (VerifyReport, error) {
	r, err := OpenReadOnly(dataDir)
	if err != nil {
		return VerifyReport{}, err
	}
	defer r.Close()
	// One read transaction: chain and sessions come from one snapshot even
	// while the gateway keeps writing.
	tx, err := r.db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return VerifyReport{}, fmt.Errorf("audit: verify: %w", err)
	}
	defer tx.Rollback()
	var rep VerifyReport
	if err := verifyChain(ctx, tx, &rep); err != nil {
		return VerifyReport{}, err
	}
	if err := verifyRecordings(ctx, tx, dataDir, &rep); err != nil {
		return VerifyReport{}, err
	}
	return rep, nil
}

func verifyChain(ctx context.Context, tx *sql.Tx, rep *VerifyReport) error {
	rows, err := tx.QueryContext(ctx, `SELECT seq, ts, type, actor, subject, data, prev_hash, hash FROM audit_events ORDER BY seq`)
	if err != nil {
		return fmt.Errorf("audit: verify chain: %w", err)
	}
	defer rows.Close()
	want, prevHex := int64(1), genesisHash
	problem := func(seq int64, format string, args ...any) {
		rep.Problems = append(rep.Problems, Problem{Seq: seq, Msg: fmt.Sprintf(format, args...)})
	}
	// Each row is checked on its own (its hash against its stored
	// prev_hash) and as a link (its prev_hash against the row before), so
	// one edit gives one finding and the rows after it are still checked.
	for rows.Next() {
		var seq int64
		var row eventRow
		var storedPrev, storedHash string
		if err := rows.Scan(&seq, &row.ts, &row.typ, &row.actor, &row.subject, &row.data, &storedPrev, &storedHash); err != nil {
			return fmt.Errorf("audit: verify chain: %w", err)
		}
		rep.Events++
		switch {
		case seq > want:
			problem(want, "events missing (deleted?): seq jumps from %d to %d", want-1, seq)
		case seq < want:
			problem(seq, "unexpected seq %d before seq 1 (inserted?)", seq)
		}
		linked := storedPrev == prevHex
		if !linked {
			problem(seq, "prev_hash does not match the hash of the event before it")
		}
		if prev, ok := decodeHash(storedPrev); !ok {
			if linked {
				problem(seq, "malformed prev_hash %q", storedPrev)
			}
		} else if sum := eventHash(prev, canonicalEvent(seq, row)); hex.EncodeToString(sum[:]) != storedHash {
			problem(seq, "hash mismatch: the event was altered")
		}
		want, prevHex = seq+1, storedHash
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: verify chain: %w", err)
	}
	if rep.Events > 0 {
		rep.Head = prevHex
	}
	return nil
}

func verifyRecordings(ctx context.Context, tx *sql.Tx, dataDir string, rep *VerifyReport) error {
	rows, err := tx.QueryContext(ctx, `SELECT id, recording_path, recording_sha256 FROM sessions
		WHERE recording_sha256 IS NOT NULL ORDER BY started_at, id`)
	if err != nil {
		return fmt.Errorf("audit: verify recordings: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, want string
		var rel sql.NullString
		if err := rows.Scan(&id, &rel, &want); err != nil {
			return fmt.Errorf("audit: verify recordings: %w", err)
		}
		rep.Recordings++
		if msg := checkRecording(dataDir, rel.String, want); msg != "" {
			file := rel.String
			if file == "" {
				file = "session " + id
			}
			rep.Problems = append(rep.Problems, Problem{File: file, Msg: msg})
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: verify recordings: %w", err)
	}
	return nil
}

// checkRecording re-hashes one recording and describes what is wrong, or
// returns "". The path comes from the database, which anyone who can write
// the file can edit, so it is validated again before it is opened.
func checkRecording(dataDir, rel, want string) string {
	if rel == "" {
		return "digest recorded but no recording path"
	}
	if err := checkRecordingPath(rel); err != nil {
		return "unsafe recording path: not opened"
	}
	f, err := os.Open(filepath.Join(dataDir, filepath.FromSlash(rel)))
	if errors.Is(err, os.ErrNotExist) {
		return "recording missing"
	}
	if err != nil {
		return "cannot open recording: " + err.Error()
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "cannot read recording: " + err.Error()
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != want {
		return "sha256 mismatch: the recording was altered"
	}
	return ""
}
