package evidence

import (
	"database/sql"
	"fmt"
)

// OverdueRotationOwed is the overdue kind of a break-glass grant that had
// ended by the end of the period while the static key it used was not yet
// rotated (table rotations, package jit). It is listed in every packet
// until the rotation is done, whatever the policy says by then: the
// rotation is owed by the grant, recorded when the grant started.
const OverdueRotationOwed = "rotation-owed"

// owedRotation is one rotation owed at the end of the period. Only facts
// fixed by then are kept (not the attempt count or the latest error), so
// that rebuilding a past month gives the same packet; the errors of the
// period are in its rotation.result events.
type owedRotation struct {
	GrantID                 int64
	User, Role, KVPath      string
	Host, Login, GrantEnded string
}

// readOwedRotations reads the tenant's rotations whose grant had ended
// (or run out) before the end of the period and which were not done
// before it. A grant past its expiry counts as ended even when no gateway
// was running to record the end.
func (d *dataset) readOwedRotations(tx *sql.Tx, tenant string, p period) error {
	// A database no gateway has opened since rotations were recorded
	// (migration 0004) has no table, and so no rotation owed by it. Asked
	// of schema_migrations, which both store drivers have, rather than of
	// SQLite's own catalogue.
	var n int
	if err := tx.QueryRow(`SELECT COUNT(*) FROM schema_migrations WHERE version >= 4`).Scan(&n); err != nil || n == 0 {
		return err
	}
	return each(tx, `SELECT r.grant_id, g.user, r.role, r.kv_path, r.host, r.login,
			MIN(COALESCE(g.ended_at, g.expires_at), g.expires_at) AS ended
		FROM rotations r JOIN grants g ON g.id = r.grant_id
		WHERE r.tenant = ?1 AND MIN(COALESCE(g.ended_at, g.expires_at), g.expires_at) < ?2
			AND (r.done_at IS NULL OR r.done_at >= ?2)
		ORDER BY r.grant_id`, []any{tenant, p.endTxt}, func(rows *sql.Rows) error {
		var o owedRotation
		if err := rows.Scan(&o.GrantID, &o.User, &o.Role, &o.KVPath, &o.Host, &o.Login, &o.GrantEnded); err != nil {
			return err
		}
		d.owedRotations = append(d.owedRotations, o)
		return nil
	})
}

// owes reports whether grant id's rotation is owed at the end of the
// period; its failed attempts are then one item, not one per attempt.
func (d *dataset) owes(id int64) bool {
	for _, o := range d.owedRotations {
		if o.GrantID == id {
			return true
		}
	}
	return false
}

// owedRotationItems lists the owed rotations as overdue items.
func (d *dataset) owedRotationItems() []OverdueItem {
	var out []OverdueItem
	for _, o := range d.owedRotations {
		target := o.Login + "@" + o.Host
		if o.Host == "" {
			target = "no single host recorded"
		}
		out = append(out, OverdueItem{Kind: OverdueRotationOwed, Subject: fmt.Sprintf("grant %d", o.GrantID),
			Detail: fmt.Sprintf("%s's %s grant ended %s; key %s (%s) not rotated by the end of the period",
				o.User, o.Role, o.GrantEnded, o.KVPath, target)})
	}
	return out
}
