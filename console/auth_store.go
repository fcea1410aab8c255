package console

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/warden-gw/warden/audit"
)

// The console_links and console_sessions tables (migration 0008). Writes go
// through the audit store's single writer, each with its audit event in
// the same transaction, so a sign-in is never stored without its event nor
// the reverse; reads use the store's read-only pool.

// browserSession is one row of console_sessions.
type browserSession struct {
	id, user, method      string
	created, lastSeen     time.Time
	ended                 time.Time
	endReason             string
	clientAddr, userAgent string
}

func (b *browserSession) live() bool { return b.ended.IsZero() }

// sessionStart is what a sign-in knows of the session it starts.
type sessionStart struct {
	user, method          string
	clientAddr, userAgent string
	linkID                int64 // 0 when not signed in by a link
	fingerprint           string
}

// newSession stores a session for s and appends console.signin; it
// returns the cookie's token and the session's public ID.
func (c *Console) newSession(ctx context.Context, s sessionStart) (tok, id string, err error) {
	tok, id, err = c.sessionTokens()
	if err != nil {
		return "", "", err
	}
	now := c.d.Now().UTC()
	err = c.d.Store.Update(ctx, func(tx *audit.Tx) error {
		return c.insertSession(tx, s, tok, id, now)
	})
	if err != nil {
		return "", "", err
	}
	return tok, id, nil
}

// sessionTokens makes a session's cookie token (256 bits) and public ID
// (96 bits: unguessable too, though it grants nothing alone).
func (c *Console) sessionTokens() (tok, id string, err error) {
	if tok, err = c.randToken(32); err != nil {
		return "", "", fmt.Errorf("console: random: %w", err)
	}
	if id, err = c.randToken(12); err != nil {
		return "", "", fmt.Errorf("console: random: %w", err)
	}
	return tok, id, nil
}

