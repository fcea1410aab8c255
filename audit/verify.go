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
	"strconv"

	"github.com/warden-gw/warden/recorder"
	"github.com/warden-gw/warden/recstore"
)

// VerifyReport is the outcome of Verify. The data is intact when Problems is
// empty.
type VerifyReport struct {
	Events     int    // events checked
	Sessions   int    // ended sessions checked against their session.end event
	Commands   int    // command rows those events cover
	Recordings int    // recordings re-hashed
	Grants     int    // grants rows checked against their events
	Requests   int    // requests rows (and their approvals rows) checked against their events
	Head       string // hash of the last event; keep a copy elsewhere (see doc.go)
	HeadSeq    int64  // seq of the last event

	// Live lists the sessions still open: the chain covers a session from
	// its session.end on, so these are reported, not failed.
	Live []string
	// Unsealed counts ended sessions whose session.end was written before
	// events carried digests; their recordings are checked against the
	// sessions table only, and their command rows not at all.
	Unsealed int

	Problems []Problem // chain problems in seq order, then session problems
}

// Problem is one finding of Verify. A chain problem names Seq; a session
// problem names Session, and File or Row when one file or command row is at
// fault.
type Problem struct {
	Seq     int64
	Session string
	File    string // a recording, relative to the data directory
	Row     int64  // a row of commands
	Grant   int64  // a row of grants
	Request int64  // a row of requests, or approvals rows naming it
	Msg     string
}

// String formats p as one line, e.g. "seq 5: hash mismatch" or "session
// S1, recording recordings/2026-11-29/S1.cast: recording missing".
func (p Problem) String() string {
	var where string
	switch {
	case p.Session != "" && p.File != "":
		where = "session " + p.Session + ", recording " + p.File
	case p.Session != "" && p.Row != 0:
		where = "session " + p.Session + ", command row " + strconv.FormatInt(p.Row, 10)
	case p.Session != "":
		where = "session " + p.Session
	case p.File != "":
		where = p.File
	case p.Row != 0:
		where = "command row " + strconv.FormatInt(p.Row, 10)
	case p.Grant != 0:
		where = "grant " + strconv.FormatInt(p.Grant, 10)
	case p.Request != 0:
		where = "request " + strconv.FormatInt(p.Request, 10)
	default:
		where = "seq " + strconv.FormatInt(p.Seq, 10)
	}
	return where + ": " + p.Msg
}

// Verify checks the database in dataDir without writing to it. It recomputes
// the hash chain of audit_events, requiring seq to run 1, 2, 3... and each
// prev_hash to equal the hash before it. Then, for every session.end event,
// it checks the evidence the event binds (doc.go, "What the chain binds"):
// the recording file re-hashed, the session row, and the digest of the
// session's command rows recomputed; then every grants row against its
// grant.started and end events (verify_grants.go), and every requests and
// approvals row against the request's events (verify_requests.go).
// Findings are reported in Problems; the error is for failures to check
// at all.
//
// After a problem Verify carries on from the stored row, so one edit gives
// one finding and later rows are still checked.
func Verify(ctx context.Context, dataDir string) (VerifyReport, error) {
	return VerifyWith(ctx, dataDir, nil)
}

// VerifyWith is Verify reading the recordings from recs (nil: the files
// under dataDir, as Verify does): with recordings.store s3, the objects the
// chain's digests must match are in the object store.
func VerifyWith(ctx context.Context, dataDir string, recs recstore.Store) (VerifyReport, error) {
	r, err := OpenReadOnly(dataDir)
	if err != nil {
		return VerifyReport{}, err
	}
	defer r.Close()
	if recs != nil {
		r.SetRecordings(recs)
	}
	return r.Verify(ctx, dataDir)
}

// Verify is the package's Verify on r's database, with the recordings
// where SetRecordings put them, else the files under dataDir.
func (r *Reader) Verify(ctx context.Context, dataDir string) (VerifyReport, error) {
	recs := r.recordings(dataDir)
	// One read transaction: chain, sessions and commands come from one
	// snapshot even while the gateway keeps writing.
	tx, err := r.db.BeginTx(ctx, r.d.snapshot())
	if err != nil {
		return VerifyReport{}, fmt.Errorf("audit: verify: %w", err)
	}
	defer tx.Rollback()
	var rep VerifyReport
	if err := verifyChain(ctx, tx, &rep); err != nil {
		return VerifyReport{}, err
	}
	if err := verifySessions(ctx, tx, recs, &rep); err != nil {
		return VerifyReport{}, err
	}
	if err := verifyTails(ctx, tx, recs, &rep); err != nil { // verify_tails.go
		return VerifyReport{}, err
	}
	if err := verifyGrants(ctx, tx, &rep); err != nil { // verify_grants.go
		return VerifyReport{}, err
	}
	if err := verifyRequests(ctx, tx, &rep); err != nil { // verify_requests.go
		return VerifyReport{}, err
	}
	return rep, nil
}

// CheckRows compares the requests, approvals and grants rows with their
// events in the chain, as Verify does, inside tx (a read transaction on
// the store's database). It is for readers that list those rows as fact,
// such as the evidence packet, which must say when one disagrees with the
// chain without waiting for someone to run audit verify. Problems name
// their request or grant.
func CheckRows(ctx context.Context, tx *sql.Tx) ([]Problem, error) {
	var rep VerifyReport
	if err := verifyGrants(ctx, tx, &rep); err != nil {
		return nil, err
	}
	if err := verifyRequests(ctx, tx, &rep); err != nil {
		return nil, err
	}
	return rep.Problems, nil
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
		rep.Head, rep.HeadSeq = prevHex, want-1
	}
	return nil
}

// hashRecording re-hashes the recording rel from recs. It returns the
// lowercase hex SHA-256, or "" and why it could not. The path comes from the
// database, which anyone who can write the file can edit, so it is opened
// only through recstore, whose stores check it (recorder.OpenRecording, the
// one path check of the code base, and recstore.Key for object keys).
func hashRecording(ctx context.Context, recs recstore.Store, rel string) (sum, problem string) {
	f, err := recs.Open(ctx, rel)
	switch {
	case errors.Is(err, recorder.ErrUnsafePath):
		return "", "unsafe recording path: not opened"
	case errors.Is(err, os.ErrNotExist):
		return "", "recording missing"
	case err != nil:
		return "", "cannot open recording: " + err.Error()
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", "cannot read recording: " + err.Error()
	}
	return hex.EncodeToString(h.Sum(nil)), ""
}

// AnchorSeq returns the seq of the event whose hash is anchor, a chain head
// kept elsewhere (doc.go, "the anchor"), or an error matching ErrNotFound
// when the chain no longer holds it: events up to it were removed or
// rewritten. Together with a Verify that finds no problem, a found anchor
// proves the chain up to it unchanged.
func (r *Reader) AnchorSeq(ctx context.Context, anchor string) (int64, error) {
	if _, ok := decodeHash(anchor); !ok {
		return 0, invalidf("anchor %q: want 64 lowercase hex digits", anchor)
	}
	var seq int64
	err := r.db.QueryRowContext(ctx, `SELECT seq FROM audit_events WHERE hash = ?`, anchor).Scan(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, notFoundf("anchor %s is not in the chain: events up to it were removed or rewritten", anchor)
	}
	if err != nil {
		return 0, fmt.Errorf("audit: find anchor: %w", err)
	}
	return seq, nil
}
