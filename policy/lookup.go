package policy

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// index builds the lookup maps once, after a successful parse.
func (c *Config) index() {
	c.tenants = make(map[string]*Tenant, len(c.Tenants))
	c.hostsByName = map[string][]*Host{}
	for _, t := range c.Tenants {
		c.tenants[t.Name] = t
		for _, h := range t.Hosts {
			c.hostsByName[h.Name] = append(c.hostsByName[h.Name], h)
		}
	}
	c.users = make(map[string]*User, len(c.Users))
	c.usersByKey = map[string]*User{}
	for _, u := range c.Users {
		c.users[u.Name] = u
		for _, k := range u.Keys {
			c.usersByKey[ssh.FingerprintSHA256(k)] = u
		}
	}
	c.roles = make(map[string]*Role, len(c.Roles))
	for _, r := range c.Roles {
		c.roles[r.Name] = r
	}
}

// UserByKey returns the user who owns public key k, or nil when the key is
// unknown. Keys are matched by SHA-256 fingerprint; a certificate is not
// matched by its signed key (certificates are checked against a user CA).
func (c *Config) UserByKey(k ssh.PublicKey) *User {
	if k == nil {
		return nil
	}
	return c.usersByKey[ssh.FingerprintSHA256(k)]
}

// User returns the user of that name, or nil.
func (c *Config) User(name string) *User { return c.users[name] }

// Role returns the role of that name, or nil.
func (c *Config) Role(name string) *Role { return c.roles[name] }

// Tenant returns the tenant of that name, or nil.
func (c *Config) Tenant(name string) *Tenant { return c.tenants[name] }

// ResolveHost finds the host a client addressed, as "HOST" or "TENANT/HOST".
// A bare name that exists in several tenants is an *AmbiguousHostError
// listing the qualified choices; an unknown host wraps ErrUnknownHost. Only
// names from the policy ever come back, so the spec is never used in a path.
func (c *Config) ResolveHost(spec string) (*Host, error) {
	if tenant, name, qualified := strings.Cut(spec, "/"); qualified {
		if t := c.tenants[tenant]; t != nil {
			if h := t.host(name); h != nil {
				return h, nil
			}
		}
		return nil, fmt.Errorf("%w %q", ErrUnknownHost, spec)
	}
	hosts := c.hostsByName[spec]
	switch len(hosts) {
	case 0:
		return nil, fmt.Errorf("%w %q", ErrUnknownHost, spec)
	case 1:
		return hosts[0], nil
	}
	choices := make([]string, len(hosts))
	for i, h := range hosts {
		choices[i] = h.QualifiedName()
	}
	slices.Sort(choices)
	return nil, &AmbiguousHostError{Name: spec, Choices: choices}
}
