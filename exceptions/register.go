package exceptions

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/warden-gw/warden/audit"
)

// Audit event types written with each change of the register.
const (
	EventAdded  = "exception.added"
	EventClosed = "exception.closed"
)

// Register reads and changes the exception register. Writes go through
// Store's single writer, each with its audit event in the same transaction;
// reads use DB, the store's read-only pool. The zero value is not usable:
// set DB, and Store for a register that changes entries.
type Register struct {
	Store *audit.Store     // writer for Add and Close; nil makes the register read-only
	DB    *sql.DB          // read-only pool: audit.Reader.DB() or Store.DB()
	Now   func() time.Time // clock for creation, closure and expiry; nil means time.Now
}

func (r *Register) now() time.Time {
	if r.Now == nil {
		return time.Now()
	}
	return r.Now()
}

// Filter selects entries for List. The zero Filter lists the open entries
// (expired ones included) of every tenant.
type Filter struct {
	Tenant        string    // only this tenant; "" means all
	Owner         string    // only this owner; "" means all
	IncludeClosed bool      // list closed entries too
	ExpiredOnly   bool      // only open entries whose expiry has passed
	Now           time.Time // the time Expired is judged at; zero means the register's clock
}

// Queryer runs a query; *sql.DB, *sql.Tx and *audit.Tx all have this
// method, so listings can run on the read pool or inside a writer
// transaction.
type Queryer interface {
	Query(query string, args ...any) (*sql.Rows, error)
}

// ctxDB gives *sql.DB's context-aware query the Queryer shape.
type ctxDB struct {
	ctx context.Context
	db  *sql.DB
}

func (c ctxDB) Query(q string, args ...any) (*sql.Rows, error) {
	return c.db.QueryContext(c.ctx, q, args...)
}

// List returns the entries f selects, oldest first, with Expired set.
func (r *Register) List(ctx context.Context, f Filter) ([]Exception, error) {
	if f.Now.IsZero() {
		f.Now = r.now()
	}
	return List(ctxDB{ctx, r.DB}, f)
}

// Get returns the entry id, or an error matching ErrNotFound.
func (r *Register) Get(ctx context.Context, id int64) (Exception, error) {
	return get(ctxDB{ctx, r.DB}, id, r.now())
}

// Add records e and returns it as stored, with its ID. ID, CreatedAt and the
// closure fields of e are ignored; CreatedBy names who records it.
func (r *Register) Add(ctx context.Context, e Exception) (Exception, error) {
	if err := r.writable(); err != nil {
		return Exception{}, err
	}
	var out Exception
	err := r.Store.Update(ctx, func(tx *audit.Tx) error {
		var err error
		out, err = r.AddTx(tx, e)
		return err
	})
	return out, err
}

// AddTx records e inside a writer transaction the caller already holds, for
// callers that must add an entry atomically with other changes (reconcile
// flags a stale admin this way). It appends the exception.added event.
func (r *Register) AddTx(tx *audit.Tx, e Exception) (Exception, error) {
	now := r.now()
	if err := e.check(now); err != nil {
		return Exception{}, err
	}
	created, err := audit.Time(now)
	if err != nil {
		return Exception{}, fmt.Errorf("exceptions: add: %w", err)
	}
	expires, err := audit.Time(e.ExpiresAt)
	if err != nil {
		return Exception{}, fmt.Errorf("exceptions: add: %w", err)
	}
	// RETURNING, not LastInsertId: the PostgreSQL store's driver has none.
	var id int64
	if err := tx.QueryRow(`INSERT INTO exceptions (tenant, owner, reason, controls, expires_at, created_by, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`, e.Tenant, e.Owner, e.Reason, e.Controls, expires, e.CreatedBy, created).Scan(&id); err != nil {
		return Exception{}, fmt.Errorf("exceptions: add: %w", err)
	}
	if err := tx.Append(audit.Event{
		TS: now, Type: EventAdded, Actor: e.CreatedBy, Subject: strconv.FormatInt(id, 10),
		Data: map[string]any{"tenant": e.Tenant, "owner": e.Owner, "reason": e.Reason,
			"controls": e.Controls, "expires_at": expires},
	}); err != nil {
		return Exception{}, fmt.Errorf("exceptions: add: %w", err)
	}
	return get(tx, id, now)
}

