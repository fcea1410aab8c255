package audit

import (
	"context"
	"database/sql"
	"strings"
	"time"
)

// Tx is a write transaction of the single writer, handed to the function
// given to Store.Update. Rows it writes and the audit events it appends
// commit together or not at all, so a state change can never be stored
// without its event, nor an event without its change.
type Tx struct {
	tx  *sql.Tx
	tip *chainTip
	now func() time.Time
}

// Exec runs a statement in the transaction.
func (t *Tx) Exec(query string, args ...any) (sql.Result, error) { return t.tx.Exec(query, args...) }

// Query runs a query in the transaction; it sees the transaction's writes.
func (t *Tx) Query(query string, args ...any) (*sql.Rows, error) { return t.tx.Query(query, args...) }

// QueryRow runs a query that returns at most one row.
func (t *Tx) QueryRow(query string, args ...any) *sql.Row { return t.tx.QueryRow(query, args...) }

// Append adds an event to the hash chain inside the transaction.
func (t *Tx) Append(e Event) error {
	if e.Type == "" {
		return invalidf("append event: empty type")
	}
	if e.Type == EventSessionEnd {
		// Only EndSession and CloseOrphans write it, sealed with the
		// session's digests; an unsealed one would stand in for it.
		return invalidf("append event: %s is written by EndSession", e.Type)
	}
	ts, err := stampOrNow(e.TS, t.now)
	if err != nil {
		return err
	}
	data, err := canonicalData(e.Data)
	if err != nil {
		return invalidf("append event %s: data: %v", e.Type, err)
	}
	return appendEvent(t.tx, t.tip, eventRow{
		ts:      ts,
		typ:     strings.ToValidUTF8(e.Type, "\uFFFD"),
		actor:   strings.ToValidUTF8(e.Actor, "\uFFFD"),
		subject: strings.ToValidUTF8(e.Subject, "\uFFFD"),
		data:    data,
	})
}

// Time renders t the way every stored time is written (RFC 3339 UTC, fixed
// width, so text order is time order), for callers writing their own rows.
func Time(t time.Time) (string, error) { return formatTime(t) }

// ParseTime is the inverse of Time.
func ParseTime(s string) (time.Time, error) { return parseTime(s) }

// Update runs fn in the writer goroutine, inside a savepoint of the
// writer's transaction: if fn returns an error, everything it wrote
// (events included) is rolled back and the error returned. fn must not
// block on anything but the database, because every other write waits.
func (s *Store) Update(ctx context.Context, fn func(*Tx) error) error {
	return s.write(ctx, func(tx *sql.Tx, tip *chainTip) error {
		return fn(&Tx{tx: tx, tip: tip, now: s.now})
	})
}
