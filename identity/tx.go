package identity

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// Audit event types. Actor is "scim:DIRECTORY"; subject "user:NAME" or
// "group:NAME". Every event names the user, so history keeps the name
// after a delete.
const (
	EventUserCreated     = "identity.user.created"
	EventUserUpdated     = "identity.user.updated"
	EventUserDeactivated = "identity.user.deactivated"
	EventUserReactivated = "identity.user.reactivated"
	EventUserDeleted     = "identity.user.deleted"
	EventGroupCreated    = "identity.group.created"
	EventGroupUpdated    = "identity.group.updated"
	EventGroupDeleted    = "identity.group.deleted"
)

// Tx is one SCIM request's view of one directory inside one write
// transaction: what it reads includes its own writes, and everything it
// writes (with its audit events) commits or rolls back together.
type Tx struct {
	x       *audit.Tx
	dir     string
	now     time.Time
	base    *policy.Config
	changes []Change
	// wrote reports that the transaction changed the directory. Every
	// write appends its audit event through event, so this is set by
	// each one, including those that change nobody's access (an empty
	// group created or deleted, a user created inactive): the snapshot
	// that SCIM reads must show them too.
	wrote bool
}

// event appends a directory change's audit event and notes the write.
func (t *Tx) event(e audit.Event) error {
	t.wrote = true
	return t.x.Append(e)
}

// Directory is the name of the directory the request comes from.
func (t *Tx) Directory() string { return t.dir }

func (t *Tx) actor() string {
	if t.dir == OIDCDirectory {
		return "oidc" // sign-in created it (identity.oidc.create_users)
	}
	return "scim:" + t.dir
}

// tenant is the tenant the directory is limited to, or "": events carry
// it so that a tenant's evidence packet finds its directory's changes.
func (t *Tx) tenant() string {
	if d := t.base.Directory(t.dir); d != nil {
		return d.Tenant
	}
	return ""
}

// User returns the directory's user id; a tombstone or another
// directory's user is ErrNotFound, so directories cannot see each other.
func (t *Tx) User(id string) (User, error) {
	us, err := queryUsers(t.x, `id = ? AND directory = ? AND deleted_at IS NULL`, id, t.dir)
	if err != nil {
		return User{}, err
	}
	if len(us) == 0 {
		return User{}, notFoundf("user %q not found", id)
	}
	return t.withGroups(us[0])
}

func (t *Tx) withGroups(u User) (User, error) {
	rows, err := t.x.Query(`SELECT g.display_name FROM directory_members m JOIN directory_groups g ON g.id = m.group_id WHERE m.user_id = ? ORDER BY g.display_name`, u.ID)
	if err != nil {
		return User{}, err
	}
	defer rows.Close()
	u.Groups = nil
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return User{}, err
		}
		u.Groups = append(u.Groups, s)
	}
	return u, rows.Err()
}

// CreateUser provisions u. A tombstone of this directory with the same
// externalId comes back to life as the same identity (same id). A retried
// POST, identical to the live user it created, returns that user
// unchanged (created=false): IdPs resend on timeouts.
func (t *Tx) CreateUser(u User) (out User, created bool, err error) {
	u.Directory = t.dir
	if err := t.check(&u, ""); err != nil {
		return User{}, false, err
	}
	if u.ExternalID != "" {
		prev, err := queryUsers(t.x, `directory = ? AND external_id = ?`, t.dir, u.ExternalID)
		if err != nil {
			return User{}, false, err
		}
		if len(prev) == 1 {
			p := prev[0]
			if p.Deleted.IsZero() {
				if equalUsers(p, u) {
					out, err := t.withGroups(p)
					return out, false, err
				}
				return User{}, false, conflictf("a user with externalId %q exists", u.ExternalID)
			}
			u.ID, u.Created = p.ID, p.Created
			u.Updated = t.now
			if err := writeUser(t.x, u, false); err != nil {
				return User{}, false, err
			}
			if err := t.userEvent(EventUserCreated, u, map[string]any{"recreated": true}); err != nil {
				return User{}, false, err
			}
			if u.Active {
				t.change(Joiner, u.UserName)
			}
			return u, true, nil
		}
	}
	live, err := queryUsers(t.x, `user_key = ? AND deleted_at IS NULL`, fold(u.UserName))
	if err != nil {
		return User{}, false, err
	}
	if len(live) > 0 {
		if live[0].Directory == t.dir && equalUsers(live[0], u) {
			out, err := t.withGroups(live[0])
			return out, false, err
		}
		return User{}, false, conflictf("userName %q is already taken", u.UserName)
	}
	u.ID, u.Created, u.Updated = newID(), t.now, t.now
	if err := writeUser(t.x, u, true); err != nil {
		return User{}, false, err
	}
	if err := t.userEvent(EventUserCreated, u, nil); err != nil {
		return User{}, false, err
	}
	if u.Active {
		t.change(Joiner, u.UserName)
	}
	return u, true, nil
}

