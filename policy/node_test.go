package policy

import (
	"errors"
	"strings"
	"testing"
)

// node_id defaults to the host name, lower-cased; a set one is checked;
// a host name that is not a valid node_id is an error, not renamed.
func TestNodeID(t *testing.T) {
	saved := osHostname
	t.Cleanup(func() { osHostname = saved })
	osHostname = func() (string, error) { return "GW-East.example", nil }
	if cfg := mustParse(t, []byte("listen: \":2222\"\n")); cfg.NodeID != "gw-east.example" {
		t.Fatalf("default node_id %q; want the host name, lower-cased", cfg.NodeID)
	}
	if cfg := mustParse(t, []byte("node_id: gw-a\n")); cfg.NodeID != "gw-a" {
		t.Fatalf("node_id %q; want gw-a", cfg.NodeID)
	}
	if cfg := mustParse(t, []byte("node_id: "+strings.Repeat("a", 63)+"\n")); len(cfg.NodeID) != 63 {
		t.Fatalf("63-character node_id refused")
	}
	for _, c := range []struct{ src, want string }{
		{"listen: \":2222\"\nnode_id: GW-A\n", `w.yaml:2: node_id "GW-A": want 1 to 63 of a-z`},
		{"node_id: \"\"\n", `w.yaml:1: node_id "": want`},
		{"node_id: gw a\n", `w.yaml:1: node_id "gw a"`},
		{"node_id: \"gw\\u202ea\"\n", `w.yaml:1: node_id`},
		{"node_id: gw/../a\n", `w.yaml:1: node_id`},
		{"node_id: " + strings.Repeat("a", 64) + "\n", `w.yaml:1: node_id`},
		{"node_id: [a]\n", `w.yaml:1: node_id`},
	} {
		_, err := Parse([]byte(c.src), "/etc/warden/w.yaml")
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: got %v, want %q", c.src, err, c.want)
		}
	}
	osHostname = func() (string, error) { return "box with spaces", nil }
	if _, err := Parse([]byte("listen: \":2222\"\n"), "/etc/warden/w.yaml"); err == nil || !strings.Contains(err.Error(), "node_id is not set and the host name") {
		t.Fatalf("invalid host name: %v", err)
	}
	osHostname = func() (string, error) { return "", errors.New("no name") }
	if _, err := Parse([]byte("listen: \":2222\"\n"), "/etc/warden/w.yaml"); err == nil || !strings.Contains(err.Error(), "host name is unknown") {
		t.Fatalf("unknown host name: %v", err)
	}
}
