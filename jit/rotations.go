package jit

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// Rotation states (column rotations.state). A rotation is owed from the
// start of its break-glass grant; an attempt that fails leaves it failed
// (and still owed: it is retried); only a verified rotation makes it done.
const (
	RotationOwed   = "owed"
	RotationFailed = "failed"
	RotationDone   = "done"
)

// Audit event types of rotations. EventRotationResult is the type the
// evidence packet reads (data: grant_id, tenant, role, ok, error).
const (
	EventRotationOwed   = "rotation.owed"
	EventRotationResult = "rotation.result"
)

// Rotation is what a break-glass grant owes: the static key at KVPath,
// which opens Login on Host of Tenant, must be replaced once the grant has
// ended (table rotations). The target is recorded when the grant starts,
// so the policy of the day cannot skip or redirect it.
type Rotation struct {
	ID            int64     `json:"id"`
	GrantID       int64     `json:"grant_id"`
	User          string    `json:"user"` // the grant's owner
	Tenant        string    `json:"tenant"`
	Role          string    `json:"role"`
	KVPath        string    `json:"kv_path"`
	Host          string    `json:"host"`  // "" when the role did not name exactly one host
	Login         string    `json:"login"` // "" likewise
	State         string    `json:"state"`
	Attempts      int       `json:"attempts"`
	LastError     string    `json:"last_error,omitempty"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	// Retire lists the authorized_keys blobs of every key Vault held for
	// KVPath since the grant started (recorded by each attempt before it
	// touches the host); none of them may be left on the host.
	Retire         []string  `json:"-"`
	OldFingerprint string    `json:"old_fingerprint,omitempty"`
	NewFingerprint string    `json:"new_fingerprint,omitempty"`
	CreatedAt      time.Time `json:"created_at"`
	DoneAt         time.Time `json:"done_at,omitzero"`
	GrantEndedAt   time.Time `json:"grant_ended_at,omitzero"` // zero while the grant runs
}

// Owed reports whether the rotation is still to be done.
func (r Rotation) Owed() bool { return r.State != RotationDone }

// Due reports whether the rotation should be attempted: it is owed and its
// grant has ended.
func (r Rotation) Due() bool { return r.Owed() && !r.GrantEndedAt.IsZero() }

// RotationTarget returns the host and login a static credential of role
// opens under pol, or why there is no single one. One static key opens one
// host and login: rotating it on a second host would log in there with the
// key the first rotation just replaced.
func RotationTarget(pol *policy.Config, role *policy.Role) (host, login string, err error) {
	hosts := pol.HostsOf(role)
	if len(hosts) != 1 || len(role.Logins) != 1 {
		return "", "", fmt.Errorf("a static credential must open exactly one host and login (role %s covered %d hosts, %d logins when the grant started)",
			role.Name, len(hosts), len(role.Logins))
	}
	return hosts[0].Name, role.Logins[0], nil
}

// oweRotation records, inside the transaction that starts grant g, the
// rotation its role's static credential will need. Roles without one owe
// nothing. A role whose target is ambiguous still owes a rotation, whose
// attempts fail loudly, rather than none.
func oweRotation(tx *audit.Tx, pol *policy.Config, role *policy.Role, g Grant, now time.Time) error {
	if role.Credential.VaultKV == "" {
		return nil
	}
	host, login, terr := RotationTarget(pol, role)
	r := Rotation{GrantID: g.ID, Tenant: g.Tenant, Role: g.Role, KVPath: role.Credential.VaultKV,
		Host: host, Login: login, State: RotationOwed, NextAttemptAt: now, CreatedAt: now}
	if terr != nil {
		r.LastError = terr.Error()
	}
	if err := insertRotation(tx, r); err != nil {
		return err
	}
	return record(tx, now, EventRotationOwed, actorWarden, grantSubject(g.ID), map[string]any{
		"grant_id": g.ID, "tenant": g.Tenant, "role": g.Role, "kv_path": r.KVPath, "host": host, "login": login,
	})
}

// EnsureRotation returns grant g's rotation, recording one from the
// current policy when the grant has none although its role (now) names a
// static credential: a grant started before rotations were recorded. ok
// is false when nothing is owed.
func (s *Service) EnsureRotation(ctx context.Context, g Grant) (Rotation, bool, error) {
	pol := s.policy()
	now := s.now()
	var r Rotation
	var ok bool
	err := s.store.Update(ctx, func(tx *audit.Tx) error {
		var err error
		if r, ok, err = loadRotation(tx, g.ID); err != nil || ok {
			return err
		}
		role := pol.Role(g.Role)
		if role == nil || role.Credential.VaultKV == "" || role.Tenant != g.Tenant {
			return nil
		}
		if err := oweRotation(tx, pol, role, g, now); err != nil {
			return err
		}
		r, ok, err = loadRotation(tx, g.ID)
		return err
	})
	return r, ok, err
}

// BeginRotationAttempt counts an attempt of grant grantID's rotation and
// moves its next attempt to now + backoff(attempt) before the attempt
// runs, so that an attempt cut short by a crash is retried after the
// backoff, not at once and not never. ok is false when the rotation is
// done or unknown.
func (s *Service) BeginRotationAttempt(ctx context.Context, grantID int64, backoff func(attempt int) time.Duration) (Rotation, bool, error) {
	now := s.now()
	var r Rotation
	var ok bool
	err := s.store.Update(ctx, func(tx *audit.Tx) error {
		var err error
		if r, ok, err = loadRotation(tx, grantID); err != nil || !ok || !r.Owed() {
			ok = ok && r.Owed()
			return err
		}
		r.Attempts++
		r.NextAttemptAt = now.Add(backoff(r.Attempts))
		nx, _ := audit.Time(r.NextAttemptAt)
		ts, _ := audit.Time(now)
		_, err = tx.Exec(`UPDATE rotations SET attempts = ?, next_attempt_at = ?, updated_at = ? WHERE id = ?`, r.Attempts, nx, ts, r.ID)
		return err
	})
	if err != nil {
		return Rotation{}, false, fmt.Errorf("jit: begin rotation of grant %d: %w", grantID, err)
	}
	return r, ok, nil
}

// RetireKey adds blob to the keys grant grantID's rotation must remove. An
// attempt calls it with the key it fetched from Vault before it touches the
// host, so that a later attempt still removes the key this grant used even
// if an earlier one stored a new key in Vault and then crashed. It returns
// the full list.
func (s *Service) RetireKey(ctx context.Context, grantID int64, blob string) ([]string, error) {
	if blob == "" || strings.ContainsAny(blob, " \t\r\n") {
		return nil, fmt.Errorf("jit: retire key: invalid key blob")
	}
	var keys []string
	err := s.store.Update(ctx, func(tx *audit.Tx) error {
		r, ok, err := loadRotation(tx, grantID)
		if err != nil || !ok {
			return cmpErr(err, ok, grantID)
		}
		keys = r.Retire
		if slices.Contains(keys, blob) {
			return nil
		}
		keys = append(keys, blob)
		_, err = tx.Exec(`UPDATE rotations SET retire_keys = ? WHERE id = ?`, strings.Join(keys, " "), r.ID)
		return err
	})
	return keys, err
}

// RotationOutcome is what an attempt reports to FinishRotationAttempt.
type RotationOutcome struct {
	Err            error          // nil: rotated and verified
	OldFingerprint string         // SHA256 fingerprints, when known
	NewFingerprint string         // set when the attempt made a new key
	Data           map[string]any // more fields for the audit event (steps, versions)
}

// FinishRotationAttempt records an attempt's outcome on grant grantID's
// rotation and appends the rotation.result audit event in the same
// transaction. A failure leaves the rotation owed (state failed) with its
// error; success marks it done.
func (s *Service) FinishRotationAttempt(ctx context.Context, grantID int64, out RotationOutcome) (Rotation, error) {
	now := s.now()
	var r Rotation
	err := s.store.Update(ctx, func(tx *audit.Tx) error {
		var ok bool
		var err error
		if r, ok, err = loadRotation(tx, grantID); err != nil || !ok {
			return cmpErr(err, ok, grantID)
		}
		ts, _ := audit.Time(now)
		data := map[string]any{}
		for k, v := range out.Data {
			data[k] = v
		}
		data["grant_id"], data["tenant"], data["role"], data["kv_path"] = r.GrantID, r.Tenant, r.Role, r.KVPath
		data["host"], data["login"], data["attempt"] = r.Host, r.Login, r.Attempts
		data["ok"] = out.Err == nil
		data["old_fingerprint"], data["new_fingerprint"] = out.OldFingerprint, out.NewFingerprint
		if out.Err != nil {
			r.State, r.LastError = RotationFailed, out.Err.Error()
			data["error"] = r.LastError
			if _, err := tx.Exec(`UPDATE rotations SET state = ?, last_error = ?, updated_at = ?,
				old_fingerprint = COALESCE(old_fingerprint, ?) WHERE id = ? AND state != 'done'`,
				r.State, r.LastError, ts, nullable(out.OldFingerprint), r.ID); err != nil {
				return err
			}
		} else {
			r.State, r.LastError, r.DoneAt = RotationDone, "", now
			r.NewFingerprint = out.NewFingerprint
			if _, err := tx.Exec(`UPDATE rotations SET state = 'done', last_error = NULL, updated_at = ?, done_at = ?,
				old_fingerprint = COALESCE(old_fingerprint, ?), new_fingerprint = ? WHERE id = ? AND state != 'done'`,
				ts, ts, nullable(out.OldFingerprint), nullable(out.NewFingerprint), r.ID); err != nil {
				return err
			}
		}
		return record(tx, now, EventRotationResult, actorWarden, grantSubject(grantID), data)
	})
	if err != nil {
		return Rotation{}, fmt.Errorf("jit: record rotation of grant %d: %w", grantID, err)
	}
	return r, nil
}

// OwedRotations lists every rotation not yet done, oldest first, with its
// grant's owner and end. It only reads, so the CLI can use a read-only
// database.
func OwedRotations(ctx context.Context, db *sql.DB) ([]Rotation, error) {
	return nonNil(listRotations(dbQuerier{ctx, db}, `r.state != 'done'`))
}

// Rotations lists every rotation, oldest first.
func Rotations(ctx context.Context, db *sql.DB) ([]Rotation, error) {
	return nonNil(listRotations(dbQuerier{ctx, db}, `1 = 1`))
}

// OwedRotations lists the rotations not yet done (see the function).
func (s *Service) OwedRotations(ctx context.Context) ([]Rotation, error) {
	return OwedRotations(ctx, s.store.DB())
}

func cmpErr(err error, ok bool, grantID int64) error {
	if err == nil && !ok {
		return refuse(ErrNotFound, "grant %d owes no rotation", grantID)
	}
	return err
}

const rotationColumns = `r.id, r.grant_id, g.user, r.tenant, r.role, r.kv_path, r.host, r.login, r.state, r.attempts,
	r.last_error, r.next_attempt_at, r.retire_keys, r.old_fingerprint, r.new_fingerprint, r.created_at, r.done_at, g.ended_at`

func scanRotation(s scanner) (Rotation, error) {
	var r Rotation
	var lastErr, retire, oldFP, newFP, done, ended sql.NullString
	var next, created string
	if err := s.Scan(&r.ID, &r.GrantID, &r.User, &r.Tenant, &r.Role, &r.KVPath, &r.Host, &r.Login, &r.State, &r.Attempts,
		&lastErr, &next, &retire, &oldFP, &newFP, &created, &done, &ended); err != nil {
		return Rotation{}, err
	}
	r.LastError, r.OldFingerprint, r.NewFingerprint = lastErr.String, oldFP.String, newFP.String
	r.Retire = strings.Fields(retire.String)
	var err error
	if r.NextAttemptAt, err = audit.ParseTime(next); err != nil {
		return Rotation{}, fmt.Errorf("jit: rotation %d: %w", r.ID, err)
	}
	if r.CreatedAt, err = audit.ParseTime(created); err != nil {
		return Rotation{}, fmt.Errorf("jit: rotation %d: %w", r.ID, err)
	}
	if r.DoneAt, err = parseNullTime(done); err != nil {
		return Rotation{}, fmt.Errorf("jit: rotation %d: %w", r.ID, err)
	}
	if r.GrantEndedAt, err = parseNullTime(ended); err != nil {
		return Rotation{}, fmt.Errorf("jit: rotation %d: %w", r.ID, err)
	}
	return r, nil
}

func insertRotation(tx *audit.Tx, r Rotation) error {
	next, err := audit.Time(r.NextAttemptAt)
	if err != nil {
		return err
	}
	created, err := audit.Time(r.CreatedAt)
	if err != nil {
		return err
	}
	_, err = tx.Exec(`INSERT INTO rotations (grant_id, tenant, role, kv_path, host, login, state, last_error,
		next_attempt_at, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.GrantID, r.Tenant, r.Role, r.KVPath, r.Host, r.Login, r.State, nullable(r.LastError), next, created, created)
	if err != nil {
		return fmt.Errorf("jit: record rotation of grant %d: %w", r.GrantID, err)
	}
	return nil
}

