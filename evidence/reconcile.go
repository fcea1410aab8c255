package evidence

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/exceptions"
	"github.com/warden-gw/warden/policy"
)

// DefaultStaleAfter is how long an eligible administrator may go without
// activating a privileged role before reconciliation calls the eligibility
// stale: a quarter, the usual cadence of access reviews.
const DefaultStaleAfter = 90 * 24 * time.Hour

// StaleAdminReason starts the reason of every exception that reconciliation
// records for a stale administrator; it is how such entries are recognised.
const StaleAdminReason = "stale admin:"

// staleAdminTerm is how long a stale-admin exception runs: a month to remove
// the user from the eligible groups, or to justify keeping them.
const staleAdminTerm = 30 * 24 * time.Hour

// Audit event types written by ApplyReconcile.
const (
	EventStaleAdmin       = "reconcile.stale_admin"
	EventGrantDeprovision = "grant.deprovisioned"
)

// StaleAdmin is a user eligible for privileged roles in a tenant who has
// not activated any grant there within the window. Standing eligibility
// that nobody uses is attack surface without benefit.
type StaleAdmin struct {
	User, Tenant   string
	Roles          []string  // privileged roles of the tenant the user may request, sorted
	LastActivation time.Time // start of the user's latest grant in the tenant; zero if none
	ExceptionID    int64     // the open stale-admin exception covering it; 0 if none
}

// UnexplainedGrant is an active grant that the current policy would not
// give: its role is gone, moved or no longer privileged, or its user is gone
// or no longer eligible.
type UnexplainedGrant struct {
	GrantID   int64
	User      string
	Role      string
	Tenant    string
	ExpiresAt time.Time
	Why       string
}

// Reconciliation is what the database holds that the policy no longer
// supports, as of At.
type Reconciliation struct {
	At          time.Time
	StaleAfter  time.Duration
	Stale       []StaleAdmin       // by tenant, then user
	Unexplained []UnexplainedGrant // by grant ID

	// Set by ApplyReconcile: the exceptions it recorded and the grants it
	// ended (end_reason deprovisioned).
	Flagged       []int64
	Deprovisioned []int64
}

// ReconcileOptions configures Reconcile and ApplyReconcile.
type ReconcileOptions struct {
	StaleAfter time.Duration    // the window; 0 means DefaultStaleAfter
	Tenant     string           // only this tenant; "" means every tenant
	Now        func() time.Time // nil means time.Now
	Actor      string           // who applies; recorded in events and exceptions; "" means "warden"

	// GrantEnded, when set, is called after the commit with each grant
	// ApplyReconcile ended, so that the gateway can close live sessions
	// running under it (the database alone cannot reach them).
	GrantEnded func(grantID int64)
}

func (o ReconcileOptions) window() time.Duration {
	if o.StaleAfter <= 0 {
		return DefaultStaleAfter
	}
	return o.StaleAfter
}

func (o ReconcileOptions) now() time.Time {
	if o.Now == nil {
		return time.Now()
	}
	return o.Now()
}

// Reconcile compares the database in db (a read-only pool) with the policy
// and reports stale administrators and unexplained grants. It changes
// nothing.
func Reconcile(ctx context.Context, db *sql.DB, cfg *policy.Config, opt ReconcileOptions) (*Reconciliation, error) {
	if cfg == nil {
		return nil, errors.New("evidence: reconcile: no policy")
	}
	tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("evidence: reconcile: %w", err)
	}
	defer tx.Rollback()
	return assess(tx, cfg, opt.Tenant, opt.now(), opt.window())
}

