package identity

import (
	"slices"

	"golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/policy"
)

// mergeCache remembers the last merge: the policy is asked for on every
// authentication, the directory changes rarely.
type mergeCache struct {
	base   *policy.Config
	gen    uint64
	merged *policy.Config
}

// Merge returns base plus the directory users that may log in now, as one
// policy (see the package doc). base is the YAML policy in force; the
// result is cached until base or the directory changes. A user whose
// directory is no longer configured in base is left out: fail closed.
func (d *Directory) Merge(base *policy.Config) *policy.Config {
	if base == nil {
		return nil
	}
	d.mu.RLock()
	if c := d.cache; c.base == base && c.gen == d.gen {
		d.mu.RUnlock()
		return c.merged
	}
	gen, snap := d.gen, d.snap
	bound := map[string][]ssh.PublicKey{}
	for _, m := range d.bound {
		for name, ks := range m {
			bound[name] = append(bound[name], ks...)
		}
	}
	d.mu.RUnlock()

	merged, skipped := MergeUsers(base, snap.users, bound)
	if len(skipped) > 0 {
		d.log.Warn("directory users left out: their name is a user of the policy file", "users", skipped)
	}
	d.mu.Lock()
	if d.gen == gen {
		d.cache = mergeCache{base: base, gen: gen, merged: merged}
	}
	d.mu.Unlock()
	return merged
}

// MergeUsers is Merge for users read with Load (the CLI's reconcile and
// identities): base plus the users of users that are active, not deleted
// and of a directory base configures, with bound keys added by name.
func MergeUsers(base *policy.Config, users []User, bound map[string][]ssh.PublicKey) (merged *policy.Config, skipped []string) {
	yamlGroups := map[string]bool{}
	for _, g := range base.Groups {
		yamlGroups[g.Name] = true
	}
	var extra []*policy.User
	for _, u := range users {
		dir := directoryOf(base, u.Directory)
		if dir == nil || !u.Active || !u.Deleted.IsZero() {
			continue
		}
		pu := &policy.User{Name: u.UserName, Keys: mustKeys(u.Keys), Source: u.Source(), Tenant: dir.Tenant}
		for _, g := range u.Groups {
			// A SCIM group supplies the members of the YAML group of the
			// same name; other groups mean nothing to the policy.
			if yamlGroups[g] && !slices.Contains(pu.Groups, g) {
				pu.Groups = append(pu.Groups, g)
			}
		}
		extra = append(extra, pu)
	}
	return base.WithUsers(extra, bound)
}