func loadRotation(q querier, grantID int64) (Rotation, bool, error) {
	r, err := scanRotation(q.QueryRow(`SELECT `+rotationColumns+` FROM rotations r JOIN grants g ON g.id = r.grant_id
		WHERE r.grant_id = ?`, grantID))
	if errors.Is(err, sql.ErrNoRows) {
		return Rotation{}, false, nil
	}
	if err != nil {
		return Rotation{}, false, fmt.Errorf("jit: read rotation of grant %d: %w", grantID, err)
	}
	return r, true, nil
}

// LoadRotation reads grant grantID's rotation; ok is false when it owes
// none.
func LoadRotation(ctx context.Context, db *sql.DB, grantID int64) (Rotation, bool, error) {
	return loadRotation(dbQuerier{ctx, db}, grantID)
}

func listRotations(q querier, where string, args ...any) ([]Rotation, error) {
	rows, err := q.Query(`SELECT `+rotationColumns+` FROM rotations r JOIN grants g ON g.id = r.grant_id
		WHERE `+where+` ORDER BY r.id`, args...)
	if err != nil {
		return nil, fmt.Errorf("jit: list rotations: %w", err)
	}
	defer rows.Close()
	var out []Rotation
	for rows.Next() {
		r, err := scanRotation(rows)
		if err != nil {
			return nil, fmt.Errorf("jit: list rotations: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("jit: list rotations: %w", err)
	}
	return out, nil
}
