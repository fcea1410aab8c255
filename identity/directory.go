package identity

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// Options configures a Directory. Store and Policy are required.
type Options struct {
	// Store holds the directory_* tables and the audit chain.
	Store *audit.Store
	// Policy returns the YAML policy in force (not the merged one): its
	// users' names and keys are off limits to directories, and its
	// identity.directories say which directories exist.
	Policy func() *policy.Config
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives operational logs; nil means slog.Default().
	Logger *slog.Logger
}

// Directory is the store of directory users and groups, and their merge
// with the YAML policy. It is safe for concurrent use.
type Directory struct {
	store *audit.Store
	base  func() *policy.Config
	clock func() time.Time
	log   *slog.Logger

	reloadMu sync.Mutex // serialises reloads, so an older one never lands last

	mu    sync.RWMutex
	snap  *snapshot
	gen   uint64                                // moves on every reload and BindKeys
	bound map[string]map[string][]ssh.PublicKey // source -> user name -> keys
	subs  []func([]Change)
	cache mergeCache
}

// snapshot is the whole directory state, as of one reload.
type snapshot struct {
	users  []User            // every row, tombstones included, by folded name
	byID   map[string]*User  // id -> user
	byName map[string]*User  // folded name -> live (not deleted) user
	byKey  map[string]string // SHA-256 fingerprint -> user id, live users
	groups []Group
}

// Open loads the directory tables into memory.
func Open(ctx context.Context, opt Options) (*Directory, error) {
	if opt.Store == nil || opt.Policy == nil {
		return nil, errors.New("identity: need a store and a policy")
	}
	d := &Directory{store: opt.Store, base: opt.Policy, clock: opt.Now, log: opt.Logger, bound: map[string]map[string][]ssh.PublicKey{}}
	if d.clock == nil {
		d.clock = time.Now
	}
	if d.log == nil {
		d.log = slog.Default()
	}
	if err := d.reload(ctx); err != nil {
		return nil, err
	}
	return d, nil
}

// Load reads the directory tables from a database for the CLI (warden
// identities, reconcile, evidence): db may be a read-only pool.
func Load(ctx context.Context, db *sql.DB) ([]User, []Group, error) {
	s, err := load(dbQuerier{ctx, db})
	if err != nil {
		return nil, nil, err
	}
	return s.users, s.groups, nil
}

