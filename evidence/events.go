package evidence

import (
	"database/sql"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/warden-gw/warden/audit"
)

// EventRotation is the audit event type of a break-glass credential
// rotation (issue 4). The packet reads from its data "grant_id" (else a
// subject "grant:N" or "N"); "tenant" and "role" (else the grant's); the
// outcome as "ok" or "success" (true or false), or as "outcome", "result"
// or "status" ("ok", "success", "succeeded" and "rotated" mean success,
// any other text failure); and "error", a failure's cause.
const EventRotation = "rotation.result"

// Rotation outcomes as the packet reports them.
const (
	rotationOK      = "succeeded"
	rotationFailed  = "failed"
	rotationUnknown = "unknown" // the event names no outcome
)

// rotation is one rotation.result event attributed to a grant or role.
type rotation struct {
	Seq     int64
	TS      string
	GrantID int64
	Tenant  string
	Role    string
	Outcome string
	Error   string
}

func (d *dataset) readEvents(tx *sql.Tx, tenant string, p period) error {
	grants := map[int64][2]string{} // grant ID -> tenant, role
	err := each(tx, `SELECT e.seq, e.ts, e.subject, e.data FROM audit_events e WHERE e.type = ? AND e.ts < ? ORDER BY e.seq`,
		[]any{EventRotation, p.endTxt}, func(rows *sql.Rows) error {
			var r rotation
			var subject, data string
			if err := rows.Scan(&r.Seq, &r.TS, &subject, &data); err != nil {
				return err
			}
			m := decodeObject(data)
			r.GrantID = intField(m, "grant_id")
			if r.GrantID == 0 {
				r.GrantID, _ = strconv.ParseInt(strings.TrimPrefix(subject, "grant:"), 10, 64)
			}
			r.Tenant, r.Role = strField(m, "tenant"), strField(m, "role")
			r.Outcome, r.Error = rotationOutcome(m), strField(m, "error")
			d.rotations = append(d.rotations, r)
			if r.GrantID > 0 {
				grants[r.GrantID] = [2]string{}
			}
			return nil
		})
	if err != nil {
		return err
	}
	for id := range grants {
		var t, role string
		err := tx.QueryRow(`SELECT tenant, role FROM grants WHERE id = ?`, id).Scan(&t, &role)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		grants[id] = [2]string{t, role}
	}
	kept := d.rotations[:0]
	for _, r := range d.rotations {
		if g, ok := grants[r.GrantID]; ok {
			if r.Tenant == "" {
				r.Tenant = g[0]
			}
			if r.Role == "" {
				r.Role = g[1]
			}
		}
		if r.Tenant == tenant {
			kept = append(kept, r)
		}
	}
	d.rotations = kept
	for _, r := range kept {
		if r.TS >= p.startTxt {
			d.rotationEvents = append(d.rotationEvents, rotationRow{Seq: r.Seq, TS: r.TS, GrantID: r.GrantID, Role: r.Role,
				Outcome: r.Outcome, Error: r.Error})
		}
	}

	err = each(tx, `SELECT subject, data FROM audit_events WHERE type = ? AND ts >= ? AND ts < ? ORDER BY seq`,
		[]any{EventStaleAdmin, p.startTxt, p.endTxt}, func(rows *sql.Rows) error {
			var user, data string
			if err := rows.Scan(&user, &data); err != nil {
				return err
			}
			m := decodeObject(data)
			if strField(m, "tenant") == tenant {
				d.flagged = append(d.flagged, staleEvent{User: user, ExceptionID: strconv.FormatInt(intField(m, "exception_id"), 10)})
			}
			return nil
		})
	if err != nil {
		return err
	}
	err = tx.QueryRow(`SELECT hash FROM audit_events WHERE ts < ? ORDER BY seq DESC LIMIT 1`, p.endTxt).Scan(&d.chainHead)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	return err
}

// openFailures returns the failed rotations that no later successful
// rotation of the same tenant and role has made good, as of the end.
func openFailures(rs []rotation) []rotation {
	var out []rotation
	for i, r := range rs {
		if r.Outcome != rotationFailed {
			continue
		}
		fixed := false
		for _, later := range rs[i+1:] {
			if later.Outcome == rotationOK && later.Role == r.Role {
				fixed = true
				break
			}
		}
		if !fixed {
			out = append(out, r)
		}
	}
	return out
}

// rotationFor returns the outcome of the latest rotation of a grant.
func rotationFor(rs []rotation, grantID int64) (rotation, bool) {
	for i := len(rs) - 1; i >= 0; i-- {
		if rs[i].GrantID == grantID {
			return rs[i], true
		}
	}
	return rotation{}, false
}

func rotationOutcome(m map[string]any) string {
	for _, k := range []string{"ok", "success"} {
		if b, isBool := m[k].(bool); isBool {
			if b {
				return rotationOK
			}
			return rotationFailed
		}
	}
	for _, k := range []string{"outcome", "result", "status"} {
		if s, isStr := m[k].(string); isStr {
			switch strings.ToLower(s) {
			case "ok", "success", "succeeded", "rotated":
				return rotationOK
			}
			return rotationFailed
		}
	}
	return rotationUnknown
}

// decodeObject parses an event's data column; anything but a JSON object
// gives an empty map (Verify, not the packet, judges stored events).
func decodeObject(s string) map[string]any {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var m map[string]any
	if dec.Decode(&m) != nil || m == nil {
		return map[string]any{}
	}
	return m
}

func strField(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// intField reads a positive integer given as a JSON number or a decimal
// string; anything else is 0.
func intField(m map[string]any, k string) int64 {
	var s string
	switch v := m[k].(type) {
	case json.Number:
		s = v.String()
	case string:
		s = v
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0
	}
	return n
}

// parseStored parses a stored time, or gives the zero time for bad text.
func parseStored(s string) time.Time {
	t, err := audit.ParseTime(s)
	if err != nil {
		return time.Time{}
	}
	return t
}
