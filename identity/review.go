package identity

import (
	"strings"

	"github.com/warden-gw/warden/policy"
)

// Review is what `warden reconcile` reports about identities when a
// directory is configured.
type Review struct {
	// Unmatched are YAML users with no live directory user that is
	// theirs: a hand-kept account the IdP does not know, so no leaver
	// process will ever remove it.
	Unmatched []string
	// Inactive are directory users the IdP has deactivated (not deleted):
	// they cannot log in, and keys bound to them by sign-in no longer
	// count, but the IdP still holds them.
	Inactive []User
}

// Reviewed compares the YAML users of cfg with the directory users. A
// YAML user's counterpart is a live directory user whose userName, or one
// of whose emails, is the YAML name or starts with the YAML name and '@',
// compared case-insensitively (alice ~ alice@contoso.com). Without a
// configured directory there is nothing to compare and Unmatched is empty.
func Reviewed(cfg *policy.Config, users []User) Review {
	var r Review
	for _, u := range users {
		if u.Deleted.IsZero() && !u.Active {
			r.Inactive = append(r.Inactive, u)
		}
	}
	if cfg == nil || len(cfg.Identity.Directories) == 0 {
		return r
	}
	for _, y := range cfg.Users {
		if y.Source != "" {
			continue // a directory user already merged in
		}
		if !hasCounterpart(y.Name, users) {
			r.Unmatched = append(r.Unmatched, y.Name)
		}
	}
	return r
}

func hasCounterpart(name string, users []User) bool {
	n := fold(name)
	matches := func(s string) bool {
		s = fold(s)
		return s == n || strings.HasPrefix(s, n+"@")
	}
	for _, u := range users {
		if !u.Deleted.IsZero() {
			continue
		}
		if matches(u.UserName) {
			return true
		}
		for _, e := range u.Emails {
			if matches(e.Value) {
				return true
			}
		}
	}
	return false
}
