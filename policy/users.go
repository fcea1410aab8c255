package policy

import (
	"fmt"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh"
)

var (
	groupKeys = []string{"name", "audits"}
	userKeys  = []string{"name", "keys", "groups"}
)

// groups decodes the groups section and returns the line of each group.
// tenants are the declared tenants, which a group's audits list names.
func (d *decoder) groups(n *yaml.Node, c *Config, tenants map[string]*Tenant) map[string]int {
	seen := map[string]int{}
	d.seq(n, "groups", func(item *yaml.Node) {
		f, ok := d.mapping(item, "group", groupKeys)
		if !ok {
			return
		}
		name := d.name(f.get("name"), groupName)
		if name == "" {
			if blank(f.get("name")) {
				d.errorf(f.at("name"), "group has no name")
			}
			return
		}
		g := &Group{Name: name, Audits: d.audits(f.get("audits"), name, tenants)}
		if d.unique(seen, f.get("name"), "group", name) {
			c.Groups = append(c.Groups, g)
		}
	})
	return seen
}

// audits decodes a group's audits list: the tenants whose sessions and
// exception register its members oversee. The auditors group oversees
// every tenant already, so a list there would only mislead the reader.
func (d *decoder) audits(n *yaml.Node, group string, tenants map[string]*Tenant) []string {
	if isNull(n) {
		return nil
	}
	if group == AuditorsGroup {
		d.hintf(n, "put tenant auditors in a group of their own, e.g. acme-auditors", "the %s group oversees every tenant; it takes no audits list", AuditorsGroup)
		return nil
	}
	names, nodes := d.names(n, "audits", tenantName)
	if n.Kind == yaml.SequenceNode && len(n.Content) == 0 {
		d.hintf(n, "list the tenants its members audit, or remove audits", "empty audits list")
	}
	var out []string
	for i, t := range names {
		if tenants[t] == nil {
			d.hintf(nodes[i], refHint(t, tenants, "tenants"), "undefined tenant %q in audits", t)
			continue
		}
		out = append(out, t)
	}
	return out
}

// groupRefs decodes a list of group names, each of which must be declared.
func (d *decoder) groupRefs(n *yaml.Node, what string, declared map[string]int) []string {
	names, nodes := d.names(n, what, groupName)
	var out []string
	for i, g := range names {
		if _, ok := declared[g]; !ok {
			d.hintf(nodes[i], refHint(g, declared, "groups"), "undefined group %q in %s", g, what)
			continue
		}
		out = append(out, g)
	}
	return out
}

// refHint suggests a near-miss among the defined names, or where to declare one.
func refHint[V any](name string, defined map[string]V, section string) string {
	options := make([]string, 0, len(defined))
	for k := range defined {
		options = append(options, k)
	}
	if s := suggest(name, options); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	return "declare it under " + section
}

// keyOwner remembers who first listed a key, for the duplicate-key error.
type keyOwner struct {
	user string
	line int
}

// users decodes the users section. A key may belong to one user only:
// identity is the key, so a shared key would make two people one.
func (d *decoder) users(n *yaml.Node, c *Config, groups map[string]int) {
	seen := map[string]int{}
	owners := map[string]keyOwner{} // SHA-256 fingerprint -> first owner
	d.seq(n, "users", func(item *yaml.Node) {
		f, ok := d.mapping(item, "user", userKeys)
		if !ok {
			return
		}
		u := &User{Name: d.name(f.get("name"), userName)}
		if u.Name == "" && blank(f.get("name")) {
			d.errorf(f.at("name"), "user has no name")
		}
		d.seq(f.get("keys"), "keys", func(kn *yaml.Node) {
			k := d.publicKey(kn, "user key")
			if k == nil {
				return
			}
			fp := ssh.FingerprintSHA256(k)
			if prev, dup := owners[fp]; dup {
				d.hintf(kn, fmt.Sprintf("first listed for user %s at line %d; every person needs their own key", display(prev.user), prev.line),
					"key %s is listed twice", fp)
				return
			}
			owners[fp] = keyOwner{u.Name, kn.Line}
			u.Keys = append(u.Keys, k)
		})
		u.Groups = d.groupRefs(f.get("groups"), "groups", groups)
		if u.Name != "" && d.unique(seen, f.get("name"), "user", u.Name) {
			c.Users = append(c.Users, u)
		}
	})
}
