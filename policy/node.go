package policy

import (
	"os"
	"regexp"
	"strings"
)

// nodeIDPattern is what a node_id may be (CONTRACT section 8): it is
// stored on every session and shown in the console, so it is kept to
// plain lowercase letters, digits, '.', '_' and '-', 1 to 63 of them.
var nodeIDPattern = regexp.MustCompile(`^[a-z0-9._-]{1,63}$`)

// hostname gives node_id's default; a variable so tests can set it.
var osHostname = os.Hostname

// nodeID decodes node_id, the gateway's name among the nodes sharing a
// store; left out, it is the host name, lower-cased. A host name that is
// not a valid node_id is an error (set node_id), not a silent rename:
// two nodes must not end up with one ID.
func (d *decoder) nodeID(f fields, c *Config) {
	n := f.get("node_id")
	if isNull(n) {
		h, err := osHostname()
		h = strings.ToLower(h)
		switch {
		case err != nil:
			d.hintf(f.node, "set node_id: gw-a (unique per node)", "node_id is not set and the host name is unknown: %v", err)
		case !nodeIDPattern.MatchString(h):
			d.hintf(f.node, "set node_id: gw-a (unique per node)", "node_id is not set and the host name %q is not a valid node_id (a-z, 0-9, '.', '_', '-'; 1 to 63)", h)
		default:
			c.NodeID = h
		}
		return
	}
	id := d.str(n, "node_id")
	if !nodeIDPattern.MatchString(id) {
		d.hintf(n, "e.g. node_id: gw-a", "node_id %q: want 1 to 63 of a-z, 0-9, '.', '_', '-'", id)
		return
	}
	c.NodeID = id
}
