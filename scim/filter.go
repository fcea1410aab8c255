package scim

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// maxFilter bounds a filter's length and depth: it is parsed recursively.
const (
	maxFilter      = 4096
	maxFilterDepth = 16
)

// expr is a parsed filter.
type expr interface{}

type logical struct {
	and  bool
	l, r expr
}

type negation struct{ x expr }

// comparison is "attr op value", or "attr pr". attr is lowercase, with the
// core schema's URN prefix removed; for a value path (emails[type eq
// "work"].value) sel holds the bracketed filter and attr the sub-attribute
// path "emails.value".
type comparison struct {
	attr  string
	op    string
	value any // string, bool, float64 or nil
	sel   expr
	multi string // "emails" when sel is set
}

// schema lists the attributes a filter may name for one resource type,
// and which compare case-sensitively (caseExact).
type schema struct {
	attrs     map[string]bool // lowercase path -> caseExact
	multi     map[string]map[string]bool
	urnPrefix string
}

var userSchema = schema{
	attrs: map[string]bool{"id": true, "externalid": true, "username": false, "displayname": false, "active": false,
		"emails.value": false, "emails.type": false, "emails.primary": false, "meta.created": true, "meta.lastmodified": true},
	multi:     map[string]map[string]bool{"emails": {"value": false, "type": false, "primary": false}},
	urnPrefix: "urn:ietf:params:scim:schemas:core:2.0:user:",
}

var groupSchema = schema{
	attrs:     map[string]bool{"id": true, "externalid": true, "displayname": false, "members.value": true, "meta.created": true, "meta.lastmodified": true},
	multi:     map[string]map[string]bool{"members": {"value": true}},
	urnPrefix: "urn:ietf:params:scim:schemas:core:2.0:group:",
}

var compareOps = map[string]bool{"eq": true, "ne": true, "co": true, "sw": true, "ew": true, "gt": true, "ge": true, "lt": true, "le": true}

// parseFilter parses a filter completely or returns an invalidFilter
// error that says what it could not read.
func parseFilter(s string, sc schema) (expr, error) {
	if len(s) > maxFilter {
		return nil, errFilter("filter is too long")
	}
	toks, err := lex(s)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks, sc: sc}
	e, err := p.or(0)
	if err != nil {
		return nil, err
	}
	if p.i != len(p.toks) {
		return nil, errFilter(fmt.Sprintf("unexpected %q in filter", p.toks[p.i].text))
	}
	return e, nil
}

type tok struct {
	text   string
	quoted bool // a JSON string; text is its value
}

func lex(s string) ([]tok, error) {
	var out []tok
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			i++
		case c == '(' || c == ')' || c == '[' || c == ']':
			out = append(out, tok{text: string(c)})
			i++
		case c == '"':
			j := i + 1
			for j < len(s) && s[j] != '"' {
				if s[j] == '\\' {
					j++
				}
				j++
			}
			if j >= len(s) {
				return nil, errFilter("unterminated string in filter")
			}
			var v string
			if err := json.Unmarshal([]byte(s[i:j+1]), &v); err != nil {
				return nil, errFilter("bad string in filter")
			}
			out = append(out, tok{text: v, quoted: true})
			i = j + 1
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t()[]\"", rune(s[j])) {
				j++
			}
			// "].value" continues a value path: keep the dot with the word.
			out = append(out, tok{text: s[i:j]})
			i = j
		}
	}
	if len(out) == 0 {
		return nil, errFilter("filter is empty")
	}
	return out, nil
}

type parser struct {
	toks []tok
	i    int
	sc   schema
}

func (p *parser) peek() (tok, bool) {
	if p.i < len(p.toks) {
		return p.toks[p.i], true
	}
	return tok{}, false
}

func (p *parser) word(w string) bool {
	t, ok := p.peek()
	if ok && !t.quoted && strings.EqualFold(t.text, w) {
		p.i++
		return true
	}
	return false
}

func (p *parser) or(depth int) (expr, error) {
	if depth > maxFilterDepth {
		return nil, errFilter("filter is nested too deeply")
	}
	l, err := p.and(depth)
	if err != nil {
		return nil, err
	}
	for p.word("or") {
		r, err := p.and(depth)
		if err != nil {
			return nil, err
		}
		l = logical{and: false, l: l, r: r}
	}
	return l, nil
}

func (p *parser) and(depth int) (expr, error) {
	l, err := p.unary(depth)
	if err != nil {
		return nil, err
	}
	for p.word("and") {
		r, err := p.unary(depth)
		if err != nil {
			return nil, err
		}
		l = logical{and: true, l: l, r: r}
	}
	return l, nil
}

func (p *parser) unary(depth int) (expr, error) {
	if p.word("not") {
		if !p.word("(") {
			return nil, errFilter(`"not" must be followed by "("`)
		}
		x, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if !p.word(")") {
			return nil, errFilter(`missing ")" in filter`)
		}
		return negation{x}, nil
	}
	if p.word("(") {
		x, err := p.or(depth + 1)
		if err != nil {
			return nil, err
		}
		if !p.word(")") {
			return nil, errFilter(`missing ")" in filter`)
		}
		return x, nil
	}
	return p.comparison(depth)
}

