package identity

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/warden-gw/warden/audit"
)

// querier is what both the read pool and a write transaction offer.
type querier interface {
	Query(query string, args ...any) (*sql.Rows, error)
	QueryRow(query string, args ...any) *sql.Row
}

// dbQuerier adapts a *sql.DB with a context to querier.
type dbQuerier struct {
	ctx context.Context
	db  *sql.DB
}

func (q dbQuerier) Query(query string, args ...any) (*sql.Rows, error) {
	return q.db.QueryContext(q.ctx, query, args...)
}
func (q dbQuerier) QueryRow(query string, args ...any) *sql.Row {
	return q.db.QueryRowContext(q.ctx, query, args...)
}

const userCols = `id, directory, COALESCE(external_id, ''), user_name, display_name, emails, active, ssh_keys, created_at, updated_at, COALESCE(deleted_at, '')`

func scanUser(sc interface{ Scan(...any) error }) (User, error) {
	var u User
	var emails, keys, created, updated, deleted string
	if err := sc.Scan(&u.ID, &u.Directory, &u.ExternalID, &u.UserName, &u.DisplayName, &emails, &u.Active, &keys, &created, &updated, &deleted); err != nil {
		return User{}, err
	}
	if err := json.Unmarshal([]byte(emails), &u.Emails); err != nil {
		return User{}, fmt.Errorf("identity: user %s emails: %w", u.ID, err)
	}
	if err := json.Unmarshal([]byte(keys), &u.Keys); err != nil {
		return User{}, fmt.Errorf("identity: user %s keys: %w", u.ID, err)
	}
	var err error
	if u.Created, err = audit.ParseTime(created); err != nil {
		return User{}, err
	}
	if u.Updated, err = audit.ParseTime(updated); err != nil {
		return User{}, err
	}
	if deleted != "" {
		if u.Deleted, err = audit.ParseTime(deleted); err != nil {
			return User{}, err
		}
	}
	return u, nil
}

func queryUsers(q querier, where string, args ...any) ([]User, error) {
	rows, err := q.Query(`SELECT `+userCols+` FROM directory_users WHERE `+where+` ORDER BY user_key`, args...)
	if err != nil {
		return nil, fmt.Errorf("identity: query users: %w", err)
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

func writeUser(x *audit.Tx, u User, insert bool) error {
	emails, _ := json.Marshal(nonNil(u.Emails))
	keys, _ := json.Marshal(nonNil(u.Keys))
	created, err := audit.Time(u.Created)
	if err != nil {
		return err
	}
	updated, err := audit.Time(u.Updated)
	if err != nil {
		return err
	}
	var deleted any
	if !u.Deleted.IsZero() {
		s, err := audit.Time(u.Deleted)
		if err != nil {
			return err
		}
		deleted = s
	}
	if insert {
		_, err = x.Exec(`INSERT INTO directory_users (id, directory, external_id, user_name, user_key, display_name, emails, active, ssh_keys, created_at, updated_at, deleted_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			u.ID, u.Directory, nullable(u.ExternalID), u.UserName, fold(u.UserName), u.DisplayName, string(emails), u.Active, string(keys), created, updated, deleted)
	} else {
		_, err = x.Exec(`UPDATE directory_users SET external_id = ?, user_name = ?, user_key = ?, display_name = ?, emails = ?, active = ?, ssh_keys = ?, updated_at = ?, deleted_at = ?
			WHERE id = ?`,
			nullable(u.ExternalID), u.UserName, fold(u.UserName), u.DisplayName, string(emails), u.Active, string(keys), updated, deleted, u.ID)
	}
	if err != nil {
		if strings.Contains(err.Error(), "UNIQUE") {
			return conflictf("userName %q or externalId is already taken", u.UserName)
		}
		return fmt.Errorf("identity: write user: %w", err)
	}
	return nil
}

func scanGroup(sc interface{ Scan(...any) error }) (Group, error) {
	var g Group
	var created, updated string
	if err := sc.Scan(&g.ID, &g.Directory, &g.ExternalID, &g.DisplayName, &created, &updated); err != nil {
		return Group{}, err
	}
	var err error
	if g.Created, err = audit.ParseTime(created); err != nil {
		return Group{}, err
	}
	g.Updated, err = audit.ParseTime(updated)
	return g, err
}

const groupCols = `id, directory, COALESCE(external_id, ''), display_name, created_at, updated_at`

func queryGroups(q querier, where string, args ...any) ([]Group, error) {
	rows, err := q.Query(`SELECT `+groupCols+` FROM directory_groups WHERE `+where+` ORDER BY display_name, id`, args...)
	if err != nil {
		return nil, fmt.Errorf("identity: query groups: %w", err)
	}
	defer rows.Close()
	var out []Group
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// members returns the user IDs in group id, sorted.
func members(q querier, id string) ([]string, error) {
	rows, err := q.Query(`SELECT user_id FROM directory_members WHERE group_id = ? ORDER BY user_id`, id)
	if err != nil {
		return nil, fmt.Errorf("identity: members: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func writeGroup(x *audit.Tx, g Group, insert bool) error {
	created, err := audit.Time(g.Created)
	if err != nil {
		return err
	}
	updated, err := audit.Time(g.Updated)
	if err != nil {
		return err
	}
	if insert {
		_, err = x.Exec(`INSERT INTO directory_groups (id, directory, external_id, display_name, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)`,
			g.ID, g.Directory, nullable(g.ExternalID), g.DisplayName, created, updated)
	} else {
		_, err = x.Exec(`UPDATE directory_groups SET external_id = ?, display_name = ?, updated_at = ? WHERE id = ?`,
			nullable(g.ExternalID), g.DisplayName, updated, g.ID)
	}
	if err != nil {
		return fmt.Errorf("identity: write group: %w", err)
	}
	return nil
}

// setMembers makes group id's members exactly want; it returns the user
// IDs added and removed.
func setMembers(x *audit.Tx, id string, want []string) (added, removed []string, err error) {
	have, err := members(x, id)
	if err != nil {
		return nil, nil, err
	}
	in := make(map[string]bool, len(want))
	for _, u := range want {
		in[u] = true
	}
	had := make(map[string]bool, len(have))
	for _, u := range have {
		had[u] = true
		if !in[u] {
			removed = append(removed, u)
		}
	}
	for u := range in {
		if !had[u] {
			added = append(added, u)
		}
	}
	slices.Sort(added)
	for _, u := range removed {
		if _, err := x.Exec(`DELETE FROM directory_members WHERE group_id = ? AND user_id = ?`, id, u); err != nil {
			return nil, nil, fmt.Errorf("identity: remove member: %w", err)
		}
	}
	for _, u := range added {
		if _, err := x.Exec(`INSERT INTO directory_members (group_id, user_id) VALUES (?, ?)`, id, u); err != nil {
			return nil, nil, fmt.Errorf("identity: add member: %w", err)
		}
	}
	return added, removed, nil
}

func nullable(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// stamp is t at the stored precision.
func stamp(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }
