package evidence

import (
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	"github.com/warden-gw/warden/audit"
)

// Joiners, movers and leavers: the directory changes of the period (package
// identity's events) and, for movers and leavers, when the gateway removed
// the access the change took away (its identity.access_removed event: keys
// stop working at that moment, sessions close, grants end, requests are
// cancelled). A tenant's packet holds the changes of directories limited to
// it and of directories limited to none (the MSP's own staff, who may
// reach every tenant).

// lifecycleHeader is the header of lifecycle.csv.
var lifecycleHeader = []string{"seq", "ts", "directory", "user", "change", "event", "access_removed_at", "seconds_to_removal", "sessions_closed", "grants_ended", "requests_cancelled"}

type lifecycleRow struct {
	Seq       int64  `json:"seq"` // of the directory's audit event
	TS        string `json:"ts"`
	Directory string `json:"directory"`
	User      string `json:"user"`
	Change    string `json:"change"` // joiner, mover or leaver
	Event     string `json:"event"`
	// RemovedAt is the time of the gateway's identity.access_removed
	// event that followed, "" for joiners or when none was recorded by
	// the end of the period (the gateway was not running: an open item).
	RemovedAt string `json:"access_removed_at"`
	Seconds   string `json:"seconds_to_removal"` // RemovedAt - TS, in seconds with milliseconds
	Sessions  int    `json:"sessions_closed"`
	Grants    int    `json:"grants_ended"`
	Requests  int    `json:"requests_cancelled"`
}

func (r lifecycleRow) csv() []string {
	return []string{itoa(r.Seq), cell(r.TS), cell(r.Directory), cell(r.User), r.Change, r.Event, r.RemovedAt, r.Seconds,
		strconv.Itoa(r.Sessions), strconv.Itoa(r.Grants), strconv.Itoa(r.Requests)}
}

// lifecycleEvents maps each directory event type to the change it is;
// group updates are movers for every member added or removed.
var lifecycleEvents = map[string]string{
	"identity.user.created":     "joiner",
	"identity.user.reactivated": "joiner",
	"identity.user.deactivated": "leaver",
	"identity.user.deleted":     "leaver",
	"identity.group.updated":    "mover",
	"identity.group.created":    "mover",
}

type removal struct {
	seq                        int64
	ts                         string
	sessions, grants, requests int
}

func (d *dataset) readLifecycle(tx *sql.Tx, tenant string, p period) error {
	removals := map[string][]removal{} // user -> access_removed events before the end, in seq order
	err := each(tx, `SELECT seq, ts, data FROM audit_events WHERE type = 'identity.access_removed' AND ts < ? ORDER BY seq`,
		[]any{p.endTxt}, func(rows *sql.Rows) error {
			var r removal
			var data string
			if err := rows.Scan(&r.seq, &r.ts, &data); err != nil {
				return err
			}
			m := decodeObject(data)
			r.sessions, r.grants, r.requests = lenField(m, "sessions"), lenField(m, "grants"), lenField(m, "requests")
			u := strField(m, "user")
			removals[u] = append(removals[u], r)
			return nil
		})
	if err != nil {
		return err
	}
	return each(tx, `SELECT seq, ts, type, data FROM audit_events WHERE type LIKE 'identity.%' AND ts >= ? AND ts < ? ORDER BY seq`,
		[]any{p.startTxt, p.endTxt}, func(rows *sql.Rows) error {
			var seq int64
			var ts, typ, data string
			if err := rows.Scan(&seq, &ts, &typ, &data); err != nil {
				return err
			}
			change, ok := lifecycleEvents[typ]
			if !ok {
				return nil
			}
			m := decodeObject(data)
			if t := strField(m, "tenant"); t != "" && t != tenant {
				return nil
			}
			var users []string
			switch {
			case strings.HasPrefix(typ, "identity.group."):
				users = append(strList(m, "added"), strList(m, "removed")...)
			case typ == "identity.user.created" && m["active"] != true:
				return nil // provisioned inactive: not a joiner yet
			default:
				users = []string{strField(m, "user_name")}
			}
			for _, u := range users {
				row := lifecycleRow{Seq: seq, TS: ts, Directory: strField(m, "directory"), User: u, Change: change, Event: typ}
				if change != "joiner" {
					for _, r := range removals[u] {
						if r.seq > seq {
							row.RemovedAt, row.Sessions, row.Grants, row.Requests = r.ts, r.sessions, r.grants, r.requests
							row.Seconds = secondsText(ts, r.ts)
							break
						}
					}
				}
				d.lifecycle = append(d.lifecycle, row)
			}
			return nil
		})
}

// secondsText is to - from in seconds, to the millisecond.
func secondsText(from, to string) string {
	a, err1 := audit.ParseTime(from)
	b, err2 := audit.ParseTime(to)
	if err1 != nil || err2 != nil {
		return ""
	}
	return fmt.Sprintf("%.3f", b.Sub(a).Seconds())
}

func lenField(m map[string]any, k string) int {
	l, _ := m[k].([]any)
	return len(l)
}

func strList(m map[string]any, k string) []string {
	l, _ := m[k].([]any)
	var out []string
	for _, x := range l {
		if s, ok := x.(string); ok {
			out = append(out, s)
		}
	}
	return out
}

// lifecycleSection is the joiners, movers and leavers section of the
// summary: counts, the slowest removal, and changes never applied.
func lifecycleSection(rows []lifecycleRow) section {
	counts := map[string]int{}
	slowest, slowestUser, unapplied := -1.0, "", 0
	sec := section{Title: fmt.Sprintf("Joiners, movers and leavers (%d)", len(rows)),
		Header: []string{"Time", "Directory", "User", "Change", "Access removed", "Seconds"},
		Empty:  "No directory changes in the period."}
	for _, r := range rows {
		counts[r.Change]++
		if r.Change != "joiner" {
			if r.Seconds == "" {
				unapplied++
			} else if s, err := strconv.ParseFloat(r.Seconds, 64); err == nil && s > slowest {
				slowest, slowestUser = s, r.User
			}
		}
		sec.Rows = append(sec.Rows, []string{r.TS, display(r.Directory, 40), display(r.User, 60), r.Change, orNone(r.RemovedAt), orNone(r.Seconds)})
	}
	slow := "none"
	if slowest >= 0 {
		slow = fmt.Sprintf("%.3f s (%s)", slowest, display(slowestUser, 60))
	}
	sec.Facts = [][2]string{
		{"Changes", fmt.Sprintf("%d joiners, %d movers, %d leavers", counts["joiner"], counts["mover"], counts["leaver"])},
		{"Slowest from directory change to access removed", slow},
		{"Movers and leavers with no removal recorded", strconv.Itoa(unapplied)},
	}
	sec.Rows, sec.More = cut(sec.Rows, "lifecycle.csv")
	return sec
}

func orNone(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
