package policy

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// Directory is one identity provider that provisions users over SCIM.
type Directory struct {
	// Name is the source of its users ("scim:NAME") and the actor of the
	// audit events its requests cause.
	Name string
	// TokenFile holds the bearer token the IdP sends; the policy itself
	// never holds the secret.
	TokenFile string
	// Tenant, when set, limits the directory's users to that tenant's
	// roles: a client's own IdP can then provision only its own staff.
	Tenant string
}

// Directory returns the directory of that name, or nil.
func (c *Config) Directory(name string) *Directory {
	for _, d := range c.Identity.Directories {
		if d.Name == name {
			return d
		}
	}
	return nil
}

// directories decodes identity.directories. n is the identity mapping's
// directories node; tenants are the declared tenants.
func (d *decoder) directories(n *yaml.Node, c *Config, tenants map[string]*Tenant) {
	seen := map[string]int{}
	tokens := map[string]int{}
	d.seq(n, "identity.directories", func(item *yaml.Node) {
		f, ok := d.mapping(item, "directory", []string{"name", "token_file", "tenant"})
		if !ok {
			return
		}
		dir := &Directory{Name: d.name(f.get("name"), directoryName)}
		if dir.Name == "" && blank(f.get("name")) {
			d.errorf(f.at("name"), "directory has no name")
		} else if dir.Name == "oidc" {
			// The users single sign-on creates live in a pseudo-directory
			// of this name (identity.OIDCDirectory); a SCIM directory of
			// the same name could rewrite them.
			d.hintf(f.get("name"), "choose another name", "directory name %q is reserved for users created by sign-in", dir.Name)
			dir.Name = ""
		}
		dir.TokenFile = d.path(f.get("token_file"), "token_file")
		if blank(f.get("token_file")) {
			d.hintf(f.at("token_file"), "the bearer token is read from a file so the policy holds no secret", "directory needs token_file")
		} else if prev, dup := tokens[dir.TokenFile]; dup && dir.TokenFile != "" {
			// One token per directory: the token is what tells directories apart.
			d.hintf(f.get("token_file"), "give every directory its own token", "token_file already used by the directory at line %d", prev)
		} else if dir.TokenFile != "" {
			tokens[dir.TokenFile] = f.get("token_file").Line
		}
		if t := d.str(f.get("tenant"), "tenant"); t != "" {
			if tenants[t] == nil {
				d.hintf(f.get("tenant"), refHint(t, tenants, "tenants"), "undefined tenant %q in directory", t)
			} else {
				dir.Tenant = t
			}
		}
		if dir.Name != "" && d.unique(seen, f.get("name"), "directory", dir.Name) {
			c.Identity.Directories = append(c.Identity.Directories, dir)
		}
	})
}

// identityDirectories decodes identity.directories from the identity
// section n, whose keys identity (identity.go) has already checked. A
// directory is reached over SCIM on the HTTP listener, so it needs
// http_listen.
func (d *decoder) identityDirectories(n *yaml.Node, c *Config, tenants map[string]*Tenant) {
	if n == nil || n.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if k := n.Content[i]; k.Kind == yaml.ScalarNode && k.Value == "directories" {
			d.directories(n.Content[i+1], c, tenants)
			if len(c.Identity.Directories) > 0 && c.HTTPListen == "" {
				d.hintf(k, "the IdP sends SCIM requests to http_listen's /scim/v2", "identity.directories needs http_listen")
			}
			return
		}
	}
}

// directoryName is the alphabet of directory names: they appear in
// "scim:NAME" sources and actors.
var directoryName = nameKind{"directory", personal, personalHint}

// SourceYAML is the Source of users from the users section.
const SourceYAML = "yaml"

// SourceOf returns a user's source: "yaml", "scim:DIRECTORY", or "oidc"
// (created by sign-in, identity.oidc.create_users).
func (u *User) SourceOf() string {
	if u == nil || u.Source == "" {
		return SourceYAML
	}
	return u.Source
}

// MayHold reports whether u may hold roles of r's tenant: always, unless
// u came from a directory limited to another tenant.
func (u *User) MayHold(r *Role) bool {
	return u != nil && r != nil && (u.Tenant == "" || u.Tenant == r.Tenant)
}

// InAnyFor reports whether u belongs to one of groups, which r names, and
// may hold r at all (MayHold). Every role decision uses it, so a user of
// a tenant-limited directory never reaches another tenant's roles, whatever
// groups the directory gives them.
func (u *User) InAnyFor(r *Role, groups []string) bool {
	return u.MayHold(r) && u.InAny(groups)
}

// foldName is the form in which user names are compared for uniqueness
// between the policy and directories: case-insensitively, as IdPs do.
func foldName(s string) string { return strings.ToLower(s) }
