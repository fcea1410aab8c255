package sso

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
)

// End reasons written to sso_bindings.end_reason.
const (
	EndExpired       = "expired"       // key_ttl passed
	EndLogout        = "logout"        // ssh gw logout
	EndReplaced      = "replaced"      // the key signed in again
	EndDeprovisioned = "deprovisioned" // the directory removed the user
)

// Audit event types.
const (
	EventBound   = "sso.bound"   // a key was bound to a user (data: fingerprint, expires_at, issuer, subject)
	EventEnded   = "sso.ended"   // a binding ended (data: fingerprint, reason)
	EventRefused = "sso.refused" // a sign-in was refused (data: reason, fingerprint)
)

// Binding is one key bound to a user.
type Binding struct {
	Fingerprint string    `json:"fingerprint"`
	User        string    `json:"user"`
	Issuer      string    `json:"issuer"`
	Subject     string    `json:"subject"`
	ClientAddr  string    `json:"client_addr"`
	BoundAt     time.Time `json:"bound_at"`
	ExpiresAt   time.Time `json:"expires_at"`
}

// writer is the part of audit.Store the bindings write through: the
// single writer, each change with its audit event in one transaction.
type writer interface {
	Update(ctx context.Context, fn func(*audit.Tx) error) error
}

// bindings is the sso_bindings table. Writes go through the store's
// single writer; reads use its read-only pool.
type bindings struct {
	w   writer
	db  *sql.DB
	now func() time.Time
}

