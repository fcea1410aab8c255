package scim

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/identity"
)

// Schema URNs.
const (
	schemaUser       = "urn:ietf:params:scim:schemas:core:2.0:User"
	schemaGroup      = "urn:ietf:params:scim:schemas:core:2.0:Group"
	schemaWarden     = "urn:ietf:params:scim:schemas:extension:warden:2.0:User"
	schemaEnterprise = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
	schemaPatch      = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
	schemaList       = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
)

// ignoredUserAttrs are core and enterprise attributes that IdPs send by
// default and Warden does not keep: accepted and dropped, so that the
// default Entra and Okta mappings work. Anything else unknown is refused.
var ignoredUserAttrs = map[string]bool{
	"name": true, "nickname": true, "profileurl": true, "title": true, "usertype": true, "preferredlanguage": true,
	"locale": true, "timezone": true, "password": true, "phonenumbers": true, "ims": true, "photos": true,
	"addresses": true, "entitlements": true, "roles": true, "x509certificates": true, "meta": true, "groups": true,
	"id": true, "schemas": true,
	"employeenumber": true, "costcenter": true, "organization": true, "division": true, "department": true, "manager": true,
}

// checkSchemas refuses a body whose schemas list is missing the resource's
// core schema or names a schema Warden does not know.
func checkSchemas(m map[string]any, core string, allowed ...string) error {
	raw, ok := m["schemas"]
	if !ok {
		return errSyntax("schemas is missing")
	}
	list, ok := raw.([]any)
	if !ok {
		return errSyntax("schemas must be an array")
	}
	found := false
	for _, s := range list {
		str, _ := s.(string)
		switch {
		case strings.EqualFold(str, core):
			found = true
		case slices.ContainsFunc(allowed, func(a string) bool { return strings.EqualFold(a, str) }):
		default:
			return errValue(fmt.Sprintf("unknown schema %q", truncate(fmt.Sprint(s), 120)))
		}
	}
	if !found {
		return errValue("schemas must include " + core)
	}
	return nil
}

// boolValue reads a SCIM boolean. Entra ID without aadOptscim062020 sends
// "True" and "False" as strings; anything else is refused.
func boolValue(what string, v any) (bool, error) {
	switch v := v.(type) {
	case bool:
		return v, nil
	case string:
		switch strings.ToLower(v) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
	}
	return false, errValue(fmt.Sprintf("%s must be true or false", what))
}

func stringValue(what string, v any) (string, error) {
	switch v := v.(type) {
	case string:
		return v, nil
	case nil:
		return "", nil
	}
	return "", errValue(what + " must be a string")
}

// keysValue reads sshPublicKeys: an array of authorized_keys lines, or
// one string of lines (Entra's custom attributes are single strings).
func keysValue(v any) ([]string, error) {
	switch v := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{v}, nil
	case []any:
		out := make([]string, 0, len(v))
		for _, x := range v {
			s, ok := x.(string)
			if !ok {
				// Some clients wrap multi-valued strings as {"value": ...}.
				if m, isMap := x.(map[string]any); isMap {
					s, ok = m["value"].(string)
				}
			}
			if !ok {
				return nil, errValue("sshPublicKeys must be strings")
			}
			out = append(out, s)
		}
		return out, nil
	}
	return nil, errValue("sshPublicKeys must be an array of strings or one string")
}

func emailsValue(v any) ([]identity.Email, error) {
	list, ok := v.([]any)
	if v == nil {
		return nil, nil
	}
	if !ok {
		return nil, errValue("emails must be an array")
	}
	var out []identity.Email
	for _, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, errValue("emails must hold objects")
		}
		var e identity.Email
		var err error
		if e.Value, err = stringValue("emails.value", m["value"]); err != nil {
			return nil, err
		}
		if e.Type, err = stringValue("emails.type", m["type"]); err != nil {
			return nil, err
		}
		if p, ok := m["primary"]; ok {
			if e.Primary, err = boolValue("emails.primary", p); err != nil {
				return nil, err
			}
		}
		out = append(out, e)
	}
	return out, nil
}

// setUserAttr sets one top-level attribute (lowercase key) of u from a
// POST or PUT body, or from a PATCH value object.
func setUserAttr(u *identity.User, key string, v any, seenActive *bool) error {
	var err error
	switch key {
	case "username":
		u.UserName, err = stringValue("userName", v)
	case "externalid":
		u.ExternalID, err = stringValue("externalId", v)
	case "displayname":
		u.DisplayName, err = stringValue("displayName", v)
	case "active":
		u.Active, err = boolValue("active", v)
		if seenActive != nil {
			*seenActive = true
		}
	case "emails":
		u.Emails, err = emailsValue(v)
	case strings.ToLower(schemaWarden):
		m, ok := v.(map[string]any)
		if !ok {
			return errValue(schemaWarden + " must be an object")
		}
		for k, x := range m {
			if !strings.EqualFold(k, "sshPublicKeys") {
				return errValue(fmt.Sprintf("unknown attribute %q of %s", truncate(k, 64), schemaWarden))
			}
			if u.Keys, err = keysValue(x); err != nil {
				return err
			}
		}
	case strings.ToLower(schemaWarden) + ":sshpublickeys":
		u.Keys, err = keysValue(v)
	case strings.ToLower(schemaEnterprise):
		if _, ok := v.(map[string]any); !ok {
			return errValue(schemaEnterprise + " must be an object")
		}
	default:
		if ignoredUserAttrs[key] || strings.HasPrefix(key, strings.ToLower(schemaEnterprise)+":") || strings.HasPrefix(key, "name.") {
			return nil
		}
		return errValue(fmt.Sprintf("unknown attribute %q", truncate(key, 64)))
	}
	return err
}

