package audit

import (
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"fmt"
	"strconv"
)

// EventSessionEnd is the type of the event that closes a session. The store
// writes it itself, in the transaction that closes the session row (see
// EndSession and CloseOrphans), with the digests that bind the session's
// evidence to the chain.
const EventSessionEnd = "session.end"

// Keys of a session.end event's data that Verify checks (doc.go, "What the
// chain binds").
const (
	keySessionID     = "session_id"
	keyRecordingPath = "recording_path"
	keyRecordingSHA  = "recording_sha256"
	keyCommands      = "commands"
	keyCommandsSHA   = "commands_sha256"
	keyCommandsLast  = "commands_last_id"
)

// querier is what computing a digest needs: a transaction of the writer or
// of a verifier.
type querier interface {
	Query(query string, args ...any) (*sql.Rows, error)
}

// commandDigest is the chained summary of one session's command rows.
type commandDigest struct {
	count  int64
	lastID int64 // id of the last row; 0 when there is none
	sum    string
}

const commandRowsQuery = `SELECT id, session_id, ts, user, login, host, tenant, source, command, action, rule
	FROM commands WHERE session_id = ? ORDER BY id`

// digestCommands computes the digest of the command rows of session id as
// doc.go specifies it. Values are hashed as stored, read back from the
// database, so a verifier that reads the same rows gets the same bytes.
func digestCommands(q querier, id string) (commandDigest, error) {
	rows, err := q.Query(commandRowsQuery, id)
	if err != nil {
		return commandDigest{}, fmt.Errorf("audit: digest commands of %s: %w", id, err)
	}
	defer rows.Close()
	h := sha256.New()
	var d commandDigest
	var b []byte
	for rows.Next() {
		var rowID int64
		var f [9]string
		var rule sql.NullString
		if err := rows.Scan(&rowID, &f[0], &f[1], &f[2], &f[3], &f[4], &f[5], &f[6], &f[7], &f[8], &rule); err != nil {
			return commandDigest{}, fmt.Errorf("audit: digest commands of %s: %w", id, err)
		}
		b = canonicalCommand(b[:0], rowID, f, rule)
		h.Write(b)
		d.count++
		d.lastID = rowID
	}
	if err := rows.Err(); err != nil {
		return commandDigest{}, fmt.Errorf("audit: digest commands of %s: %w", id, err)
	}
	d.sum = hex.EncodeToString(h.Sum(nil))
	return d, nil
}

// canonicalCommand appends one row's line of the digest:
//
//	[ID,"SESSION_ID","TS","USER","LOGIN","HOST","TENANT","SOURCE","COMMAND","ACTION",RULE]\n
//
// strings quoted by the chain's rules (appendJSONString), RULE null when
// NULL.
func canonicalCommand(b []byte, id int64, f [9]string, rule sql.NullString) []byte {
	b = append(b, '[')
	b = strconv.AppendInt(b, id, 10)
	for _, s := range f {
		b = append(b, ',')
		b = appendJSONString(b, s)
	}
	b = append(b, ',')
	if rule.Valid {
		b = appendJSONString(b, rule.String)
	} else {
		b = append(b, "null"...)
	}
	return append(b, ']', '\n')
}

// sealData adds the digests of session id to the data of its session.end
// event: the recording's path and SHA-256 as the session row now holds them
// (empty when there is none), and the digest of its command rows.
func sealData(tx *sql.Tx, id string, data map[string]any) error {
	var rel, sum sql.NullString
	if err := tx.QueryRow(`SELECT recording_path, recording_sha256 FROM sessions WHERE id = ?`, id).Scan(&rel, &sum); err != nil {
		return fmt.Errorf("audit: seal session %s: %w", id, err)
	}
	d, err := digestCommands(tx, id)
	if err != nil {
		return err
	}
	data[keySessionID] = id
	data[keyRecordingPath] = rel.String
	data[keyRecordingSHA] = sum.String
	data[keyCommands] = d.count
	data[keyCommandsLast] = d.lastID
	data[keyCommandsSHA] = d.sum
	return nil
}