// SaveUser replaces the stored attributes of u.ID with u's. Nothing is
// written when nothing changed, so a retried PUT or PATCH is harmless.
func (t *Tx) SaveUser(u User) (User, error) {
	prev, err := t.User(u.ID)
	if err != nil {
		return User{}, err
	}
	u.Directory, u.Created, u.Groups = t.dir, prev.Created, prev.Groups
	if err := t.check(&u, u.ID); err != nil {
		return User{}, err
	}
	if equalUsers(prev, u) {
		return prev, nil
	}
	if fold(u.UserName) != fold(prev.UserName) {
		live, err := queryUsers(t.x, `user_key = ? AND deleted_at IS NULL AND id != ?`, fold(u.UserName), u.ID)
		if err != nil {
			return User{}, err
		}
		if len(live) > 0 {
			return User{}, conflictf("userName %q is already taken", u.UserName)
		}
	}
	u.Updated = t.now
	if err := writeUser(t.x, u, false); err != nil {
		return User{}, err
	}
	typ, kind := EventUserUpdated, Edit
	switch {
	case prev.Active && !u.Active:
		typ, kind = EventUserDeactivated, Leaver
	case !prev.Active && u.Active:
		typ, kind = EventUserReactivated, Joiner
	}
	data := map[string]any{}
	if prev.UserName != u.UserName {
		data["previous_user_name"] = prev.UserName
		t.change(Leaver, prev.UserName) // the old name's sessions end
	}
	if err := t.userEvent(typ, u, data); err != nil {
		return User{}, err
	}
	t.change(kind, u.UserName)
	return u, nil
}

// DeleteUser leaves a tombstone: inactive, no keys, no groups, the name
// and externalId kept for history and for a re-creation.
func (t *Tx) DeleteUser(id string) error {
	u, err := t.User(id)
	if err != nil {
		return err
	}
	if _, err := t.x.Exec(`DELETE FROM directory_members WHERE user_id = ?`, id); err != nil {
		return err
	}
	u.Active, u.Keys, u.Updated, u.Deleted = false, nil, t.now, t.now
	if err := writeUser(t.x, u, false); err != nil {
		return err
	}
	if err := t.userEvent(EventUserDeleted, u, map[string]any{"groups": nonNil(u.Groups)}); err != nil {
		return err
	}
	t.change(Leaver, u.UserName)
	return nil
}

// check validates u before it is stored; self is u's own id on update.
func (t *Tx) check(u *User, self string) error {
	if msg := CheckUserName(u.UserName); msg != "" {
		return invalidf("%s", msg)
	}
	if t.base != nil && t.base.HasUserFold(u.UserName) {
		// A directory must never take over a name of the YAML policy:
		// that user's grants, approvals and history would become theirs.
		return conflictf("userName %q is a user of the policy file", u.UserName)
	}
	for what, s := range map[string]string{"externalId": u.ExternalID, "displayName": u.DisplayName} {
		if msg := checkText(what, s, 256); msg != "" {
			return invalidf("%s", msg)
		}
	}
	for _, e := range u.Emails {
		if msg := checkText("emails.value", e.Value+e.Type, 512); msg != "" {
			return invalidf("%s", msg)
		}
	}
	lines, keys, err := ParseKeys(u.Keys)
	if err != nil {
		return invalidf("%s", err.Error())
	}
	u.Keys = lines
	for _, k := range keys {
		// Identity is the key: one key, one person.
		if t.base != nil && t.base.UserByKey(k) != nil {
			return conflictf("sshPublicKeys: key %s belongs to another user", ssh.FingerprintSHA256(k))
		}
		owner, err := t.keyOwner(k, self)
		if err != nil {
			return err
		}
		if owner != "" {
			return conflictf("sshPublicKeys: key %s belongs to another user", ssh.FingerprintSHA256(k))
		}
	}
	return nil
}

