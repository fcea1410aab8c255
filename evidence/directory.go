package evidence

import (
	"database/sql"
	"slices"
	"time"

	"github.com/warden-gw/warden/identity"
	"github.com/warden-gw/warden/policy"
)

// directoryAt returns cfg merged with the directory users as they stood
// before endTxt, replayed from package identity's audit events, so that
// the end-of-period checks (stale admins, unexplained grants) judge a
// directory user by the groups the directory gave them then, not by the
// tables as they are now (a packet rebuilt later must be the same). cfg
// comes back unchanged when it configures no directory.
func directoryAt(tx *sql.Tx, cfg *policy.Config, endTxt string) (*policy.Config, error) {
	if cfg == nil || len(cfg.Identity.Directories) == 0 {
		return cfg, nil
	}
	type group struct {
		name    string
		members map[string]bool // user names
	}
	users := map[string]*identity.User{} // SCIM id -> user
	groups := map[string]*group{}
	err := each(tx, `SELECT type, data FROM audit_events WHERE type LIKE 'identity.%' AND ts < ? ORDER BY seq`,
		[]any{endTxt}, func(rows *sql.Rows) error {
			var typ, data string
			if err := rows.Scan(&typ, &data); err != nil {
				return err
			}
			m := decodeObject(data)
			id := strField(m, "id")
			switch typ {
			case identity.EventUserCreated, identity.EventUserUpdated, identity.EventUserDeactivated, identity.EventUserReactivated:
				u := users[id]
				if u == nil {
					u = &identity.User{ID: id}
					users[id] = u
				}
				if prev := strField(m, "previous_user_name"); prev != "" {
					for _, g := range groups {
						if g.members[prev] {
							delete(g.members, prev)
							g.members[strField(m, "user_name")] = true
						}
					}
				}
				u.UserName, u.Directory, u.Deleted = strField(m, "user_name"), strField(m, "directory"), time.Time{}
				u.Active = m["active"] == true
			case identity.EventUserDeleted:
				if u := users[id]; u != nil {
					u.Active, u.Deleted = false, time.Unix(1, 0)
					for _, g := range groups {
						delete(g.members, u.UserName)
					}
				}
			case identity.EventGroupCreated, identity.EventGroupUpdated:
				g := groups[id]
				if g == nil {
					g = &group{members: map[string]bool{}}
					groups[id] = g
				}
				g.name = strField(m, "display_name")
				for _, n := range strList(m, "added") {
					g.members[n] = true
				}
				for _, n := range strList(m, "removed") {
					delete(g.members, n)
				}
			case identity.EventGroupDeleted:
				delete(groups, id)
			}
			return nil
		})
	if err != nil {
		return nil, err
	}
	var list []identity.User
	for _, u := range users {
		for _, g := range groups {
			if g.members[u.UserName] {
				u.Groups = append(u.Groups, g.name)
			}
		}
		slices.Sort(u.Groups)
		list = append(list, *u)
	}
	slices.SortFunc(list, func(a, b identity.User) int {
		switch {
		case a.UserName < b.UserName:
			return -1
		case a.UserName > b.UserName:
			return 1
		}
		return 0
	})
	merged, _ := identity.MergeUsers(cfg, list, nil)
	return merged, nil
}
