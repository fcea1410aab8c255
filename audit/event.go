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
	"strconv"
	"strings"
	"time"
)

// genesisHash is the prev_hash of the first event: 32 zero bytes in hex.
var genesisHash = strings.Repeat("0", 64)

// Event is one record of the append-only audit chain (table audit_events).
type Event struct {
	Seq      int64          // position in the chain, from 1; assigned by the writer
	TS       time.Time      // when it happened; zero means now
	Type     string         // e.g. "session.start"; see the package documentation
	Actor    string         // who acted: a user name, or "warden" for the gateway
	Subject  string         // what it concerns: a session ID, host, role or grant
	Data     map[string]any // details; nil is stored as {}
	PrevHash string         // hash of the previous event; assigned by the writer
	Hash     string         // this event's hash; assigned by the writer
}

// chainTip is the head of the chain as the writer last committed (or, within
// a batch, tentatively wrote) it.
type chainTip struct {
	seq  int64
	hash [sha256.Size]byte
}

// loadTip reads the chain head at open.
func loadTip(ctx context.Context, db *sql.DB) (chainTip, error) {
	return scanTip(db.QueryRowContext(ctx, tipQuery))
}

// loadTipTx reads the chain head inside the writer's transaction.
func loadTipTx(tx *sql.Tx) (chainTip, error) { return scanTip(tx.QueryRow(tipQuery)) }

const tipQuery = `SELECT seq, hash FROM audit_events ORDER BY seq DESC LIMIT 1`

func scanTip(row *sql.Row) (chainTip, error) {
	var seq int64
	var h string
	err := row.Scan(&seq, &h)
	if errors.Is(err, sql.ErrNoRows) {
		return chainTip{}, nil
	}
	if err != nil {
		return chainTip{}, fmt.Errorf("audit: read chain head: %w", err)
	}
	sum, ok := decodeHash(h)
	if !ok {
		// Chaining onto a damaged head would bury the damage; refuse
		// until someone has looked.
		return chainTip{}, fmt.Errorf("audit: chain head seq %d has a malformed hash; run: warden audit verify", seq)
	}
	return chainTip{seq: seq, hash: sum}, nil
}

// decodeHash parses 64 lowercase hex digits.
func decodeHash(h string) (sum [sha256.Size]byte, ok bool) {
	if len(h) != 2*sha256.Size || strings.ToLower(h) != h {
		return sum, false
	}
	_, err := hex.Decode(sum[:], []byte(h))
	return sum, err == nil
}

// Append adds e to the audit chain and returns once it is committed. The
// writer assigns Seq, PrevHash and Hash; TS defaults to now. Invalid UTF-8 in
// the text fields is replaced by U+FFFD, so that what is hashed is exactly
// what is stored. Data must be encodable as JSON.
func (s *Store) Append(ctx context.Context, e Event) error {
	if e.Type == "" {
		return invalidf("append event: empty type")
	}
	if e.Type == EventSessionEnd {
		// Only EndSession and CloseOrphans write it, sealed with the
		// session's digests; an unsealed one would stand in for it.
		return invalidf("append event: %s is written by EndSession", e.Type)
	}
	ts, err := stampOrNow(e.TS, s.now)
	if err != nil {
		return err
	}
	data, err := canonicalData(e.Data)
	if err != nil {
		return invalidf("append event %s: data: %v", e.Type, err)
	}
	row := eventRow{
		ts:      ts,
		typ:     strings.ToValidUTF8(e.Type, "\uFFFD"),
		actor:   strings.ToValidUTF8(e.Actor, "\uFFFD"),
		subject: strings.ToValidUTF8(e.Subject, "\uFFFD"),
		data:    data,
	}
	return s.write(ctx, func(tx *sql.Tx, tip *chainTip) error {
		return appendEvent(tx, tip, row)
	})
}

// eventRow is an event as stored: every field in its final text form.
type eventRow struct {
	ts, typ, actor, subject, data string
}

// appendEvent links row to the chain head and inserts it. It runs in the
// writer goroutine only, which is what keeps the chain from forking.
func appendEvent(tx *sql.Tx, tip *chainTip, row eventRow) error {
	seq := tip.seq + 1
	prev := hex.EncodeToString(tip.hash[:]) // all zeros before the first event: genesisHash
	sum := eventHash(tip.hash, canonicalEvent(seq, row))
	hash := hex.EncodeToString(sum[:])
	if _, err := tx.Exec(`INSERT INTO audit_events (seq, ts, type, actor, subject, data, prev_hash, hash)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		seq, row.ts, row.typ, row.actor, row.subject, row.data, prev, hash); err != nil {
		return fmt.Errorf("audit: append event %s: %w", row.typ, err)
	}
	*tip = chainTip{seq: seq, hash: sum}
	return nil
}

// eventHash is sha256(prev || canonical), prev being the raw 32 bytes.
func eventHash(prev [sha256.Size]byte, canonical []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write(prev[:])
	h.Write(canonical)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// canonicalEvent is the byte string that is hashed; the package
// documentation specifies it for verifiers written in other languages. data
// is embedded verbatim: it is already canonical when written, and Verify
// must hash exactly the stored text.
func canonicalEvent(seq int64, row eventRow) []byte {
	b := make([]byte, 0, 96+len(row.ts)+len(row.typ)+len(row.actor)+len(row.subject)+len(row.data))
	b = append(b, `{"seq":`...)
	b = strconv.AppendInt(b, seq, 10)
	b = append(b, `,"ts":`...)
	b = appendJSONString(b, row.ts)
	b = append(b, `,"type":`...)
	b = appendJSONString(b, row.typ)
	b = append(b, `,"actor":`...)
	b = appendJSONString(b, row.actor)
	b = append(b, `,"subject":`...)
	b = appendJSONString(b, row.subject)
	b = append(b, `,"data":`...)
	b = append(b, row.data...)
	return append(b, '}')
}

// appendJSONString quotes s with the fewest fixed rules: '"' and '\' are
// backslash-escaped, bytes below 0x20 become \u00xx, every other byte is
// copied. The rules are spelled out here rather than left to encoding/json,
// whose escaping has changed between Go releases and would then break
// verification of old chains.
func appendJSONString(b []byte, s string) []byte {
	const hexDigits = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		default:
			b = append(b, c)
		}
	}
	return append(b, '"')
}

// canonicalData encodes data as a JSON object with sorted keys at every
// level and no insignificant space. Values are first encoded as encoding/json
// would (structs, times, numbers), then decoded and encoded again, so nested
// structs become sorted objects too; numbers keep their exact text.
func canonicalData(data map[string]any) (string, error) {
	if len(data) == 0 {
		return "{}", nil
	}
	first, err := marshalNoHTML(data)
	if err != nil {
		return "", err
	}
	return normalizeJSON(first)
}

// normalizeJSON re-encodes a JSON object canonically.
func normalizeJSON(b []byte) (string, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return "", err
	}
	if dec.More() {
		return "", errors.New("trailing data after JSON object")
	}
	if v == nil {
		return "", errors.New("not a JSON object")
	}
	out, err := marshalNoHTML(v)
	if err != nil {
		return "", err
	}
	return string(out), nil
}

// marshalNoHTML is json.Marshal without the \u003c-style HTML escapes, which
// only make the stored text harder for auditors to read.
func marshalNoHTML(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