// keyOwner returns the ID of the live directory user other than self who
// holds k, or "". It reads the table inside the transaction, not the
// snapshot Update took before it: the snapshot misses a user that another
// request committed meanwhile (two SCIM requests at once, each with the
// same key, would both pass) and one this transaction wrote (a bulk
// write), and one key on two users would let whoever holds it act as
// either. The LIKE on the key's base64 only narrows the rows (base64 has
// no % or _; SQLite's LIKE ignores ASCII case), so each candidate's keys
// are compared in full.
func (t *Tx) keyOwner(k ssh.PublicKey, self string) (string, error) {
	blob := base64.StdEncoding.EncodeToString(k.Marshal())
	users, err := queryUsers(t.x, `deleted_at IS NULL AND id <> ? AND ssh_keys LIKE ?`, self, "%"+blob+"%")
	if err != nil {
		return "", err
	}
	fp := ssh.FingerprintSHA256(k)
	for _, u := range users {
		for _, uk := range mustKeys(u.Keys) {
			if ssh.FingerprintSHA256(uk) == fp {
				return u.ID, nil
			}
		}
	}
	return "", nil
}

func (t *Tx) userEvent(typ string, u User, extra map[string]any) error {
	fps := []string{}
	for _, k := range mustKeys(u.Keys) {
		fps = append(fps, ssh.FingerprintSHA256(k))
	}
	data := map[string]any{"directory": t.dir, "tenant": t.tenant(), "id": u.ID, "external_id": u.ExternalID, "user_name": u.UserName,
		"active": u.Active, "keys": fps}
	for k, v := range extra {
		data[k] = v
	}
	return t.event(audit.Event{TS: t.now, Type: typ, Actor: t.actor(), Subject: "user:" + u.UserName, Data: data})
}

func (t *Tx) change(kind, name string) {
	t.changes = append(t.changes, Change{Kind: kind, UserName: name, Directory: t.dir, At: t.now})
}

// Group returns the directory's group id with its members.
func (t *Tx) Group(id string) (Group, error) {
	gs, err := queryGroups(t.x, `id = ? AND directory = ?`, id, t.dir)
	if err != nil {
		return Group{}, err
	}
	if len(gs) == 0 {
		return Group{}, notFoundf("group %q not found", id)
	}
	g := gs[0]
	g.Members, err = members(t.x, id)
	return g, err
}

// CreateGroup provisions g with its members. A retried POST, identical to
// the group it created (name, externalId and members), returns that group
// unchanged (created=false): IdPs resend on timeouts. Any other group of
// the same displayName or externalId is a conflict.
func (t *Tx) CreateGroup(g Group) (Group, bool, error) {
	g.Directory = t.dir
	if msg := checkGroup(g); msg != "" {
		return Group{}, false, invalidf("%s", msg)
	}
	prev, err := t.groupNamed(g, "")
	if prev.ID != "" && prev.DisplayName == g.DisplayName && prev.ExternalID == g.ExternalID &&
		slices.Equal(prev.Members, slices.Compact(slices.Sorted(slices.Values(g.Members)))) {
		return prev, false, nil
	}
	if err != nil {
		return Group{}, false, err
	}
	g.ID, g.Created, g.Updated = newID(), t.now, t.now
	if err := writeGroup(t.x, g, true); err != nil {
		return Group{}, false, err
	}
	want := g.Members
	g.Members = nil
	out, err := t.saveMembers(g, want, EventGroupCreated, "")
	return out, true, err
}

// SaveGroup replaces g.ID's displayName, externalId and members. Nothing
// is written when nothing changed. A name or externalId another group of
// the directory holds is a conflict, as on creation.
func (t *Tx) SaveGroup(g Group) (Group, error) {
	prev, err := t.Group(g.ID)
	if err != nil {
		return Group{}, err
	}
	if msg := checkGroup(g); msg != "" {
		return Group{}, invalidf("%s", msg)
	}
	g.Directory, g.Created = t.dir, prev.Created
	renamed := g.DisplayName != prev.DisplayName || g.ExternalID != prev.ExternalID
	if renamed {
		if _, err := t.groupNamed(g, g.ID); err != nil {
			return Group{}, err
		}
	}
	if renamed {
		g.Updated = t.now
		if err := writeGroup(t.x, g, false); err != nil {
			return Group{}, err
		}
	}
	want := g.Members
	g.Members = prev.Members
	previous := ""
	if renamed {
		previous = prev.DisplayName
	}
	out, err := t.saveMembers(g, want, EventGroupUpdated, previous)
	if err != nil {
		return Group{}, err
	}
	if renamed {
		// A rename changes which YAML group it supplies: every member moves.
		for _, id := range out.Members {
			if u, err := t.User(id); err == nil {
				t.change(Mover, u.UserName)
			}
		}
	}
	return out, nil
}