// decodeUser reads a POST or PUT body into u, which holds the values that
// an omitted attribute keeps (see users.go).
func decodeUser(m map[string]any, u *identity.User) (activeSeen bool, err error) {
	if err := checkSchemas(m, schemaUser, schemaWarden, schemaEnterprise); err != nil {
		return false, err
	}
	for k, v := range m {
		if err := setUserAttr(u, strings.ToLower(k), v, &activeSeen); err != nil {
			return false, err
		}
	}
	if u.UserName == "" {
		return false, errValue("userName is required")
	}
	return activeSeen, nil
}

func (h *Handler) location(q *request, kind, id string) string {
	return Prefix + "/" + kind + "/" + id
}

func meta(kind, loc string, created, updated any) map[string]any {
	c, _ := created.(string)
	u, _ := updated.(string)
	return map[string]any{"resourceType": kind, "created": c, "lastModified": u, "location": loc}
}

// userJSON renders u; groups are the user's groups as SCIM references.
func (h *Handler) userJSON(q *request, u identity.User) map[string]any {
	created, _ := audit.Time(u.Created)
	updated, _ := audit.Time(u.Updated)
	keys := u.Keys
	if keys == nil {
		keys = []string{}
	}
	emails := []map[string]any{}
	for _, e := range u.Emails {
		em := map[string]any{"value": e.Value}
		if e.Type != "" {
			em["type"] = e.Type
		}
		if e.Primary {
			em["primary"] = true
		}
		emails = append(emails, em)
	}
	groups := []map[string]any{}
	for _, g := range h.dir.Groups() {
		if g.Directory == q.dir && slices.Contains(g.Members, u.ID) {
			groups = append(groups, map[string]any{"value": g.ID, "display": g.DisplayName, "$ref": h.location(q, "Groups", g.ID)})
		}
	}
	out := map[string]any{
		"schemas":    []string{schemaUser, schemaWarden},
		"id":         u.ID,
		"userName":   u.UserName,
		"active":     u.Active,
		"emails":     emails,
		"groups":     groups,
		schemaWarden: map[string]any{"sshPublicKeys": keys},
		"meta":       meta("User", h.location(q, "Users", u.ID), created, updated),
	}
	if u.ExternalID != "" {
		out["externalId"] = u.ExternalID
	}
	if u.DisplayName != "" {
		out["displayName"] = u.DisplayName
	}
	return out
}

func (h *Handler) groupJSON(q *request, g identity.Group, withMembers bool) map[string]any {
	created, _ := audit.Time(g.Created)
	updated, _ := audit.Time(g.Updated)
	out := map[string]any{
		"schemas":     []string{schemaGroup},
		"id":          g.ID,
		"displayName": g.DisplayName,
		"meta":        meta("Group", h.location(q, "Groups", g.ID), created, updated),
	}
	if g.ExternalID != "" {
		out["externalId"] = g.ExternalID
	}
	if withMembers {
		ms := []map[string]any{}
		for _, id := range g.Members {
			m := map[string]any{"value": id, "$ref": h.location(q, "Users", id)}
			if u, ok := h.dir.UserByID(q.dir, id); ok {
				m["display"] = u.UserName
			}
			ms = append(ms, m)
		}
		out["members"] = ms
	}
	return out
}

// memberIDs reads a members value: [{"value": ID}, ...].
func memberIDs(v any) ([]string, error) {
	if v == nil {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		if m, isMap := v.(map[string]any); isMap {
			list = []any{m} // one member sent as an object
		} else {
			return nil, errValue("members must be an array of {\"value\": ID}")
		}
	}
	out := make([]string, 0, len(list))
	for _, x := range list {
		m, ok := x.(map[string]any)
		if !ok {
			return nil, errValue("members must be an array of {\"value\": ID}")
		}
		id, ok := m["value"].(string)
		if !ok || id == "" {
			return nil, errValue("a member has no value")
		}
		out = append(out, id)
	}
	return out, nil
}

// decodeMap decodes a JSON object body.
func (q *request) object() (map[string]any, error) {
	var raw json.RawMessage
	if err := q.body(&raw); err != nil {
		return nil, err
	}
	var m map[string]any
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	if err := dec.Decode(&m); err != nil || m == nil {
		return nil, errSyntax("request body must be a JSON object")
	}
	return m, nil
}
