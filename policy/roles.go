package policy

import (
	"fmt"
	"path"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

var roleKeys = []string{
	"name", "tenant", "hosts", "logins", "members", "privileged", "break_glass",
	"eligible", "approvers", "approvals", "max_duration", "request_ttl",
	"require_reason", "require_ticket", "commands", "credential",
	"file_transfer", "deny_cooldown",
}

// jitKeys configure requests and grants, so they only make sense on
// privileged roles; on a standing role they would suggest a control that
// does not exist.
var jitKeys = []string{
	"eligible", "approvers", "approvals", "max_duration", "request_ttl",
	"require_reason", "require_ticket", "deny_cooldown",
}

// Defaults and limits of privileged roles.
const (
	defaultApprovals    = 1
	breakGlassApprovals = 2 // two distinct people must agree to an emergency
	defaultMaxDuration  = time.Hour
	// breakGlassMaxDuration keeps emergency access short: if the emergency
	// lasts longer, someone asks again and leaves a second record.
	breakGlassMaxDuration = time.Hour
	defaultRequestTTL     = 24 * time.Hour
	// defaultDenyCooldown keeps a denial from being undone by asking again
	// at once: the requester waits, or an approver clears it on the record.
	defaultDenyCooldown = time.Hour
	// maxDenyCooldown bounds deny_cooldown; a denial that should last longer
	// is a policy change (remove the user from eligible), not a cooldown.
	maxDenyCooldown = 30 * 24 * time.Hour
)

// refs holds what roles may refer to.
type refs struct {
	groups  map[string]int
	tenants map[string]*Tenant
	vault   bool // credentials.vault.address is set
}

// roles decodes the roles section.
func (d *decoder) roles(n *yaml.Node, c *Config, r refs) {
	seen := map[string]int{}
	d.seq(n, "roles", func(item *yaml.Node) {
		if role := d.role(item, r, seen); role != nil {
			c.Roles = append(c.Roles, role)
		}
	})
}

// role decodes one role. It returns nil when the role has no usable name;
// seen holds the role names already defined.
func (d *decoder) role(n *yaml.Node, refs refs, seen map[string]int) *Role {
	f, ok := d.mapping(n, "role", roleKeys)
	if !ok {
		return nil
	}
	r := &Role{Name: d.name(f.get("name"), roleName)}
	if r.Name == "" && blank(f.get("name")) {
		d.errorf(f.at("name"), "role has no name")
	}

	var tenant *Tenant
	if t := d.name(f.get("tenant"), tenantName); t != "" {
		if tenant = refs.tenants[t]; tenant == nil {
			d.hintf(f.get("tenant"), refHint(t, refs.tenants, "tenants"), "undefined tenant %q", t)
		} else {
			r.Tenant = t
		}
	} else if blank(f.get("tenant")) {
		d.hintf(f.at("tenant"), "every role belongs to exactly one tenant", "role %s has no tenant", display(r.Name))
	}
	r.Hosts = d.selector(f.get("hosts"), f.at("hosts"), tenant, display(r.Name))

	r.Logins, _ = d.names(f.get("logins"), "logins", loginName)
	if empty(f.get("logins")) {
		// No wildcard login: every login is a certificate principal the
		// user may ask for, so a role must say exactly which ones it gives.
		d.hintf(f.at("logins"), "e.g. logins: [deploy]", "role %s has no logins", display(r.Name))
	}

	priv, privSet := d.boolean(f.get("privileged"), "privileged")
	r.BreakGlass, _ = d.boolean(f.get("break_glass"), "break_glass")
	r.Privileged = priv || r.BreakGlass
	if r.BreakGlass && privSet && !priv {
		d.hintf(f.get("privileged"), "remove privileged: false", "break_glass roles are always privileged")
	}

	r.Members = d.groupRefs(f.get("members"), "members", refs.groups)
	r.Eligible = d.groupRefs(f.get("eligible"), "eligible", refs.groups)
	r.Approvers = d.groupRefs(f.get("approvers"), "approvers", refs.groups)
	if r.Privileged {
		d.privileged(f, r)
	} else {
		d.standing(f, r)
	}

	d.commands(f.get("commands"), &r.Commands)
	d.credential(f, r, refs.vault)
	d.fileTransfer(f, r)

	if r.Name == "" || !d.unique(seen, f.get("name"), "role", r.Name) {
		return nil
	}
	return r
}

// standing checks a role that does not need a request.
func (d *decoder) standing(f fields, r *Role) {
	for _, k := range jitKeys {
		if f.get(k) != nil {
			d.hintf(f.at(k), "set privileged: true for just-in-time access, or remove it", "%s only applies to privileged roles", k)
		}
	}
	if empty(f.get("members")) {
		d.hintf(f.node, "add members for standing access, or privileged: true with eligible and approvers",
			"role %s grants nothing", display(r.Name))
	}
}

// privileged checks and defaults a just-in-time role.
func (d *decoder) privileged(f fields, r *Role) {
	if !empty(f.get("members")) {
		d.hintf(f.at("members"), "standing access would bypass requests and approvals; list the groups under eligible instead",
			"privileged role %s cannot have members", display(r.Name))
	}
	if empty(f.get("eligible")) {
		d.hintf(f.at("eligible"), "list the groups that may request it", "privileged role %s has no eligible groups", display(r.Name))
	}
	if empty(f.get("approvers")) {
		d.hintf(f.at("approvers"), "list the groups that may approve requests", "privileged role %s has no approvers", display(r.Name))
	}

	r.Approvals = defaultApprovals
	if r.BreakGlass {
		r.Approvals = breakGlassApprovals
	}
	if v, set := d.integer(f.get("approvals"), "approvals"); set {
		switch {
		case v < 1:
			d.errorf(f.get("approvals"), "approvals must be at least 1")
		case r.BreakGlass && v < breakGlassApprovals:
			d.hintf(f.get("approvals"), "break-glass access needs two distinct approvers", "break_glass roles need at least 2 approvals")
		default:
			r.Approvals = v
		}
	}

	r.MaxDuration = Duration(defaultMaxDuration)
	if v, set := d.duration(f.get("max_duration"), "max_duration"); set {
		if r.BreakGlass && v.Std() > breakGlassMaxDuration {
			d.hintf(f.get("max_duration"), "set max_duration: 1h or less; a longer emergency is a new request",
				"break_glass grants last at most 1h, not %s", v)
		} else {
			r.MaxDuration = v
		}
	}
	r.RequestTTL = Duration(defaultRequestTTL)
	if v, set := d.duration(f.get("request_ttl"), "request_ttl"); set {
		r.RequestTTL = v
	}

	r.RequireReason = true
	if v, set := d.boolean(f.get("require_reason"), "require_reason"); set {
		if r.BreakGlass && !v {
			d.hintf(f.get("require_reason"), "the reason is the audit record of the emergency", "break_glass roles always require a reason")
		} else {
			r.RequireReason = v
		}
	}
	r.RequireTicket, _ = d.boolean(f.get("require_ticket"), "require_ticket")
	d.denyCooldown(f, r)
}

// denyCooldown decodes deny_cooldown: how long, after a deny, the same
// user may not request the role again. 0s turns it off. Break-glass roles
// take no value: their denials hold until an approver clears them, so that
// one approver's veto cannot be outvoted by asking the others.
func (d *decoder) denyCooldown(f fields, r *Role) {
	n := f.get("deny_cooldown")
	r.DenyCooldown = Duration(defaultDenyCooldown)
	if isNull(n) || !d.kind(n, yaml.ScalarNode, "deny_cooldown") {
		return
	}
	if r.BreakGlass {
		d.hintf(f.at("deny_cooldown"), "remove it; an approver clears a break-glass denial with: ssh gw clear-denial ROLE --user U --reason TEXT",
			"break_glass denials hold until cleared; deny_cooldown does not apply")
		return
	}
	var v Duration
	switch err := v.UnmarshalText([]byte(n.Value)); {
	case err != nil:
		d.hintf(n, "use a Go duration such as 30m or 1h; 0s turns the cooldown off", "bad duration %q for deny_cooldown", n.Value)
	case v < 0:
		d.errorf(n, "deny_cooldown must not be negative, not %s", n.Value)
	case v.Std() > maxDenyCooldown:
		d.hintf(n, "to keep a user from asking at all, remove them from eligible", "deny_cooldown is at most 720h, not %s", n.Value)
	default:
		r.DenyCooldown = v
	}
}

// fileTransfer decodes file_transfer, whether the role may use sftp and
// legacy scp. It defaults to true, except on break_glass roles: emergency
// root is for repairs typed at a recorded terminal, and a file transfer is
// logged by name and size, not by content, so it is the wrong tool there
// unless the policy says so.
func (d *decoder) fileTransfer(f fields, r *Role) {
	r.FileTransfer = !r.BreakGlass
	if v, set := d.boolean(f.get("file_transfer"), "file_transfer"); set {
		r.FileTransfer = v
	}
}

// commands decodes commands: {deny: [REGEXP...]}.
func (d *decoder) commands(n *yaml.Node, cr *CommandRules) {
	f, ok := d.mapping(n, "commands", []string{"deny"})
	if !ok {
		return
	}
	d.seq(f.get("deny"), "commands.deny", func(p *yaml.Node) {
		s := d.str(p, "deny pattern")
		if s == "" {
			if isNull(p) || p.Kind == yaml.ScalarNode {
				d.errorf(p, "empty pattern in commands.deny")
			}
			return
		}
		re, err := regexp.Compile(s)
		if err != nil {
			d.hintf(p, "patterns use Go regexp (RE2) syntax; quote them with single quotes", "bad regexp in commands.deny: %v", err)
			return
		}
		cr.Deny = append(cr.Deny, re)
		cr.DenySource = append(cr.DenySource, s)
	})
}

// credential decodes credential: {vault_kv: PATH}, a break-glass role's
// fallback secret.
func (d *decoder) credential(rf fields, r *Role, vault bool) {
	n := rf.get("credential")
	f, ok := d.mapping(n, "credential", []string{"vault_kv"})
	if !ok || isNull(n) {
		return
	}
	if !r.BreakGlass {
		// A stored secret for everyday access would bypass per-session
		// certificates; it exists only for emergencies.
		d.hintf(rf.at("credential"), "set break_glass: true, or remove it", "credential only applies to break_glass roles")
	}
	p := d.str(f.get("vault_kv"), "vault_kv")
	switch {
	case p == "":
		if blank(f.get("vault_kv")) {
			d.hintf(f.at("vault_kv"), "e.g. credential: {vault_kv: secret/data/breakglass/acme}", "credential has no vault_kv")
		}
	case !validVaultPath(p):
		d.hintf(f.get("vault_kv"), "a Vault KV path such as secret/data/breakglass/acme", "invalid vault_kv path %q", p)
	case !vault:
		d.hintf(f.get("vault_kv"), "add credentials.vault with its address", "credential.vault_kv needs Vault, but credentials.vault has no address")
	default:
		r.Credential.VaultKV = p
	}
}

// globChars is the host name alphabet plus path.Match's * ? [ ] and ^.
var globChars = regexp.MustCompile(`^[a-zA-Z0-9._*?\[\]^-]{1,128}$`)

// selector decodes hosts: {names: [...], labels: {...}} for role who in
// tenant t (nil when the role's tenant is unknown). at is blamed when it is
// missing.
func (d *decoder) selector(n, at *yaml.Node, t *Tenant, who string) HostSelector {
	var s HostSelector
	f, ok := d.mapping(n, "hosts", []string{"names", "labels"})
	if !ok {
		return s
	}
	if empty(f.get("names")) && empty(f.get("labels")) {
		d.hintf(at, `e.g. hosts: {names: [web01, "db*"]} or hosts: {labels: {env: prod}}`, "role %s selects no hosts", who)
		return s
	}
	errsBefore := len(d.errs)
	d.seq(f.get("names"), "hosts.names", func(p *yaml.Node) {
		g := d.str(p, "host pattern")
		switch {
		case g == "":
			if isNull(p) || p.Kind == yaml.ScalarNode {
				d.errorf(p, "empty host pattern in hosts.names")
			}
		case !validGlob(g):
			d.hintf(p, "host names, optionally with the globs * ? and [...]; hosts are matched within the role's tenant",
				"invalid host pattern %q", g)
		case t != nil && !strings.ContainsAny(g, "*?[") && t.host(g) == nil:
			d.hintf(p, refHint(g, t.hostSet(), "the tenant's hosts"), "no host %q in tenant %q", g, t.Name)
		default:
			s.Names = append(s.Names, g)
		}
	})
	s.Labels = d.labels(f.get("labels"), "hosts.labels")
	if t == nil || len(d.errs) > errsBefore {
		return s
	}
	for _, h := range t.Hosts {
		if s.Matches(h) {
			return s
		}
	}
	d.hintf(at, selectorHint(s, t), "role %s matches no host in tenant %q", who, t.Name)
	return s
}

// selectorHint explains why s picks no host of t. With both names and
// labels it says that a host must match both, and which hosts each part
// picks on its own, since a policy author may have expected the union.
func selectorHint(s HostSelector, t *Tenant) string {
	if len(s.Names) == 0 || len(s.Labels) == 0 {
		return "check the names and labels against the tenant's hosts"
	}
	var byName, byLabels []string
	for _, h := range t.Hosts {
		if s.matchesName(h) {
			byName = append(byName, h.Name)
		}
		if s.matchesLabels(h) {
			byLabels = append(byLabels, h.Name)
		}
	}
	return fmt.Sprintf("a host must match both names and labels; names alone match %s, labels alone match %s",
		hostList(byName), hostList(byLabels))
}

// hostList shows at most five host names.
func hostList(names []string) string {
	switch {
	case len(names) == 0:
		return "none"
	case len(names) > 5:
		return strings.Join(names[:5], ", ") + fmt.Sprintf(" and %d more", len(names)-5)
	}
	return strings.Join(names, ", ")
}

func validGlob(g string) bool {
	if !globChars.MatchString(g) {
		return false
	}
	_, err := path.Match(g, "")
	return err == nil
}

// host returns the tenant's host of that name, or nil.
func (t *Tenant) host(name string) *Host {
	for _, h := range t.Hosts {
		if h.Name == name {
			return h
		}
	}
	return nil
}

func (t *Tenant) hostSet() map[string]bool {
	m := make(map[string]bool, len(t.Hosts))
	for _, h := range t.Hosts {
		m[h.Name] = true
	}
	return m
}

// empty reports whether n is null or an empty list or mapping.
func empty(n *yaml.Node) bool {
	if isNull(n) {
		return true
	}
	return (n.Kind == yaml.SequenceNode || n.Kind == yaml.MappingNode) && len(n.Content) == 0
}
