package scim

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/warden-gw/warden/identity"
)

// maxOps bounds the operations of one PATCH.
const maxOps = 1000

// patchOp is one PATCH operation. op is lower-cased: Entra ID without the
// aadOptscim062020 flag sends "Replace", "Add" and "Remove".
type patchOp struct {
	op    string
	path  string // as sent
	value any
}

func parsePatch(m map[string]any) ([]patchOp, error) {
	if err := checkSchemas(m, schemaPatch); err != nil {
		return nil, err
	}
	var raw any
	for k, v := range m {
		switch strings.ToLower(k) {
		case "operations":
			raw = v
		case "schemas":
		default:
			return nil, errSyntax("unknown member " + strconvQuote(k) + " in PATCH body")
		}
	}
	list, ok := raw.([]any)
	if !ok || len(list) == 0 {
		return nil, errSyntax("PATCH needs a non-empty Operations array")
	}
	if len(list) > maxOps {
		return nil, errValue(fmt.Sprintf("more than %d operations", maxOps))
	}
	ops := make([]patchOp, 0, len(list))
	for _, x := range list {
		om, ok := x.(map[string]any)
		if !ok {
			return nil, errSyntax("each operation must be an object")
		}
		var p patchOp
		for k, v := range om {
			switch strings.ToLower(k) {
			case "op":
				s, _ := v.(string)
				p.op = strings.ToLower(s)
			case "path":
				s, ok := v.(string)
				if !ok {
					return nil, errSyntax("path must be a string")
				}
				p.path = strings.TrimSpace(s)
			case "value":
				p.value = v
			default:
				return nil, errSyntax("unknown member " + strconvQuote(k) + " in operation")
			}
		}
		switch p.op {
		case "add", "replace", "remove":
		default:
			return nil, errSyntax("op must be add, remove or replace")
		}
		if p.op == "remove" && p.path == "" {
			return nil, &Error{Status: 400, Type: "noTarget", Detail: "remove needs a path"}
		}
		ops = append(ops, p)
	}
	return ops, nil
}