// Close closes the open entry id with a note, recording by as the person who
// closed it. It fails with ErrNotFound for an unknown ID and with
// ErrAlreadyClosed for a closed entry. Expired entries may be closed: that is
// how they are resolved.
func (r *Register) Close(ctx context.Context, id int64, by, note string) (Exception, error) {
	if err := r.writable(); err != nil {
		return Exception{}, err
	}
	if id <= 0 {
		return Exception{}, invalidf("exception ID %d: want a positive integer", id)
	}
	if err := checkName("closed_by", by); err != nil {
		return Exception{}, err
	}
	if err := checkText("note", note, MaxNote); err != nil {
		return Exception{}, err
	}
	var out Exception
	err := r.Store.Update(ctx, func(tx *audit.Tx) error {
		now := r.now()
		e, err := get(tx, id, now)
		if err != nil {
			return err
		}
		if e.Closed() {
			return kindf(ErrAlreadyClosed, "exception %d was already closed on %s by %s", id,
				e.ClosedAt.UTC().Format(time.RFC3339), e.ClosedBy)
		}
		stamp, err := audit.Time(now)
		if err != nil {
			return fmt.Errorf("exceptions: close %d: %w", id, err)
		}
		// "closed_at IS NULL" makes the update a compare-and-set, so two
		// closers racing through different writers cannot both succeed.
		res, err := tx.Exec(`UPDATE exceptions SET closed_at = ?, closed_by = ?, close_note = ?
			WHERE id = ? AND closed_at IS NULL`, stamp, by, note, id)
		if err != nil {
			return fmt.Errorf("exceptions: close %d: %w", id, err)
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return kindf(ErrAlreadyClosed, "exception %d was already closed", id)
		}
		if err := tx.Append(audit.Event{
			TS: now, Type: EventClosed, Actor: by, Subject: strconv.FormatInt(id, 10),
			Data: map[string]any{"tenant": e.Tenant, "owner": e.Owner, "note": note, "was_expired": e.Expired},
		}); err != nil {
			return fmt.Errorf("exceptions: close %d: %w", id, err)
		}
		out, err = get(tx, id, now)
		return err
	})
	return out, err
}

func (r *Register) writable() error {
	if r.Store == nil {
		return errors.New("exceptions: register is read-only (no store)")
	}
	return nil
}

const columns = `id, tenant, owner, reason, controls, expires_at, created_by, created_at, closed_at, closed_by, close_note`

// List returns the entries f selects from q, oldest first, with Expired set
// as of f.Now, which must not be zero.
func List(q Queryer, f Filter) ([]Exception, error) {
	if f.Now.IsZero() {
		return nil, errors.New("exceptions: list: no time to judge expiry at")
	}
	now, err := audit.Time(f.Now)
	if err != nil {
		return nil, fmt.Errorf("exceptions: list: %w", err)
	}
	var where []string
	var args []any
	if f.Tenant != "" {
		where, args = append(where, "tenant = ?"), append(args, f.Tenant)
	}
	if f.Owner != "" {
		where, args = append(where, "owner = ?"), append(args, f.Owner)
	}
	if !f.IncludeClosed || f.ExpiredOnly {
		where = append(where, "closed_at IS NULL")
	}
	if f.ExpiredOnly {
		// Fixed-width times: text order is time order.
		where, args = append(where, "expires_at < ?"), append(args, now)
	}
	query := "SELECT " + columns + " FROM exceptions"
	if len(where) > 0 {
		query += " WHERE " + strings.Join(where, " AND ")
	}
	return scanAll(q, query+" ORDER BY id", f.Now, args...)
}

func get(q Queryer, id int64, now time.Time) (Exception, error) {
	list, err := scanAll(q, "SELECT "+columns+" FROM exceptions WHERE id = ?", now, id)
	if err != nil {
		return Exception{}, err
	}
	if len(list) == 0 {
		return Exception{}, kindf(ErrNotFound, "no exception with ID %d", id)
	}
	return list[0], nil
}

func scanAll(q Queryer, query string, now time.Time, args ...any) ([]Exception, error) {
	rows, err := q.Query(query, args...)
	if err != nil {
		return nil, fmt.Errorf("exceptions: list: %w", err)
	}
	defer rows.Close()
	var out []Exception
	for rows.Next() {
		var e Exception
		var expires, created string
		var closedAt, closedBy, note sql.NullString
		if err := rows.Scan(&e.ID, &e.Tenant, &e.Owner, &e.Reason, &e.Controls, &expires, &e.CreatedBy,
			&created, &closedAt, &closedBy, &note); err != nil {
			return nil, fmt.Errorf("exceptions: list: %w", err)
		}
		if e.ExpiresAt, err = audit.ParseTime(expires); err != nil {
			return nil, fmt.Errorf("exceptions: entry %d: expires_at: %w", e.ID, err)
		}
		if e.CreatedAt, err = audit.ParseTime(created); err != nil {
			return nil, fmt.Errorf("exceptions: entry %d: created_at: %w", e.ID, err)
		}
		if closedAt.Valid {
			if e.ClosedAt, err = audit.ParseTime(closedAt.String); err != nil {
				return nil, fmt.Errorf("exceptions: entry %d: closed_at: %w", e.ID, err)
			}
		}
		e.ClosedBy, e.CloseNote = closedBy.String, note.String
		e.Expired = e.ExpiredAt(now)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("exceptions: list: %w", err)
	}
	return out, nil
}