// bind stores key as bound to user until expires, ending the key's live
// binding, if any, as replaced.
func (b *bindings) bind(ctx context.Context, key gossh.PublicKey, nb Binding) error {
	bound, err := audit.Time(nb.BoundAt)
	if err != nil {
		return fmt.Errorf("sso: bind: %w", err)
	}
	expires, err := audit.Time(nb.ExpiresAt)
	if err != nil {
		return fmt.Errorf("sso: bind: %w", err)
	}
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(key)))
	return b.w.Update(ctx, func(tx *audit.Tx) error {
		if _, err := endWhere(tx, nb.BoundAt, EndReplaced, nb.User, "fingerprint = ?", nb.Fingerprint); err != nil {
			return err
		}
		if _, err := tx.Exec(`INSERT INTO sso_bindings (fingerprint, public_key, user, issuer, subject, client_addr, bound_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, nb.Fingerprint, line, nb.User, nb.Issuer, nb.Subject, nb.ClientAddr, bound, expires); err != nil {
			return fmt.Errorf("sso: bind: %w", err)
		}
		return tx.Append(audit.Event{TS: nb.BoundAt, Type: EventBound, Actor: nb.User, Subject: nb.Fingerprint, Data: map[string]any{
			"expires_at": expires, "issuer": nb.Issuer, "subject": nb.Subject, "client_addr": nb.ClientAddr,
		}})
	})
}

// endWhere ends the live bindings that cond selects, each with an
// sso.ended event whose actor is actor, and returns how many it ended.
// Expired ones end at their expiry and as expired, whatever reason asked:
// the record says when access really stopped.
func endWhere(tx *audit.Tx, now time.Time, reason, actor, cond string, args ...any) (int, error) {
	rows, err := tx.Query(`SELECT id, fingerprint, user, expires_at FROM sso_bindings WHERE ended_at IS NULL AND `+cond, args...)
	if err != nil {
		return 0, fmt.Errorf("sso: end bindings: %w", err)
	}
	type live struct {
		id               int64
		fp, user, expiry string
	}
	var list []live
	for rows.Next() {
		var l live
		if err := rows.Scan(&l.id, &l.fp, &l.user, &l.expiry); err != nil {
			rows.Close()
			return 0, fmt.Errorf("sso: end bindings: %w", err)
		}
		list = append(list, l)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("sso: end bindings: %w", err)
	}
	nowText, err := audit.Time(now)
	if err != nil {
		return 0, err
	}
	for _, l := range list {
		at, why, who := nowText, reason, actor
		if l.expiry <= nowText {
			at, why, who = l.expiry, EndExpired, "warden"
		}
		if _, err := tx.Exec(`UPDATE sso_bindings SET ended_at = ?, end_reason = ? WHERE id = ?`, at, why, l.id); err != nil {
			return 0, fmt.Errorf("sso: end binding: %w", err)
		}
		if who == "" {
			who = l.user
		}
		if err := tx.Append(audit.Event{TS: now, Type: EventEnded, Actor: who, Subject: l.fp, Data: map[string]any{
			"user": l.user, "reason": why, "ended_at": at,
		}}); err != nil {
			return 0, err
		}
	}
	return len(list), nil
}

// lookup returns the user key fp is bound to now. A binding past its
// expiry is not returned even before the sweep has ended it.
func (b *bindings) lookup(ctx context.Context, fp string) (Binding, bool, error) {
	now, err := audit.Time(b.now())
	if err != nil {
		return Binding{}, false, err
	}
	list, err := b.query(ctx, `fingerprint = ? AND expires_at > ?`, fp, now)
	if err != nil || len(list) == 0 {
		return Binding{}, false, err
	}
	return list[0], true, nil
}

// live returns user's live, unexpired bindings, soonest expiry first.
func (b *bindings) live(ctx context.Context, user string) ([]Binding, error) {
	now, err := audit.Time(b.now())
	if err != nil {
		return nil, err
	}
	return b.query(ctx, `user = ? AND expires_at > ?`, user, now)
}

func (b *bindings) query(ctx context.Context, cond string, args ...any) ([]Binding, error) {
	rows, err := b.db.QueryContext(ctx, `SELECT fingerprint, user, issuer, subject, COALESCE(client_addr, ''), bound_at, expires_at
		FROM sso_bindings WHERE ended_at IS NULL AND `+cond+` ORDER BY expires_at, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("sso: read bindings: %w", err)
	}
	defer rows.Close()
	var out []Binding
	for rows.Next() {
		var x Binding
		var bound, expires string
		if err := rows.Scan(&x.Fingerprint, &x.User, &x.Issuer, &x.Subject, &x.ClientAddr, &bound, &expires); err != nil {
			return nil, fmt.Errorf("sso: read bindings: %w", err)
		}
		if x.BoundAt, err = audit.ParseTime(bound); err != nil {
			return nil, fmt.Errorf("sso: read bindings: %w", err)
		}
		if x.ExpiresAt, err = audit.ParseTime(expires); err != nil {
			return nil, fmt.Errorf("sso: read bindings: %w", err)
		}
		out = append(out, x)
	}
	return out, rows.Err()
}

// ErrNotBound is returned by Logout when the key has no live binding of
// that user.
var ErrNotBound = errors.New("sso: key is not signed in")

// endKey ends fp's live binding, which must be user's.
func (b *bindings) endKey(ctx context.Context, fp, user, reason string) error {
	return b.w.Update(ctx, func(tx *audit.Tx) error {
		n, err := endWhere(tx, b.now(), reason, user, "fingerprint = ? AND user = ?", fp, user)
		if err == nil && n == 0 {
			return ErrNotBound
		}
		return err
	})
}

// endUser ends every live binding of user.
func (b *bindings) endUser(ctx context.Context, user, reason, actor string) (int, error) {
	var n int
	err := b.w.Update(ctx, func(tx *audit.Tx) error {
		var err error
		n, err = endWhere(tx, b.now(), reason, actor, "user = ?", user)
		return err
	})
	return n, err
}

// sweep ends the bindings whose expiry has passed, as expired.
func (b *bindings) sweep(ctx context.Context) (int, error) {
	now := b.now()
	nowText, err := audit.Time(now)
	if err != nil {
		return 0, err
	}
	var n int
	err = b.w.Update(ctx, func(tx *audit.Tx) error {
		var err error
		n, err = endWhere(tx, now, EndExpired, "warden", "expires_at <= ?", nowText)
		return err
	})
	return n, err
}
