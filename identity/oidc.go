package identity

import (
	"context"
	"slices"

	"github.com/warden-gw/warden/policy"
)

// OIDCDirectory is the pseudo-directory of the users that single sign-on
// creates (identity.oidc.create_users: true). Their source is "oidc";
// policy.identityDirectories reserves the name, so no SCIM directory can
// write into it or it into one.
const OIDCDirectory = "oidc"

// oidcConfigured reports whether sign-ins may create users under base:
// when they may not (create_users switched off), the users created before
// are left out of the merge and cannot log in (fail closed).
func oidcConfigured(base *policy.Config) bool {
	return base != nil && base.Identity.OIDC != nil && base.Identity.OIDC.CreateUsers
}

// directoryOf returns the directory dir under base: a configured SCIM
// directory, or the untenanted pseudo-directory of sign-in users while
// create_users is on; nil otherwise.
func directoryOf(base *policy.Config, dir string) *policy.Directory {
	if dir == OIDCDirectory {
		if oidcConfigured(base) {
			return &policy.Directory{Name: OIDCDirectory}
		}
		return nil
	}
	return base.Directory(dir)
}

// SignInCreated is what SignInUser did.
type SignInCreated struct {
	Name    string   // the Warden user the sign-in is
	Created bool     // a new user of source oidc
	Groups  []string // the policy groups the user is in after the sign-in
	Ignored []string // claim groups the policy does not define
}

// SignInUser makes sure the IdP's user claim exists as a user of source
// "oidc" with exactly the policy groups in groups (a sign-in refreshes
// them: a mover in the IdP gets the new groups at the next sign-in). It is
// for claims that match no YAML or directory user; it refuses (ErrConflict)
// a name that is, case-insensitively, a YAML user, a directory user of any
// state, or the tombstone of one: a deprovisioned person must not come
// back through sign-in. A name that fails CheckUserName is ErrInvalid. Any
// store error changes nothing and is returned: the caller refuses.
func (d *Directory) SignInUser(ctx context.Context, claim string, groups []string) (SignInCreated, error) {
	var out SignInCreated
	base := d.base()
	if !oidcConfigured(base) {
		return out, conflictf("identity.oidc.create_users is off")
	}
	defined := map[string]bool{}
	for _, g := range base.Groups {
		defined[g.Name] = true
	}
	want := []string{}
	for _, g := range groups {
		switch {
		case defined[g]:
			if !slices.Contains(want, g) {
				want = append(want, g)
			}
		case !slices.Contains(out.Ignored, g):
			out.Ignored = append(out.Ignored, g)
		}
	}
	slices.Sort(want)
	err := d.Update(ctx, OIDCDirectory, func(t *Tx) error {
		all, err := queryUsers(t.x, `user_key = ?`, fold(claim))
		if err != nil {
			return err
		}
		var u User
		for _, p := range all {
			switch {
			case p.Directory != OIDCDirectory:
				return conflictf("userName %q belongs to directory %q", claim, p.Directory)
			case p.Deleted.IsZero():
				u = p
			}
		}
		if u.ID == "" {
			u, out.Created, err = t.CreateUser(User{UserName: claim, Active: true})
			if err != nil {
				return err
			}
		} else if !u.Active {
			u.Active = true
			if u, err = t.SaveUser(u); err != nil {
				return err
			}
		}
		out.Name = u.UserName
		return t.setUserGroups(u.ID, want)
	})
	if err != nil {
		return SignInCreated{}, err
	}
	out.Groups = want
	return out, nil
}

// setUserGroups puts user id in exactly the groups named want (creating
// the pseudo-directory's group of a name at first use), through the same
// membership writes, events and mover changes as SCIM.
func (t *Tx) setUserGroups(id string, want []string) error {
	have, err := queryGroups(t.x, `directory = ?`, t.dir)
	if err != nil {
		return err
	}
	seen := map[string]bool{}
	for _, g := range have {
		seen[g.DisplayName] = true
		ms, err := members(t.x, g.ID)
		if err != nil {
			return err
		}
		in, should := slices.Contains(ms, id), slices.Contains(want, g.DisplayName)
		switch {
		case in && !should:
			ms = slices.DeleteFunc(ms, func(m string) bool { return m == id })
		case !in && should:
			ms = append(ms, id)
		default:
			continue
		}
		if _, err := t.saveMembers(g, ms, EventGroupUpdated, ""); err != nil {
			return err
		}
	}
	for _, name := range want {
		if !seen[name] {
			if _, _, err := t.CreateGroup(Group{DisplayName: name, Members: []string{id}}); err != nil {
				return err
			}
		}
	}
	return nil
}

// CreateSignInUser is SignInUser in the shape package sso asks for
// (sso.Creator).
func (d *Directory) CreateSignInUser(ctx context.Context, claim string, groups []string) (string, []string, []string, error) {
	r, err := d.SignInUser(ctx, claim, groups)
	return r.Name, r.Groups, r.Ignored, err
}

// CreatedBySignIn reports whether name is a live user of source oidc.
func (d *Directory) CreatedBySignIn(name string) bool {
	u, ok := d.UserByName(name)
	return ok && u.Directory == OIDCDirectory
}
