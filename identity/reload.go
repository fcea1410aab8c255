package identity

import (
	"context"
	"slices"
	"time"
)

// Reload reads the directory tables again, for a node that learns that
// another node of the cluster committed a write (the cluster bus's
// `directory` message, or a resync after the bus reconnected). It returns
// what changed since this node's snapshot, as the kinds Update reports
// (Joiner, Mover, Leaver, Edit), each marked Reloaded, and tells the
// subscribers the same before it returns.
//
// The write's side effects (its audit events, the grants and requests it
// ended) were made once, by the node that committed it: a subscriber must
// not repeat them for a Reloaded change, only stop on this node what the
// new state no longer allows (live sessions, keys: the merged policy
// follows the new snapshot at once).
func (d *Directory) Reload(ctx context.Context) ([]Change, error) {
	prev, next, err := d.swap(ctx)
	if err != nil {
		return nil, err
	}
	changes := diffSnapshots(prev, next, d.clock())
	if len(changes) > 0 {
		d.notify(changes)
	}
	return changes, nil
}

// diffSnapshots compares two snapshots user by user (by ID) and returns
// the changes that lead from prev to next. A user counts as active when
// the merge would admit them: active and not deleted.
func diffSnapshots(prev, next *snapshot, at time.Time) []Change {
	if prev == nil || next == nil {
		return nil
	}
	active := func(u *User) bool { return u != nil && u.Active && u.Deleted.IsZero() }
	var out []Change
	add := func(kind string, u *User) {
		out = append(out, Change{Kind: kind, UserName: u.UserName, Directory: u.Directory, At: at, Reloaded: true})
	}
	for id, was := range prev.byID {
		now := next.byID[id]
		switch {
		case active(was) && !active(now):
			add(Leaver, was)
		case !active(was) && active(now):
			if now.UserName != was.UserName {
				add(Leaver, was) // a tombstone's old name, harmless
			}
			add(Joiner, now)
		case active(was) && active(now):
			if fold(now.UserName) != fold(was.UserName) {
				add(Leaver, was) // the old name's sessions end
			}
			switch {
			case !slices.Equal(was.Groups, now.Groups):
				add(Mover, now)
			case !equalUsers(*was, *now):
				add(Edit, now)
			}
		}
	}
	for id, now := range next.byID {
		if prev.byID[id] == nil && active(now) {
			add(Joiner, now)
		}
	}
	// A stable order: by user name, then kind.
	slices.SortFunc(out, func(a, b Change) int {
		if c := compareStrings(a.UserName, b.UserName); c != 0 {
			return c
		}
		return compareStrings(a.Kind, b.Kind)
	})
	return out
}

func compareStrings(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
