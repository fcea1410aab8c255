package policy

import (
	"cmp"
	"path"
	"slices"
)

// Decision says which roles could admit a user as LOGIN@HOST.
type Decision struct {
	// Standing is the first role, in policy order, that admits the user
	// without a request; nil when none does.
	Standing *Role
	// Requestable lists the privileged roles, in policy order, that cover
	// LOGIN@HOST and that the user is eligible to request. Whether the user
	// holds an active grant for one of them is for the caller to check.
	Requestable []*Role
}

// Access is one way a user can reach a host: now, or after a request.
type Access struct {
	Host       *Host
	Logins     []string // sorted
	Role       *Role
	NeedsGrant bool // true for privileged roles
}

// Matches reports whether the selector picks h. With only Names, h's name
// must match one of them (path.Match globs); with only Labels, h must carry
// every one of them. With both, h must do both: a policy author who writes
// names and labels together means "these hosts, and only those with these
// labels", and least privilege says the narrower reading wins. An empty
// selector matches nothing, so a role never selects every host by omission.
func (s HostSelector) Matches(h *Host) bool {
	if len(s.Names) == 0 && len(s.Labels) == 0 {
		return false
	}
	return (len(s.Names) == 0 || s.matchesName(h)) && (len(s.Labels) == 0 || s.matchesLabels(h))
}

// matchesName reports whether h's name matches one of Names.
func (s HostSelector) matchesName(h *Host) bool {
	for _, g := range s.Names {
		if ok, _ := path.Match(g, h.Name); ok {
			return true
		}
	}
	return false
}

// matchesLabels reports whether h carries every one of Labels.
func (s HostSelector) matchesLabels(h *Host) bool {
	for k, v := range s.Labels {
		if got, ok := h.Labels[k]; !ok || got != v {
			return false
		}
	}
	return true
}

// Covers reports whether r gives login on h: h is in the role's tenant, the
// role's selector picks it, and login is one of the role's logins. It says
// nothing about who holds the role.
func (r *Role) Covers(h *Host, login string) bool {
	return r != nil && h != nil && h.Tenant == r.Tenant && r.Hosts.Matches(h) && slices.Contains(r.Logins, login)
}

// InAny reports whether u belongs to at least one of groups.
func (u *User) InAny(groups []string) bool {
	if u == nil {
		return false
	}
	for _, g := range u.Groups {
		if slices.Contains(groups, g) {
			return true
		}
	}
	return false
}

// Authorize answers which roles could admit u as login@h. A standing role is
// a non-privileged role whose members include one of u's groups. Privileged
// and break-glass roles are never standing, whatever the groups say: they
// are returned in Requestable when u is eligible, so that the gateway checks
// for a grant or tells the user what to request.
func (c *Config) Authorize(u *User, login string, h *Host) Decision {
	var d Decision
	if u == nil || h == nil {
		return d
	}
	for _, r := range c.Roles {
		if !r.Covers(h, login) {
			continue
		}
		switch {
		case r.Privileged:
			if u.InAnyFor(r, r.Eligible) {
				d.Requestable = append(d.Requestable, r)
			}
		case d.Standing == nil && u.InAnyFor(r, r.Members):
			d.Standing = r
		}
	}
	return d
}

// Reachable lists every host u can reach now or after a request, one entry
// per host and role, sorted by tenant, host, standing before requestable,
// then role name. It backs `ssh gw hosts`.
func (c *Config) Reachable(u *User) []Access {
	var out []Access
	if u == nil {
		return out
	}
	for _, r := range c.Roles {
		if r.Privileged && !u.InAnyFor(r, r.Eligible) || !r.Privileged && !u.InAnyFor(r, r.Members) {
			continue
		}
		t := c.tenants[r.Tenant]
		if t == nil {
			continue
		}
		logins := slices.Sorted(slices.Values(r.Logins))
		for _, h := range t.Hosts {
			if r.Hosts.Matches(h) {
				out = append(out, Access{Host: h, Logins: slices.Clone(logins), Role: r, NeedsGrant: r.Privileged})
			}
		}
	}
	slices.SortFunc(out, func(a, b Access) int {
		return cmp.Or(
			cmp.Compare(a.Host.Tenant, b.Host.Tenant),
			cmp.Compare(a.Host.Name, b.Host.Name),
			compareBool(a.NeedsGrant, b.NeedsGrant),
			cmp.Compare(a.Role.Name, b.Role.Name),
		)
	})
	return out
}

// compareBool orders false before true.
func compareBool(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}

// HostsOf returns the hosts r's selector picks in its tenant, in policy
// order.
func (c *Config) HostsOf(r *Role) []*Host {
	t := c.Tenant(r.Tenant)
	if t == nil {
		return nil
	}
	var out []*Host
	for _, h := range t.Hosts {
		if r.Hosts.Matches(h) {
			out = append(out, h)
		}
	}
	return out
}