// groupNamed looks for a group of the directory other than self that
// holds g's displayName or externalId. It returns it (with its members)
// and a conflict error, or a zero Group and nil when both are free. Two
// groups of one name would both supply the YAML group of that name: the
// IdP's removal of a member from one would leave the person in it through
// the other.
func (t *Tx) groupNamed(g Group, self string) (Group, error) {
	if g.ExternalID != "" {
		prev, err := queryGroups(t.x, `directory = ? AND external_id = ? AND id <> ?`, t.dir, g.ExternalID, self)
		if err != nil {
			return Group{}, err
		}
		if len(prev) > 0 {
			p, err := t.Group(prev[0].ID)
			if err != nil {
				return Group{}, err
			}
			return p, conflictf("a group with externalId %q exists", g.ExternalID)
		}
	}
	same, err := queryGroups(t.x, `directory = ? AND display_name = ? AND id <> ?`, t.dir, g.DisplayName, self)
	if err != nil {
		return Group{}, err
	}
	if len(same) > 0 {
		p, err := t.Group(same[0].ID)
		if err != nil {
			return Group{}, err
		}
		return p, conflictf("group %q already exists", g.DisplayName)
	}
	return Group{}, nil
}

// saveMembers sets g's members to want (user IDs of this directory) and
// records the event typ when anything changed, the group is new, or it was
// renamed from previous (the evidence replays these events, so a rename
// must be one too).
func (t *Tx) saveMembers(g Group, want []string, typ, previous string) (Group, error) {
	want = slices.Compact(slices.Sorted(slices.Values(want)))
	names := map[string]string{}
	if len(want) > 0 {
		// One query for all members, so 10,000 of them cost one scan.
		all, err := queryUsers(t.x, `directory = ? AND deleted_at IS NULL`, t.dir)
		if err != nil {
			return Group{}, err
		}
		for _, u := range all {
			names[u.ID] = u.UserName
		}
		for _, id := range want {
			if _, ok := names[id]; !ok {
				return Group{}, invalidf("member %q is not a user of this directory", id)
			}
		}
	}
	added, removed, err := setMembers(t.x, g.ID, want)
	if err != nil {
		return Group{}, err
	}
	g.Members = want
	if typ == EventGroupUpdated && len(added) == 0 && len(removed) == 0 && previous == "" {
		return g, nil
	}
	if len(removed) > 0 && len(names) == 0 {
		all, err := queryUsers(t.x, `directory = ?`, t.dir)
		if err != nil {
			return Group{}, err
		}
		for _, u := range all {
			names[u.ID] = u.UserName
		}
	}
	addedNames, removedNames := []string{}, []string{}
	for _, id := range added {
		addedNames = append(addedNames, names[id])
		t.change(Mover, names[id])
	}
	for _, id := range removed {
		removedNames = append(removedNames, names[id])
		t.change(Mover, names[id])
	}
	if typ == EventGroupUpdated {
		g.Updated = t.now
		if _, err := t.x.Exec(`UPDATE directory_groups SET updated_at = ? WHERE id = ?`, mustTime(t.now), g.ID); err != nil {
			return Group{}, err
		}
	}
	return g, t.event(audit.Event{TS: t.now, Type: typ, Actor: t.actor(), Subject: "group:" + g.DisplayName,
		Data: map[string]any{"directory": t.dir, "tenant": t.tenant(), "id": g.ID, "display_name": g.DisplayName, "external_id": g.ExternalID,
			"added": addedNames, "removed": removedNames, "previous_display_name": previous}})
}

// DeleteGroup removes a group; its members move out of it.
func (t *Tx) DeleteGroup(id string) error {
	g, err := t.Group(id)
	if err != nil {
		return err
	}
	if _, err := t.saveMembers(g, nil, EventGroupUpdated, ""); err != nil {
		return err
	}
	if _, err := t.x.Exec(`DELETE FROM directory_groups WHERE id = ?`, id); err != nil {
		return err
	}
	return t.event(audit.Event{TS: t.now, Type: EventGroupDeleted, Actor: t.actor(), Subject: "group:" + g.DisplayName,
		Data: map[string]any{"directory": t.dir, "tenant": t.tenant(), "id": g.ID, "display_name": g.DisplayName}})
}

func checkGroup(g Group) string {
	if g.DisplayName == "" {
		return "displayName is required"
	}
	if msg := checkText("displayName", g.DisplayName, 256); msg != "" {
		return msg
	}
	return checkText("externalId", g.ExternalID, 256)
}

// newID is a SCIM id: 128 random bits in hex, never derived from input.
func newID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("identity: crypto/rand failed: " + err.Error())
	}
	return hex.EncodeToString(b[:])
}

func mustTime(t time.Time) string {
	s, _ := audit.Time(t)
	return s
}
