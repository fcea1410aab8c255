package identity

import (
	"slices"
	"time"
)

// Email is one of a user's SCIM emails.
type Email struct {
	Value   string `json:"value"`
	Type    string `json:"type,omitempty"`
	Primary bool   `json:"primary,omitempty"`
}

// User is a user a directory provisioned.
type User struct {
	ID          string // SCIM id, assigned by Warden
	Directory   string // identity.directories[].name
	ExternalID  string // the IdP's id; "" when not sent
	UserName    string // the Warden user name, as sent
	DisplayName string
	Emails      []Email
	Active      bool
	Keys        []string // authorized_keys lines, as validated
	Groups      []string // display names of the directory groups the user is in, sorted
	Created     time.Time
	Updated     time.Time
	Deleted     time.Time // zero unless a tombstone
}

// Source is the user's source as shown to people: "scim:DIRECTORY", or
// "oidc" for a user a sign-in created.
func (u User) Source() string {
	if u.Directory == OIDCDirectory {
		return "oidc"
	}
	return "scim:" + u.Directory
}

// State is "active", "inactive" or "deleted".
func (u User) State() string {
	switch {
	case !u.Deleted.IsZero():
		return "deleted"
	case u.Active:
		return "active"
	}
	return "inactive"
}

// Group is a group a directory provisioned. Members are user IDs.
type Group struct {
	ID          string
	Directory   string
	ExternalID  string
	DisplayName string
	Members     []string
	Created     time.Time
	Updated     time.Time
}

// Change kinds, as told to subscribers and written in the evidence.
const (
	Joiner = "joiner" // became active (created, reactivated or re-created)
	Mover  = "mover"  // groups changed while active
	Leaver = "leaver" // deactivated or deleted
	Edit   = "edit"   // keys or attributes changed
)

// Change is what one committed write did to one user.
type Change struct {
	Kind      string
	UserName  string
	Directory string
	At        time.Time
	// Reloaded marks a change Reload found: another node committed the
	// write and did its side effects (audit events, grants, requests);
	// this node only stops what the new state no longer allows.
	Reloaded bool
}

func equalUsers(a, b User) bool {
	return a.ExternalID == b.ExternalID && a.UserName == b.UserName && a.DisplayName == b.DisplayName &&
		a.Active == b.Active && slices.Equal(a.Emails, b.Emails) && slices.Equal(a.Keys, b.Keys) &&
		a.Deleted.IsZero() == b.Deleted.IsZero()
}
