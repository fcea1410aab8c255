package policy

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh/knownhosts"
)

var (
	tenantKeys = []string{"name", "hosts"}
	hostKeys   = []string{"name", "address", "host_key", "known_hosts", "host_ca", "labels"}
)

// verifyHint is shown when a host has no way to verify its key.
const verifyHint = `set host_key: "ssh-ed25519 AAAA...", known_hosts: FILE or host_ca: "ssh-ed25519 AAAA..."`

// tenants decodes the tenants section and returns the tenants by name.
func (d *decoder) tenants(n *yaml.Node, c *Config) map[string]*Tenant {
	byName := map[string]*Tenant{}
	seen := map[string]int{}
	d.seq(n, "tenants", func(item *yaml.Node) {
		f, ok := d.mapping(item, "tenant", tenantKeys)
		if !ok {
			return
		}
		t := &Tenant{Name: d.name(f.get("name"), tenantName)}
		if t.Name == "" {
			if blank(f.get("name")) {
				d.errorf(f.at("name"), "tenant has no name")
			}
		} else if !d.unique(seen, f.get("name"), "tenant", t.Name) {
			t.Name = ""
		}
		seenHosts := map[string]int{}
		d.seq(f.get("hosts"), "hosts", func(hn *yaml.Node) {
			if h := d.host(hn, t.Name, seenHosts); h != nil {
				t.Hosts = append(t.Hosts, h)
			}
		})
		if t.Name != "" {
			byName[t.Name] = t
			c.Tenants = append(c.Tenants, t)
		}
	})
	return byName
}

// host decodes one managed host of tenant. It returns nil when the host has
// no usable name; seen holds the names already defined in the tenant.
func (d *decoder) host(n *yaml.Node, tenant string, seen map[string]int) *Host {
	f, ok := d.mapping(n, "host", hostKeys)
	if !ok {
		return nil
	}
	h := &Host{Tenant: tenant, Name: d.name(f.get("name"), hostName)}
	if h.Name == "" && blank(f.get("name")) {
		d.errorf(f.at("name"), "host has no name")
	}
	h.Address = d.hostAddr(f.get("address"))
	if blank(f.get("address")) {
		d.hintf(f.at("address"), `e.g. address: "10.0.0.5:22"`, "host %s has no address", display(h.Name))
	}

	// Count the ways given, valid or not, so a bad host_key is not also
	// reported as "no way to verify".
	ways := 0
	if v := f.get("host_key"); !isNull(v) {
		ways++
		h.HostKey = d.publicKey(v, "host_key")
	}
	if v := f.get("known_hosts"); !isNull(v) {
		ways++
		h.KnownHosts = d.path(v, "known_hosts")
		if h.KnownHosts != "" && d.checkFiles {
			if _, err := knownhosts.New(h.KnownHosts); err != nil {
				d.errorf(v, "cannot use known_hosts file: %v", err)
			}
		}
	}
	if v := f.get("host_ca"); !isNull(v) {
		ways++
		h.HostCA = d.publicKey(v, "host_ca")
	}
	switch {
	case ways == 0:
		d.hintf(f.node, verifyHint, "host %s has no way to verify its key", display(h.Name))
	case ways > 1:
		// One way only: accepting any of several would make the host as
		// trusted as the weakest of them, and hide which one is in force.
		d.hintf(f.node, "keep one of host_key, known_hosts and host_ca", "host %s has more than one way to verify its key", display(h.Name))
	}
	h.Labels = d.labels(f.get("labels"), "labels")
	if h.Name == "" || !d.unique(seen, f.get("name"), "host", h.Name) {
		return nil
	}
	return h
}

// labels decodes a label map (labels: {env: prod}).
func (d *decoder) labels(n *yaml.Node, what string) map[string]string {
	if isNull(n) || !d.kind(n, yaml.MappingNode, what) {
		return nil
	}
	out := map[string]string{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if !d.kind(k, yaml.ScalarNode, "label key") {
			continue
		}
		if !validLabelKey(k.Value) {
			d.hintf(k, "start with a letter, then letters, digits, '.', '_' or '-'", "invalid label key %q", k.Value)
			continue
		}
		if _, dup := out[k.Value]; dup {
			d.errorf(k, "duplicate label %q", k.Value)
			continue
		}
		val := d.str(v, "label "+k.Value)
		if val == "" {
			if blank(v) {
				d.errorf(v, "label %q has no value", k.Value)
			}
			continue
		}
		if strings.ContainsFunc(val, isControl) {
			d.errorf(v, "label %q contains control characters", k.Value)
			continue
		}
		out[k.Value] = val
	}
	return out
}

// display names something in a message even when its name was missing.
func display(name string) string {
	if name == "" {
		return "(unnamed)"
	}
	return fmt.Sprintf("%q", name)
}