// insertSession writes the session row and its console.signin event in tx.
func (c *Console) insertSession(tx *audit.Tx, s sessionStart, tok, id string, now time.Time) error {
	ts, err := audit.Time(now)
	if err != nil {
		return err
	}
	var link any
	if s.linkID != 0 {
		link = s.linkID
	}
	if _, err := tx.Exec(`INSERT INTO console_sessions (id, token_sha256, user, method, link_id, created_at, last_seen, client_addr, user_agent)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, tokenHash(tok), s.user, s.method, link, ts, ts, s.clientAddr, s.userAgent); err != nil {
		return fmt.Errorf("console: store session: %w", err)
	}
	data := map[string]any{"method": s.method, "session": id, "client_addr": s.clientAddr, "user_agent": s.userAgent}
	if s.fingerprint != "" {
		data["fingerprint"] = s.fingerprint
	}
	if s.linkID != 0 {
		data["link"] = s.linkID
	}
	return tx.Append(audit.Event{TS: now, Type: EventSignIn, Actor: s.user, Subject: id, Data: data})
}

const sessionCols = `id, user, method, created_at, last_seen, COALESCE(ended_at, ''), COALESCE(end_reason, ''), COALESCE(client_addr, ''), COALESCE(user_agent, '')`

func scanSession(row interface{ Scan(...any) error }) (*browserSession, error) {
	var b browserSession
	var created, seen, ended string
	if err := row.Scan(&b.id, &b.user, &b.method, &created, &seen, &ended, &b.endReason, &b.clientAddr, &b.userAgent); err != nil {
		return nil, err
	}
	var err error
	if b.created, err = audit.ParseTime(created); err != nil {
		return nil, err
	}
	if b.lastSeen, err = audit.ParseTime(seen); err != nil {
		return nil, err
	}
	if ended != "" {
		if b.ended, err = audit.ParseTime(ended); err != nil {
			return nil, err
		}
	}
	return &b, nil
}

// sessionByToken returns the session whose cookie token hashes to hash,
// or nil.
func (c *Console) sessionByToken(ctx context.Context, hash string) (*browserSession, error) {
	b, err := scanSession(c.d.Store.DB().QueryRowContext(ctx, `SELECT `+sessionCols+` FROM console_sessions WHERE token_sha256 = ?`, hash))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("console: read session: %w", err)
	}
	return b, nil
}

// linkKeyHeld reports whether the link that signed bs in is still bound
// to bs's user: same user, and its key still theirs (keyStillHeld). A
// missing link or a store error answers false.
func (c *Console) linkKeyHeld(ctx context.Context, bs *browserSession) bool {
	var user, fp string
	err := c.d.Store.DB().QueryRowContext(ctx, `SELECT l.user, l.fingerprint FROM console_sessions s
		JOIN console_links l ON l.id = s.link_id WHERE s.id = ?`, bs.id).Scan(&user, &fp)
	if err != nil {
		if !errors.Is(err, sql.ErrNoRows) {
			c.log.Error("console: read session's link", "session", bs.id, "err", err)
		}
		return false
	}
	return user == bs.user && c.keyStillHeld(ctx, user, fp)
}

// liveSessions returns user's live browser sessions, newest first.
func (c *Console) liveSessions(ctx context.Context, user string) ([]*browserSession, error) {
	rows, err := c.d.Store.DB().QueryContext(ctx, `SELECT `+sessionCols+` FROM console_sessions
		WHERE user = ? AND ended_at IS NULL ORDER BY created_at DESC, id`, user)
	if err != nil {
		return nil, fmt.Errorf("console: list sessions: %w", err)
	}
	defer rows.Close()
	var out []*browserSession
	now := c.d.Now().UTC()
	for rows.Next() {
		b, err := scanSession(rows)
		if err != nil {
			return nil, fmt.Errorf("console: list sessions: %w", err)
		}
		if now.Sub(b.lastSeen) > idleTimeout {
			continue // ended in all but the row; its next use records it
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

// touchSession records a request at now.
func (c *Console) touchSession(ctx context.Context, id string, now time.Time) error {
	ts, err := audit.Time(now)
	if err != nil {
		return err
	}
	return c.d.Store.Update(ctx, func(tx *audit.Tx) error {
		_, err := tx.Exec(`UPDATE console_sessions SET last_seen = ? WHERE id = ? AND ended_at IS NULL AND last_seen < ?`, ts, id, ts)
		return err
	})
}

// endSession ends bs for reason (signout, revoked, idle, left, key) with its
// audit event of type typ; by is who ended it when that is not its own
// user. Ending an ended session changes nothing and reports false.
func (c *Console) endSession(ctx context.Context, bs *browserSession, reason, by, typ string) bool {
	now := c.d.Now().UTC()
	ts, err := audit.Time(now)
	if err != nil {
		return false
	}
	ended := false
	err = c.d.Store.Update(context.WithoutCancel(ctx), func(tx *audit.Tx) error {
		var byArg any
		if by != "" {
			byArg = by
		}
		res, err := tx.Exec(`UPDATE console_sessions SET ended_at = ?, end_reason = ?, ended_by = ? WHERE id = ? AND ended_at IS NULL`,
			ts, reason, byArg, bs.id)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n != 1 {
			return nil
		}
		ended = true
		actor := bs.user
		if by != "" {
			actor = by
		}
		return tx.Append(audit.Event{TS: now, Type: typ, Actor: actor, Subject: bs.id, Data: map[string]any{
			"user": bs.user, "reason": reason, "method": bs.method}})
	})
	if err != nil {
		c.log.Error("console: end session", "session", bs.id, "err", err)
		return false
	}
	return ended
}

// EndUser ends every live browser session of user, each with a
// console.session_ended event whose reason is reason and whose actor is
// by, and spends the user's unspent sign-in links; it returns how many
// sessions it ended. The gateway calls it when a directory deprovisions
// the user: lookup and the link's redemption alone would refuse them only
// while they are out of the policy, and a session not clicked, or a link
// not opened, until the user is re-activated would work as if they had
// never left. (The gateway's identity.access_removed event records the
// moment; a spent link is refused on the record if it is opened later.)
func (c *Console) EndUser(ctx context.Context, user, reason, by string) (int, error) {
	ts, err := audit.Time(c.d.Now().UTC())
	if err != nil {
		return 0, err
	}
	if err := c.d.Store.Update(ctx, func(tx *audit.Tx) error {
		_, err := tx.Exec(`UPDATE console_links SET used_at = ? WHERE user = ? AND used_at IS NULL`, ts, user)
		return err
	}); err != nil {
		return 0, fmt.Errorf("console: spend links of %s: %w", user, err)
	}
	rows, err := c.d.Store.DB().QueryContext(ctx, `SELECT `+sessionCols+` FROM console_sessions
		WHERE user = ? AND ended_at IS NULL`, user)
	if err != nil {
		return 0, fmt.Errorf("console: end sessions of %s: %w", user, err)
	}
	var live []*browserSession
	for rows.Next() {
		b, err := scanSession(rows)
		if err != nil {
			rows.Close()
			return 0, fmt.Errorf("console: end sessions of %s: %w", user, err)
		}
		live = append(live, b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("console: end sessions of %s: %w", user, err)
	}
	n := 0
	for _, b := range live {
		if c.endSession(ctx, b, reason, by, EventSessionEnded) {
			n++
		}
	}
	return n, nil
}

// sessionOf returns user's session with public ID id, or nil: another
// user's session is as unknown as a made-up ID.
func (c *Console) sessionOf(ctx context.Context, user, id string) (*browserSession, error) {
	b, err := scanSession(c.d.Store.DB().QueryRowContext(ctx, `SELECT `+sessionCols+` FROM console_sessions WHERE id = ? AND user = ?`, id, user))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("console: read session: %w", err)
	}
	return b, nil
}

// sweepEvery is how often Run records idle sessions as ended. A session
// stops working at its idle moment either way (lookup); the sweep keeps
// the table, which auditors read with sqlite3, from showing them live.
const sweepEvery = time.Minute

// Run ends idle browser sessions in the table until ctx is done.
func (c *Console) Run(ctx context.Context) error {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		c.Sweep(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep does one round of Run's work and returns how many sessions it
// ended.
func (c *Console) Sweep(ctx context.Context) int {
	cutoff, err := audit.Time(c.d.Now().UTC().Add(-idleTimeout))
	if err != nil {
		return 0
	}
	rows, err := c.d.Store.DB().QueryContext(ctx, `SELECT `+sessionCols+` FROM console_sessions
		WHERE ended_at IS NULL AND last_seen < ?`, cutoff)
	if err != nil {
		c.log.Error("console: sweep sessions", "err", err)
		return 0
	}
	var idle []*browserSession
	for rows.Next() {
		b, err := scanSession(rows)
		if err != nil {
			c.log.Error("console: sweep sessions", "err", err)
			break
		}
		idle = append(idle, b)
	}
	rows.Close()
	n := 0
	for _, b := range idle {
		if c.endSession(ctx, b, "idle", "", EventSessionEnded) {
			n++
		}
	}
	return n
}
