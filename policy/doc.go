// Package policy loads warden.yaml and answers the gateway's one question:
// may this user reach LOGIN@HOST, and through which role?
//
// A policy names tenants and their hosts, groups, users with their public
// keys, and roles. A role gives logins on a set of hosts in one tenant, either
// as standing access (members) or just in time (privileged roles, which users
// request and approvers grant). Break-glass roles are privileged roles with
// stricter rules: at least two approvals, grants of at most one hour.
//
// Load and Parse read the policy with yaml.Node decoding, so every problem
// carries the file and line it came from, and they report all problems at
// once as an *ErrorList rather than stopping at the first. The checks are
// strict on purpose: the policy is the security boundary of the gateway, so an
// unknown key, a misspelled group or a host that cannot be verified is an
// error at load time rather than a surprise at connection time.
//
// Every name (tenant, host, user, group, role, login) is checked against a
// small alphabet before it is accepted, because names end up in file paths,
// SQL rows and certificate principals. No name may contain '/', '@',
// whitespace or control characters, and none may start with '.' or '-'.
//
// OversightOf answers the gateway's second question: whose sessions and
// exceptions may this user see and end? Approvers oversee the tenants of
// the roles they approve, a group's audits list makes its members auditors
// of those tenants, and the auditors group oversees every tenant.
//
// identity.directories names the identity providers that provision users
// over SCIM (package identity). Their users join a policy through
// WithUsers, which returns a merged copy; such a user carries its Source
// ("scim:DIRECTORY") and, for a tenant-limited directory, a Tenant that
// confines every role decision (InAnyFor) and its oversight to that tenant.
// Directory user names may hold '@' (dana@contoso.com): they come from the
// IdP, not from this file, and are checked by identity.CheckUserName.
//
// A *Config is immutable after Parse and safe for concurrent use; the lookups
// (UserByKey, User, Role, ResolveHost) use indexes built once at load time.
package policy
