package policy

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"go.yaml.in/yaml/v3"
)

// decoder walks a yaml.Node tree and collects every problem it finds, so one
// run of `warden policy check` reports them all. Its methods never stop at
// the first error: a bad value is reported and replaced by its zero value.
type decoder struct {
	file       string
	dir        string // directory of the config file, absolute
	checkFiles bool   // also open the files the policy names (Load only)
	errs       ErrorList
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.hintf(n, "", format, args...)
}

func (d *decoder) hintf(n *yaml.Node, hint, format string, args ...any) {
	line := 0
	if n != nil {
		line = n.Line
	}
	d.errs = append(d.errs, Error{File: d.file, Line: line, Msg: fmt.Sprintf(format, args...), Hint: hint})
}

// fields is one decoded YAML mapping: the key and value node of every key
// the caller knows. A missing key has nil nodes.
type fields struct {
	node *yaml.Node
	keys map[string]*yaml.Node
	vals map[string]*yaml.Node
}

// get returns the value of key, or nil when the key is absent.
func (f fields) get(key string) *yaml.Node { return f.vals[key] }

// at returns the node to blame for key: the key itself when present, else
// the whole mapping (for "missing" errors).
func (f fields) at(key string) *yaml.Node {
	if k := f.keys[key]; k != nil {
		return k
	}
	return f.node
}

// mapping decodes n as a mapping with the given keys, reporting unknown and
// repeated keys. A null node is an empty mapping. ok is false when n is not
// a mapping at all.
func (d *decoder) mapping(n *yaml.Node, what string, known []string) (f fields, ok bool) {
	f = fields{node: n, keys: map[string]*yaml.Node{}, vals: map[string]*yaml.Node{}}
	if isNull(n) {
		return f, true
	}
	if !d.kind(n, yaml.MappingNode, what) {
		return f, false
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "%s: keys must be plain words", what)
			continue
		}
		if prev, dup := f.keys[k.Value]; dup {
			d.hintf(k, fmt.Sprintf("first set at line %d", prev.Line), "duplicate key %q in %s", k.Value, what)
			continue
		}
		if !slices.Contains(known, k.Value) {
			d.hintf(k, keyHint(k.Value, known), "unknown key %q in %s", k.Value, what)
			continue
		}
		f.keys[k.Value], f.vals[k.Value] = k, v
	}
	return f, true
}

func keyHint(key string, known []string) string {
	if s := suggest(key, known); s != "" {
		return fmt.Sprintf("did you mean %q?", s)
	}
	sorted := append([]string(nil), known...)
	sort.Strings(sorted)
	return "expected one of: " + strings.Join(sorted, ", ")
}

// kind reports whether n has the wanted kind, and reports an error if not.
// Aliases are refused: following them would let a small file expand into a
// huge policy, and a security policy should say each thing where it applies.
func (d *decoder) kind(n *yaml.Node, want yaml.Kind, what string) bool {
	switch {
	case n.Kind == want:
		return true
	case n.Kind == yaml.AliasNode:
		d.hintf(n, "write the value out in full", "YAML aliases are not supported (in %s)", what)
	default:
		d.errorf(n, "%s must be %s, not %s", what, kindName(want), kindName(n.Kind))
	}
	return false
}

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.ScalarNode:
		return "a single value"
	case yaml.AliasNode:
		return "an alias"
	}
	return "empty"
}

// isNull reports whether n is absent or an explicit null ("key:" or "~");
// both mean "not set".
func isNull(n *yaml.Node) bool {
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// blank reports whether n is missing, null or an empty string; for a
// required value all three mean "not given".
func blank(n *yaml.Node) bool {
	return isNull(n) || n.Kind == yaml.ScalarNode && n.Value == ""
}

// str returns the text of a scalar, or "" when n is null or not a scalar.
// Any scalar is accepted (port 22, host 10), since the contract's values are
// all text to Warden.
func (d *decoder) str(n *yaml.Node, what string) string {
	if isNull(n) || !d.kind(n, yaml.ScalarNode, what) {
		return ""
	}
	return n.Value
}

// boolean decodes a true/false value. set is false when n is null or bad, so
// callers apply their default.
func (d *decoder) boolean(n *yaml.Node, what string) (v, set bool) {
	if isNull(n) || !d.kind(n, yaml.ScalarNode, what) {
		return false, false
	}
	// yes/no/on/off are strings in YAML 1.2; refusing them beats guessing.
	if n.ShortTag() != "!!bool" || n.Decode(&v) != nil {
		d.hintf(n, "write true or false", "%s must be true or false, not %q", what, n.Value)
		return false, false
	}
	return v, true
}

// integer decodes a whole number.
func (d *decoder) integer(n *yaml.Node, what string) (v int, set bool) {
	if isNull(n) || !d.kind(n, yaml.ScalarNode, what) {
		return 0, false
	}
	if n.ShortTag() != "!!int" || n.Decode(&v) != nil {
		d.errorf(n, "%s must be a whole number, not %q", what, n.Value)
		return 0, false
	}
	return v, true
}

// duration decodes a positive Go-style duration.
func (d *decoder) duration(n *yaml.Node, what string) (v Duration, set bool) {
	if isNull(n) || !d.kind(n, yaml.ScalarNode, what) {
		return 0, false
	}
	if err := v.UnmarshalText([]byte(n.Value)); err != nil {
		d.hintf(n, "use a Go duration such as 90m or 2h", "bad duration %q for %s", n.Value, what)
		return 0, false
	}
	if v <= 0 {
		d.errorf(n, "%s must be positive, not %s", what, n.Value)
		return 0, false
	}
	return v, true
}

// seq calls each for every item of a list. A null node is an empty list.
func (d *decoder) seq(n *yaml.Node, what string, each func(*yaml.Node)) {
	if isNull(n) || !d.kind(n, yaml.SequenceNode, what) {
		return
	}
	for _, item := range n.Content {
		each(item)
	}
}

// name decodes one name of the given kind, returning "" when it is missing
// or invalid (so that later checks do not report it a second time).
func (d *decoder) name(n *yaml.Node, k nameKind) string {
	s := d.str(n, k.noun+" name")
	if s == "" {
		return ""
	}
	if !k.valid(s) {
		d.hintf(n, "names "+k.hint, "invalid %s name %q", k.noun, s)
		return ""
	}
	return s
}

// names decodes a list of names, reporting repeats. Invalid names are left out.
func (d *decoder) names(n *yaml.Node, what string, k nameKind) (out []string, nodes []*yaml.Node) {
	seen := map[string]int{}
	d.seq(n, what, func(item *yaml.Node) {
		s := d.name(item, k)
		if s == "" {
			if blank(item) {
				d.errorf(item, "empty %s name in %s", k.noun, what)
			}
			return
		}
		if line, dup := seen[s]; dup {
			d.hintf(item, fmt.Sprintf("first listed at line %d", line), "%s %q listed twice in %s", k.noun, s, what)
			return
		}
		seen[s] = item.Line
		out = append(out, s)
		nodes = append(nodes, item)
	})
	return out, nodes
}

// unique records the definition of name at n, reporting a duplicate.
func (d *decoder) unique(seen map[string]int, n *yaml.Node, noun, name string) bool {
	if line, dup := seen[name]; dup {
		d.hintf(n, fmt.Sprintf("first defined at line %d", line), "duplicate %s %q", noun, name)
		return false
	}
	seen[name] = n.Line
	return true
}
