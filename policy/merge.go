package policy

import (
	"slices"

	"golang.org/x/crypto/ssh"
)

// WithUsers returns a copy of c whose users are c's followed by extra:
// the directory users that package identity merges with the YAML policy.
// c is not changed. An extra user whose name equals a user already present
// (case-insensitively) is left out, and so is any key of theirs that
// already names someone: identity is the key, so a directory can never
// take over a YAML user's name or key. The left-out names come back in
// skipped.
//
// bound adds keys to users by name, YAML or extra (keys bound by OIDC
// sign-in); a name that is not in the result gets nothing, and a key that
// already names someone is left out.
func (c *Config) WithUsers(extra []*User, bound map[string][]ssh.PublicKey) (merged *Config, skipped []string) {
	m := *c
	m.Users = slices.Clip(slices.Clone(c.Users))
	names := make(map[string]bool, len(c.Users)+len(extra))
	keys := map[string]bool{}
	for _, u := range c.Users {
		names[foldName(u.Name)] = true
		for _, k := range u.Keys {
			keys[ssh.FingerprintSHA256(k)] = true
		}
	}
	for _, u := range extra {
		if u == nil || u.Name == "" || names[foldName(u.Name)] {
			if u != nil {
				skipped = append(skipped, u.Name)
			}
			continue
		}
		names[foldName(u.Name)] = true
		cp := *u
		cp.Keys = nil
		for _, k := range u.Keys {
			fp := ssh.FingerprintSHA256(k)
			if keys[fp] {
				continue
			}
			keys[fp] = true
			cp.Keys = append(cp.Keys, k)
		}
		m.Users = append(m.Users, &cp)
	}
	if len(bound) > 0 {
		for i, u := range m.Users {
			ks := bound[u.Name]
			if len(ks) == 0 {
				continue
			}
			cp := *u
			cp.Keys = slices.Clone(u.Keys)
			for _, k := range ks {
				if fp := ssh.FingerprintSHA256(k); !keys[fp] {
					keys[fp] = true
					cp.Keys = append(cp.Keys, k)
				}
			}
			m.Users[i] = &cp
		}
	}
	m.index()
	return &m, skipped
}

// HasUserFold reports whether a user of the policy is named name,
// compared case-insensitively.
func (c *Config) HasUserFold(name string) bool {
	f := foldName(name)
	for _, u := range c.Users {
		if foldName(u.Name) == f {
			return true
		}
	}
	return false
}