func (p *parser) comparison(depth int) (expr, error) {
	t, ok := p.peek()
	if !ok || t.quoted {
		return nil, errFilter("filter: expected an attribute name")
	}
	p.i++
	attr := strings.ToLower(t.text)
	attr = strings.TrimPrefix(attr, p.sc.urnPrefix)
	c := comparison{attr: attr}
	if sub, isMulti := p.sc.multi[attr]; isMulti && p.word("[") {
		// A value path: emails[type eq "work"] or emails[type eq "work"].value
		inner := &parser{toks: p.toks, i: p.i, sc: subSchema(sub)}
		sel, err := inner.or(depth + 1)
		if err != nil {
			return nil, err
		}
		p.i = inner.i
		if !p.word("]") {
			return nil, errFilter(`missing "]" in filter`)
		}
		c.sel, c.multi = sel, attr
		c.attr = attr + ".value"
		if nt, ok := p.peek(); ok && !nt.quoted && strings.HasPrefix(nt.text, ".") {
			p.i++
			c.attr = attr + strings.ToLower(nt.text)
		} else if !ok || nt.quoted || !compareOps[strings.ToLower(nt.text)] && !strings.EqualFold(nt.text, "pr") {
			// emails[type eq "work"] alone: true when some element matches.
			c.op = "pr"
			return c, nil
		}
	}
	if _, known := p.sc.attrs[c.attr]; !known {
		return nil, errFilter(fmt.Sprintf("unknown attribute %q in filter", t.text))
	}
	opTok, ok := p.peek()
	if !ok || opTok.quoted {
		return nil, errFilter(fmt.Sprintf("filter: expected an operator after %q", t.text))
	}
	p.i++
	c.op = strings.ToLower(opTok.text)
	if c.op == "pr" {
		return c, nil
	}
	if !compareOps[c.op] {
		return nil, errFilter(fmt.Sprintf("unknown operator %q in filter", opTok.text))
	}
	vt, ok := p.peek()
	if !ok {
		return nil, errFilter(fmt.Sprintf("filter: expected a value after %q", opTok.text))
	}
	p.i++
	switch {
	case vt.quoted:
		c.value = vt.text
	case vt.text == "true" || vt.text == "false":
		c.value = vt.text == "true"
	case vt.text == "null":
		c.value = nil
	default:
		f, err := strconv.ParseFloat(vt.text, 64)
		if err != nil {
			return nil, errFilter(fmt.Sprintf("filter: %q is not a value (strings need double quotes)", vt.text))
		}
		c.value = f
	}
	return c, nil
}

func subSchema(sub map[string]bool) schema {
	return schema{attrs: sub, multi: map[string]map[string]bool{}}
}

// attrs is what a filter is evaluated against: the values of each
// attribute path, and the elements of each multi-valued attribute.
type attrs interface {
	get(path string) []any
	elems(multi string) []attrs
}

// mapAttrs is attrs over a plain map, for elements of a multi-valued
// attribute (one email: value, type, primary).
type mapAttrs map[string]any

func (m mapAttrs) get(path string) []any {
	if v, ok := m[path]; ok {
		return []any{v}
	}
	return nil
}
func (m mapAttrs) elems(string) []attrs { return nil }

// match evaluates e against a; caseExact says how attributes compare.
func match(e expr, a attrs, sc schema) bool {
	switch e := e.(type) {
	case logical:
		if e.and {
			return match(e.l, a, sc) && match(e.r, a, sc)
		}
		return match(e.l, a, sc) || match(e.r, a, sc)
	case negation:
		return !match(e.x, a, sc)
	case comparison:
		if e.sel != nil {
			sub := strings.TrimPrefix(e.attr, e.multi+".")
			ssc := subSchema(sc.multi[e.multi])
			for _, el := range a.elems(e.multi) {
				if !match(e.sel, el, ssc) {
					continue
				}
				if e.op == "pr" && e.attr == e.multi+".value" && e.value == nil {
					return true
				}
				if compare(el.get(sub), e.op, e.value, ssc.attrs[sub]) {
					return true
				}
			}
			return false
		}
		return compare(a.get(e.attr), e.op, e.value, sc.attrs[e.attr])
	}
	return false
}

func compare(vals []any, op string, want any, caseExact bool) bool {
	if op == "pr" {
		for _, v := range vals {
			if s, ok := v.(string); !ok || s != "" {
				return v != nil
			}
		}
		return false
	}
	if op == "ne" {
		return !compare(vals, "eq", want, caseExact)
	}
	for _, v := range vals {
		switch v := v.(type) {
		case bool:
			if b, ok := want.(bool); ok && op == "eq" && b == v {
				return true
			}
		case string:
			w, ok := want.(string)
			if !ok {
				continue
			}
			if !caseExact {
				v, w = foldCase(v), foldCase(w)
			}
			if cmpString(v, op, w) {
				return true
			}
		}
	}
	return false
}

func foldCase(s string) string { return strings.Map(unicode.ToLower, s) }

func cmpString(v, op, w string) bool {
	switch op {
	case "eq":
		return v == w
	case "co":
		return strings.Contains(v, w)
	case "sw":
		return strings.HasPrefix(v, w)
	case "ew":
		return strings.HasSuffix(v, w)
	case "gt":
		return v > w
	case "ge":
		return v >= w
	case "lt":
		return v < w
	case "le":
		return v <= w
	}
	return false
}
