package policy

import "slices"

// AuditorsGroup is the group whose members oversee every tenant: they list,
// watch and kill any session and keep the whole exception register.
const AuditorsGroup = "auditors"

// Oversight is the set of tenants whose sessions and exception register a
// user may oversee. The zero value oversees nothing.
type Oversight struct {
	All     bool     // a member of AuditorsGroup: every tenant, present and future
	Tenants []string // otherwise these, sorted and without repeats
}

// Covers reports whether tenant is within o.
func (o Oversight) Covers(tenant string) bool {
	return o.All || slices.Contains(o.Tenants, tenant)
}

// None reports whether o covers no tenant at all.
func (o Oversight) None() bool { return !o.All && len(o.Tenants) == 0 }

// OversightOf answers which tenants u oversees under this policy. One
// client's people must never see or end another client's sessions, so an
// approver oversees only the tenants of the roles they approve, and a
// group's audits list makes its members auditors of those tenants only.
// Members of AuditorsGroup keep the global view. A nil user oversees
// nothing.
func (c *Config) OversightOf(u *User) Oversight {
	if u == nil {
		return Oversight{}
	}
	if u.Tenant != "" {
		// A tenant-limited directory's user oversees at most their own
		// tenant, whatever groups (auditors included) the directory gives.
		return c.oversightIn(u, u.Tenant)
	}
	if u.InAny([]string{AuditorsGroup}) {
		return Oversight{All: true}
	}
	var ts []string
	for _, g := range c.Groups {
		if len(g.Audits) > 0 && u.InAny([]string{g.Name}) {
			ts = append(ts, g.Audits...)
		}
	}
	for _, r := range c.Roles {
		if u.InAny(r.Approvers) {
			ts = append(ts, r.Tenant)
		}
	}
	slices.Sort(ts)
	return Oversight{Tenants: slices.Compact(ts)}
}

// oversightIn is OversightOf for a user limited to tenant.
func (c *Config) oversightIn(u *User, tenant string) Oversight {
	cp := *u
	cp.Tenant = ""
	o := c.OversightOf(&cp)
	if o.Covers(tenant) {
		return Oversight{Tenants: []string{tenant}}
	}
	return Oversight{}
}