// valuePath splits "emails[type eq \"work\"].value" into attribute, filter
// and sub-attribute.
var valuePathRE = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9]*)\[(.+)\](?:\.([A-Za-z][A-Za-z0-9]*))?$`)

func splitValuePath(path string, sc schema) (attr string, sel expr, sub string, ok bool, err error) {
	m := valuePathRE.FindStringSubmatch(path)
	if m == nil {
		return "", nil, "", false, nil
	}
	attr = strings.ToLower(m[1])
	subs, multi := sc.multi[attr]
	if !multi {
		return "", nil, "", true, errPath("unknown attribute " + strconvQuote(m[1]))
	}
	sel, err = parseFilter(m[2], subSchema(subs))
	if err != nil {
		return "", nil, "", true, errPath("bad filter in path: " + err.(*Error).Detail)
	}
	sub = strings.ToLower(m[3])
	if sub != "" && !contains(keysOf(subs), sub) {
		return "", nil, "", true, errPath("unknown attribute " + strconvQuote(m[3]))
	}
	return attr, sel, sub, true, nil
}

func keysOf(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func (h *Handler) patchUser(q *request) error {
	m, err := q.object()
	if err != nil {
		return err
	}
	ops, err := parsePatch(m)
	if err != nil {
		return err
	}
	id := q.r.PathValue("id")
	err = h.dir.Update(q.r.Context(), q.dir, func(tx *identity.Tx) error {
		u, err := tx.User(id)
		if err != nil {
			return err
		}
		for _, op := range ops {
			if err := applyUserOp(&u, op); err != nil {
				return err
			}
		}
		_, err = tx.SaveUser(u)
		return err
	})
	if err != nil {
		return err
	}
	return h.writeUser(q, id)
}

func applyUserOp(u *identity.User, op patchOp) error {
	if op.path == "" {
		// Entra with aadOptscim062020: several attributes in one value.
		obj, ok := op.value.(map[string]any)
		if !ok {
			return errValue("an operation without path needs an object value")
		}
		// Each key is itself a path: Entra sends
		// {"emails[type eq \"work\"].value": ..., "name.givenName": ...}.
		for k, v := range obj {
			if k == "" {
				return errPath("empty attribute name in value")
			}
			if err := applyUserOp(u, patchOp{op: op.op, path: k, value: v}); err != nil {
				return err
			}
		}
		return nil
	}
	attr, sel, sub, isValuePath, err := splitValuePath(op.path, userSchema)
	if err != nil {
		return err
	}
	if isValuePath {
		if attr != "emails" {
			return errPath("unsupported path " + strconvQuote(op.path))
		}
		return patchEmails(u, op, sel, sub)
	}
	path := strings.ToLower(strings.TrimPrefix(op.path, schemaUser+":"))
	if op.op == "remove" {
		switch path {
		case "externalid":
			u.ExternalID = ""
		case "displayname":
			u.DisplayName = ""
		case "emails":
			u.Emails = nil
		case strings.ToLower(schemaWarden) + ":sshpublickeys":
			u.Keys = nil
		case "active", "username":
			return errValue(op.path + " cannot be removed")
		default:
			if err := setUserAttr(u, path, nil, nil); err != nil {
				return errPath("unknown attribute " + strconvQuote(op.path))
			}
		}
		return nil
	}
	if err := setUserAttr(u, path, op.value, nil); err != nil {
		if se, ok := err.(*Error); ok && strings.HasPrefix(se.Detail, "unknown attribute") {
			return errPath(se.Detail)
		}
		return err
	}
	return nil
}

// patchEmails applies an operation on emails[FILTER] or
// emails[FILTER].SUB: Entra sets the work address with
// {"op":"Add","path":"emails[type eq \"work\"].value","value":"..."}.
func patchEmails(u *identity.User, op patchOp, sel expr, sub string) error {
	sc := subSchema(userSchema.multi["emails"])
	var kept []identity.Email
	found := false
	for _, e := range u.Emails {
		if !match(sel, emailAttrs(e), sc) {
			kept = append(kept, e)
			continue
		}
		found = true
		if op.op == "remove" {
			continue
		}
		if err := setEmailField(&e, sub, op.value); err != nil {
			return err
		}
		kept = append(kept, e)
	}
	if !found && op.op != "remove" {
		// Create the element the filter describes: type eq "work".
		var e identity.Email
		if c, ok := sel.(comparison); ok && c.op == "eq" && c.attr == "type" {
			e.Type, _ = c.value.(string)
		} else {
			return &Error{Status: 400, Type: "noTarget", Detail: "no email matches " + strconvQuote(op.path)}
		}
		if err := setEmailField(&e, sub, op.value); err != nil {
			return err
		}
		kept = append(kept, e)
	}
	u.Emails = kept
	return nil
}

func setEmailField(e *identity.Email, sub string, v any) error {
	var err error
	switch sub {
	case "value":
		e.Value, err = stringValue("emails.value", v)
	case "type":
		e.Type, err = stringValue("emails.type", v)
	case "primary":
		e.Primary, err = boolValue("emails.primary", v)
	case "":
		m, ok := v.(map[string]any)
		if !ok {
			return errValue("emails value must be an object")
		}
		list, err := emailsValue([]any{m})
		if err != nil {
			return err
		}
		*e = list[0]
	}
	return err
}

func (h *Handler) patchGroup(q *request) error {
	m, err := q.object()
	if err != nil {
		return err
	}
	ops, err := parsePatch(m)
	if err != nil {
		return err
	}
	id := q.r.PathValue("id")
	var out identity.Group
	err = h.dir.Update(q.r.Context(), q.dir, func(tx *identity.Tx) error {
		g, err := tx.Group(id)
		if err != nil {
			return err
		}
		// The operations apply in order to one copy of the group, which
		// is saved once: Okta's group push mixes add, remove and a full
		// replace of members in one request.
		for _, op := range ops {
			if err := applyGroupOp(&g, op); err != nil {
				return err
			}
		}
		out, err = tx.SaveGroup(g)
		return err
	})
	if err != nil {
		return err
	}
	if q.r.URL.Query().Get("excludedAttributes") != "" || q.r.URL.Query().Get("attributes") != "" {
		return q.write(http.StatusOK, h.groupJSON(q, out, withMembers(q)))
	}
	// Entra and Okta accept 204 for a PATCH; 10,000 members need not come back.
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

func applyGroupOp(g *identity.Group, op patchOp) error {
	if op.path == "" {
		obj, ok := op.value.(map[string]any)
		if !ok {
			return errValue("an operation without path needs an object value")
		}
		for k, v := range obj {
			if err := applyGroupOp(g, patchOp{op: op.op, path: k, value: v}); err != nil {
				return err
			}
		}
		return nil
	}
	_, sel, _, isValuePath, err := splitValuePath(op.path, groupSchema)
	if err != nil {
		return err
	}
	if isValuePath {
		if op.op != "remove" {
			return errPath("only remove may name members[...]")
		}
		sc := subSchema(groupSchema.multi["members"])
		g.Members = slices.DeleteFunc(g.Members, func(id string) bool { return match(sel, mapAttrs{"value": id}, sc) })
		return nil
	}
	switch strings.ToLower(strings.TrimPrefix(op.path, schemaGroup+":")) {
	case "members":
		ids, err := memberIDs(op.value)
		if err != nil {
			return err
		}
		switch op.op {
		case "add":
			g.Members = append(g.Members, ids...)
		case "replace":
			g.Members = ids
		case "remove":
			if op.value == nil {
				g.Members = nil
				return nil
			}
			// Entra without the flag: {"op":"Remove","path":"members","value":[{"value":ID}]}
			g.Members = slices.DeleteFunc(g.Members, func(id string) bool { return slices.Contains(ids, id) })
		}
	case "displayname":
		if op.op == "remove" {
			return errValue("displayName cannot be removed")
		}
		s, err := stringValue("displayName", op.value)
		if err != nil {
			return err
		}
		g.DisplayName = s
	case "externalid":
		s, err := stringValue("externalId", op.value)
		if err != nil {
			return err
		}
		g.ExternalID = s
		if op.op == "remove" {
			g.ExternalID = ""
		}
	case "id", "meta", "schemas":
	default:
		return errPath("unknown attribute " + strconvQuote(op.path))
	}
	return nil
}