func load(q querier) (*snapshot, error) {
	users, err := queryUsers(q, `1 = 1`) // not `1`: PostgreSQL wants a boolean
	if err != nil {
		return nil, err
	}
	groups, err := queryGroups(q, `1 = 1`)
	if err != nil {
		return nil, err
	}
	s := &snapshot{byID: map[string]*User{}, byName: map[string]*User{}, byKey: map[string]string{}, groups: groups}
	s.users = users
	for i := range s.users {
		u := &s.users[i]
		s.byID[u.ID] = u
		if u.Deleted.IsZero() {
			s.byName[fold(u.UserName)] = u
			for _, k := range mustKeys(u.Keys) {
				s.byKey[ssh.FingerprintSHA256(k)] = u.ID
			}
		}
	}
	rows, err := q.Query(`SELECT group_id, user_id FROM directory_members ORDER BY group_id, user_id`)
	if err != nil {
		return nil, fmt.Errorf("identity: load members: %w", err)
	}
	defer rows.Close()
	byGroup := map[string]*Group{}
	for i := range s.groups {
		byGroup[s.groups[i].ID] = &s.groups[i]
	}
	for rows.Next() {
		var gid, uid string
		if err := rows.Scan(&gid, &uid); err != nil {
			return nil, err
		}
		g, u := byGroup[gid], s.byID[uid]
		if g == nil || u == nil {
			continue
		}
		g.Members = append(g.Members, uid)
		u.Groups = append(u.Groups, g.DisplayName)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for i := range s.users {
		slices.Sort(s.users[i].Groups)
	}
	return s, nil
}

func (d *Directory) reload(ctx context.Context) error {
	_, _, err := d.swap(ctx)
	return err
}

// swap reads the tables again and puts the new snapshot in force; it
// returns the one it replaced (nil on the first load) and the new one.
func (d *Directory) swap(ctx context.Context) (prev, next *snapshot, err error) {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	s, err := load(dbQuerier{ctx, d.store.DB()})
	if err != nil {
		return nil, nil, fmt.Errorf("identity: reload: %w", err)
	}
	d.mu.Lock()
	prev, d.snap = d.snap, s
	d.gen++
	d.mu.Unlock()
	return prev, s, nil
}

// Subscribe registers fn to be told, after every committed write, what it
// did to which users. fn runs before Update returns, in its goroutine.
func (d *Directory) Subscribe(fn func([]Change)) {
	d.mu.Lock()
	d.subs = append(d.subs, fn)
	d.mu.Unlock()
}

// Update runs fn as one write of directory dir: fn's reads see the
// database inside the transaction, and its writes and audit events commit
// together or not at all. After the commit the snapshot is reloaded and
// the subscribers told, before Update returns.
func (d *Directory) Update(ctx context.Context, dir string, fn func(*Tx) error) error {
	base := d.base()
	if directoryOf(base, dir) == nil {
		return notFoundf("directory %q is not configured", dir)
	}
	var changes []Change
	var wrote bool
	err := d.store.Update(ctx, func(x *audit.Tx) error {
		t := &Tx{x: x, dir: dir, now: stamp(d.clock()), base: base}
		if err := fn(t); err != nil {
			return err
		}
		changes, wrote = t.changes, t.wrote
		return nil
	})
	if err != nil {
		return err
	}
	if !wrote {
		return nil // a retry that changed nothing
	}
	if err := d.reload(ctx); err != nil {
		// The change is stored but not yet in force: say so, so the IdP
		// retries (a no-op write that reloads again).
		return err
	}
	if len(changes) > 0 {
		d.notify(changes)
	}
	return nil
}

func (d *Directory) notify(changes []Change) {
	d.mu.RLock()
	subs := slices.Clone(d.subs)
	d.mu.RUnlock()
	for _, fn := range subs {
		fn(changes)
	}
}

// Users returns every directory user, tombstones included, sorted by name.
func (d *Directory) Users() []User {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return slices.Clone(d.snap.users)
}

// Groups returns every directory group with its members.
func (d *Directory) Groups() []Group {
	d.mu.RLock()
	defer d.mu.RUnlock()
	return slices.Clone(d.snap.groups)
}

// UserByName returns the live user of that name, compared
// case-insensitively.
func (d *Directory) UserByName(name string) (User, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	u, ok := d.snap.byName[fold(name)]
	if !ok {
		return User{}, false
	}
	return *u, true
}

// UserByKey returns the live user holding the key of that SHA-256
// fingerprint (as ssh.FingerprintSHA256 writes it).
func (d *Directory) UserByKey(fingerprint string) (User, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	id, ok := d.snap.byKey[fingerprint]
	if !ok {
		return User{}, false
	}
	return *d.snap.byID[id], true
}

// UserByID returns the user of that id in directory dir, tombstones
// included.
func (d *Directory) UserByID(dir, id string) (User, bool) {
	d.mu.RLock()
	defer d.mu.RUnlock()
	u, ok := d.snap.byID[id]
	if !ok || u.Directory != dir {
		return User{}, false
	}
	return *u, true
}

// BindKeys replaces the keys that source (e.g. "oidc") binds to users by
// name. Merge adds them while the user is in the merged policy. The
// subscribers are told of every user whose bound keys changed.
func (d *Directory) BindKeys(source string, keys map[string][]ssh.PublicKey) {
	d.mu.Lock()
	prev := d.bound[source]
	d.bound[source] = keys
	d.gen++
	d.mu.Unlock()
	var changes []Change
	for name := range prev {
		if len(keys[name]) < len(prev[name]) {
			changes = append(changes, Change{Kind: Edit, UserName: name, At: d.clock()})
		}
	}
	if len(changes) > 0 {
		d.notify(changes)
	}
}