// ApplyReconcile reconciles as Reconcile does and records the clean-up in
// one writer transaction, with an audit event for each step:
//
//   - every unexplained grant is ended now with end_reason "deprovisioned"
//     (event grant.deprovisioned);
//   - every stale administrator not already covered by an open stale-admin
//     exception gets one (owner: the user; expiry: 30 days), since the
//     policy file, not the database, decides eligibility and only a person
//     may edit it (events exception.added and reconcile.stale_admin).
//
// The assessment is made inside the transaction, so nothing that changed
// since a preview is acted on blindly.
func ApplyReconcile(ctx context.Context, st *audit.Store, cfg *policy.Config, opt ReconcileOptions) (*Reconciliation, error) {
	if cfg == nil {
		return nil, errors.New("evidence: reconcile: no policy")
	}
	actor := opt.Actor
	if actor == "" {
		actor = "warden"
	}
	var rec *Reconciliation
	err := st.Update(ctx, func(tx *audit.Tx) error {
		now := opt.now()
		var err error
		if rec, err = assess(tx, cfg, opt.Tenant, now, opt.window()); err != nil {
			return err
		}
		stamp, err := audit.Time(now)
		if err != nil {
			return fmt.Errorf("evidence: reconcile: %w", err)
		}
		for _, g := range rec.Unexplained {
			if err := deprovision(tx, g, stamp, now, actor); err != nil {
				return err
			}
			rec.Deprovisioned = append(rec.Deprovisioned, g.GrantID)
		}
		reg := &exceptions.Register{Now: func() time.Time { return now }}
		for i, s := range rec.Stale {
			if s.ExceptionID != 0 {
				continue
			}
			e, err := reg.AddTx(tx, exceptions.Exception{
				Tenant: s.Tenant, Owner: s.User, CreatedBy: actor, ExpiresAt: now.Add(staleAdminTerm),
				Reason: fmt.Sprintf("%s no activation in %s", StaleAdminReason, FormatWindow(rec.StaleAfter)),
				Controls: "every activation still needs an approved just-in-time request; " +
					"remove the user from the eligible groups of " + strings.Join(s.Roles, ", ") + " or justify keeping them",
			})
			if err != nil {
				return fmt.Errorf("evidence: reconcile: flag %s in %s: %w", s.User, s.Tenant, err)
			}
			last := ""
			if !s.LastActivation.IsZero() {
				last, _ = audit.Time(s.LastActivation)
			}
			if err := tx.Append(audit.Event{TS: now, Type: EventStaleAdmin, Actor: actor, Subject: s.User,
				Data: map[string]any{"tenant": s.Tenant, "exception_id": e.ID, "roles": s.Roles,
					"last_activation": last, "window": FormatWindow(rec.StaleAfter)}}); err != nil {
				return fmt.Errorf("evidence: reconcile: %w", err)
			}
			rec.Stale[i].ExceptionID = e.ID
			rec.Flagged = append(rec.Flagged, e.ID)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if opt.GrantEnded != nil {
		for _, id := range rec.Deprovisioned {
			opt.GrantEnded(id)
		}
	}
	return rec, nil
}

func deprovision(tx *audit.Tx, g UnexplainedGrant, stamp string, now time.Time, actor string) error {
	// "ended_at IS NULL" keeps a grant that ended meanwhile (expired,
	// revoked) from being rewritten; assess ran in this transaction, so it
	// cannot have, but the condition costs nothing and states the intent.
	res, err := tx.Exec(`UPDATE grants SET ended_at = ?, end_reason = 'deprovisioned' WHERE id = ? AND ended_at IS NULL`,
		stamp, g.GrantID)
	if err != nil {
		return fmt.Errorf("evidence: reconcile: end grant %d: %w", g.GrantID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("evidence: reconcile: grant %d ended meanwhile", g.GrantID)
	}
	// Subject and data follow package jit's grant events, so that a
	// grant's history reads the same whoever ended it.
	return tx.Append(audit.Event{TS: now, Type: EventGrantDeprovision, Actor: actor, Subject: "grant:" + itoa(g.GrantID),
		Data: map[string]any{"grant_id": g.GrantID, "user": g.User, "role": g.Role, "tenant": g.Tenant,
			"ended_at": stamp, "end_reason": "deprovisioned", "comment": g.Why}})
}

// queryer is what *sql.Tx and *audit.Tx have in common.
type queryer = exceptions.Queryer

// assess computes the reconciliation as of at from q.
func assess(q queryer, cfg *policy.Config, tenant string, at time.Time, window time.Duration) (*Reconciliation, error) {
	atText, err := audit.Time(at)
	if err != nil {
		return nil, fmt.Errorf("evidence: reconcile: %w", err)
	}
	rec := &Reconciliation{At: at, StaleAfter: window}
	if rec.Stale, err = staleAdmins(q, cfg, tenant, at, atText, window); err != nil {
		return nil, err
	}
	if rec.Unexplained, err = unexplainedGrants(q, cfg, tenant, atText); err != nil {
		return nil, err
	}
	return rec, nil
}

func staleAdmins(q queryer, cfg *policy.Config, tenant string, at time.Time, atText string, window time.Duration) ([]StaleAdmin, error) {
	// Who is eligible where, by the policy.
	type key struct{ tenant, user string }
	eligible := map[key][]string{}
	for _, r := range cfg.Roles {
		if !r.Privileged || (tenant != "" && r.Tenant != tenant) {
			continue
		}
		for _, u := range cfg.Users {
			if u.InAny(r.Eligible) {
				k := key{r.Tenant, u.Name}
				eligible[k] = append(eligible[k], r.Name)
			}
		}
	}
	// When each of them last activated a grant there.
	rows, err := q.Query(`SELECT tenant, user, MAX(starts_at) FROM grants WHERE starts_at <= ? GROUP BY tenant, user`, atText)
	if err != nil {
		return nil, fmt.Errorf("evidence: reconcile: read grants: %w", err)
	}
	last := map[key]time.Time{}
	for rows.Next() {
		var k key
		var s string
		if err := rows.Scan(&k.tenant, &k.user, &s); err != nil {
			rows.Close()
			return nil, fmt.Errorf("evidence: reconcile: read grants: %w", err)
		}
		t, err := audit.ParseTime(s)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("evidence: reconcile: grant of %s: %w", k.user, err)
		}
		last[k] = t
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evidence: reconcile: read grants: %w", err)
	}
	// Open stale-admin exceptions already covering someone.
	open, err := exceptions.List(q, exceptions.Filter{Tenant: tenant, Now: at})
	if err != nil {
		return nil, err
	}
	flagged := map[key]int64{}
	for _, e := range open {
		if strings.HasPrefix(e.Reason, StaleAdminReason) && !e.CreatedAt.After(at) {
			flagged[key{e.Tenant, e.Owner}] = e.ID
		}
	}
	var out []StaleAdmin
	cutoff := at.Add(-window)
	for k, roles := range eligible {
		l := last[k]
		if !l.IsZero() && !l.Before(cutoff) {
			continue
		}
		slices.Sort(roles)
		out = append(out, StaleAdmin{User: k.user, Tenant: k.tenant, Roles: roles, LastActivation: l, ExceptionID: flagged[k]})
	}
	slices.SortFunc(out, func(a, b StaleAdmin) int {
		return strings.Compare(a.Tenant+"\x00"+a.User, b.Tenant+"\x00"+b.User)
	})
	return out, nil
}

func unexplainedGrants(q queryer, cfg *policy.Config, tenant, atText string) ([]UnexplainedGrant, error) {
	query := `SELECT id, user, role, tenant, expires_at FROM grants
		WHERE starts_at <= ? AND expires_at > ? AND (ended_at IS NULL OR ended_at > ?)`
	args := []any{atText, atText, atText}
	if tenant != "" {
		query, args = query+" AND tenant = ?", append(args, tenant)
	}
	rows, err := q.Query(query+" ORDER BY id", args...)
	if err != nil {
		return nil, fmt.Errorf("evidence: reconcile: read active grants: %w", err)
	}
	defer rows.Close()
	var out []UnexplainedGrant
	for rows.Next() {
		var g UnexplainedGrant
		var exp string
		if err := rows.Scan(&g.GrantID, &g.User, &g.Role, &g.Tenant, &exp); err != nil {
			return nil, fmt.Errorf("evidence: reconcile: read active grants: %w", err)
		}
		if g.ExpiresAt, err = audit.ParseTime(exp); err != nil {
			return nil, fmt.Errorf("evidence: reconcile: grant %d: %w", g.GrantID, err)
		}
		if g.Why = unexplained(cfg, g.User, g.Role, g.Tenant); g.Why != "" {
			out = append(out, g)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("evidence: reconcile: read active grants: %w", err)
	}
	return out, nil
}

// unexplained says why the policy would not give user a grant of role in
// tenant, or returns "" when it would.
func unexplained(cfg *policy.Config, user, role, tenant string) string {
	r := cfg.Role(role)
	switch {
	case r == nil:
		return "role " + role + " is no longer in the policy"
	case r.Tenant != tenant:
		return "role " + role + " now belongs to tenant " + r.Tenant
	case !r.Privileged:
		return "role " + role + " is no longer privileged"
	}
	u := cfg.User(user)
	switch {
	case u == nil:
		return "user " + user + " is no longer in the policy"
	case !u.InAny(r.Eligible):
		return "user " + user + " is no longer eligible for " + role
	}
	return ""
}
