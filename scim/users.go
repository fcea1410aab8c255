package scim

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/warden-gw/warden/identity"
)

// page reads startIndex and count (RFC 7644 §3.4.2.4): 1-based, at most
// maxCount per page; Okta's "Test connection" asks for count=2.
func page(q *request) (start, count int, err error) {
	start, count = 1, 100
	if s := q.r.URL.Query().Get("startIndex"); s != "" {
		if start, err = strconv.Atoi(s); err != nil {
			return 0, 0, errValue("startIndex must be an integer")
		}
		start = max(start, 1)
	}
	if s := q.r.URL.Query().Get("count"); s != "" {
		if count, err = strconv.Atoi(s); err != nil {
			return 0, 0, errValue("count must be an integer")
		}
		count = min(max(count, 0), 1000)
	}
	return start, count, nil
}

// projection applies attributes and excludedAttributes to out. Only
// attributes of the resource may be named: an unknown one is a 400.
func projection(q *request, out map[string]any, known map[string]bool) error {
	attrs := q.r.URL.Query().Get("attributes")
	excl := q.r.URL.Query().Get("excludedAttributes")
	keep := map[string]bool{"id": true, "schemas": true, "meta": true}
	parse := func(list string) ([]string, error) {
		var names []string
		for _, a := range strings.Split(list, ",") {
			a = strings.TrimSpace(a)
			if a == "" {
				continue
			}
			top := strings.ToLower(a)
			if i := strings.IndexByte(top, '.'); i > 0 && !strings.HasPrefix(top, "urn:") {
				top = top[:i]
			}
			if !known[top] {
				return nil, errValue("unknown attribute " + strconvQuote(a))
			}
			names = append(names, top)
		}
		return names, nil
	}
	ex, err := parse(excl)
	if err != nil {
		return err
	}
	in, err := parse(attrs)
	if err != nil {
		return err
	}
	for k := range out {
		lk := strings.ToLower(k)
		for _, e := range ex {
			if lk == e && !keep[lk] {
				delete(out, k)
			}
		}
		if len(in) > 0 && !keep[lk] && !contains(in, lk) {
			delete(out, k)
		}
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func strconvQuote(s string) string { return strconv.Quote(truncate(s, 64)) }

var userAttrNames = map[string]bool{"id": true, "externalid": true, "username": true, "displayname": true, "active": true,
	"emails": true, "groups": true, "meta": true, "schemas": true, strings.ToLower(schemaWarden): true}

var groupAttrNames = map[string]bool{"id": true, "externalid": true, "displayname": true, "members": true, "meta": true, "schemas": true}

// userAttrs adapts a user to the filter evaluator.
type userAttrs struct{ u identity.User }

func (a userAttrs) get(path string) []any {
	switch path {
	case "id":
		return []any{a.u.ID}
	case "externalid":
		return []any{a.u.ExternalID}
	case "username":
		return []any{a.u.UserName}
	case "displayname":
		return []any{a.u.DisplayName}
	case "active":
		return []any{a.u.Active}
	case "emails.value", "emails.type", "emails.primary":
		var out []any
		for _, e := range a.u.Emails {
			out = append(out, emailAttrs(e).get(strings.TrimPrefix(path, "emails."))...)
		}
		return out
	}
	return nil
}

func (a userAttrs) elems(multi string) []attrs {
	var out []attrs
	if multi == "emails" {
		for _, e := range a.u.Emails {
			out = append(out, emailAttrs(e))
		}
	}
	return out
}

func emailAttrs(e identity.Email) mapAttrs {
	return mapAttrs{"value": e.Value, "type": e.Type, "primary": e.Primary}
}

func (h *Handler) listUsers(q *request) error {
	start, count, err := page(q)
	if err != nil {
		return err
	}
	var f expr
	if s := q.r.URL.Query().Get("filter"); s != "" {
		if f, err = parseFilter(s, userSchema); err != nil {
			return err
		}
	}
	var hits []identity.User
	for _, u := range h.dir.Users() {
		if u.Directory != q.dir || !u.Deleted.IsZero() {
			continue
		}
		if f == nil || match(f, userAttrs{u}, userSchema) {
			hits = append(hits, u)
		}
	}
	resources := []map[string]any{}
	for i := start - 1; i < len(hits) && len(resources) < count; i++ {
		out := h.userJSON(q, hits[i])
		if err := projection(q, out, userAttrNames); err != nil {
			return err
		}
		resources = append(resources, out)
	}
	if err := projection(q, map[string]any{}, userAttrNames); err != nil {
		return err
	}
	return q.write(http.StatusOK, map[string]any{"schemas": []string{schemaList}, "totalResults": len(hits),
		"startIndex": start, "itemsPerPage": len(resources), "Resources": resources})
}

func (h *Handler) getUser(q *request) error {
	u, ok := h.dir.UserByID(q.dir, q.r.PathValue("id"))
	if !ok || !u.Deleted.IsZero() {
		return errNotFound("user not found")
	}
	out := h.userJSON(q, u)
	if err := projection(q, out, userAttrNames); err != nil {
		return err
	}
	return q.write(http.StatusOK, out)
}

func (h *Handler) createUser(q *request) error {
	m, err := q.object()
	if err != nil {
		return err
	}
	// active defaults to true on POST: an IdP that leaves it out means a
	// user it has just assigned.
	u := identity.User{Active: true}
	if _, err := decodeUser(m, &u); err != nil {
		return err
	}
	var out identity.User
	var created bool
	err = h.dir.Update(q.r.Context(), q.dir, func(tx *identity.Tx) error {
		var err error
		out, created, err = tx.CreateUser(u)
		return err
	})
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK // a retried POST: the user it created
	}
	fresh, _ := h.dir.UserByID(q.dir, out.ID)
	if fresh.ID == "" {
		fresh = out
	}
	q.w.Header().Set("Location", h.location(q, "Users", out.ID))
	return q.write(status, h.userJSON(q, fresh))
}

// replaceUser is PUT. Okta sends the whole profile without active: an
// omitted active, like omitted sshPublicKeys, keeps its value, so a
// profile update never deactivates anyone or drops their keys.
func (h *Handler) replaceUser(q *request) error {
	m, err := q.object()
	if err != nil {
		return err
	}
	id := q.r.PathValue("id")
	var out identity.User
	err = h.dir.Update(q.r.Context(), q.dir, func(tx *identity.Tx) error {
		prev, err := tx.User(id)
		if err != nil {
			return err
		}
		u := identity.User{ID: id, Active: prev.Active, Keys: prev.Keys}
		if _, err := decodeUser(m, &u); err != nil {
			return err
		}
		out, err = tx.SaveUser(u)
		return err
	})
	if err != nil {
		return err
	}
	return h.writeUser(q, out.ID)
}

func (h *Handler) writeUser(q *request, id string) error {
	u, ok := h.dir.UserByID(q.dir, id)
	if !ok {
		return errNotFound("user not found")
	}
	return q.write(http.StatusOK, h.userJSON(q, u))
}

func (h *Handler) deleteUser(q *request) error {
	err := h.dir.Update(q.r.Context(), q.dir, func(tx *identity.Tx) error {
		return tx.DeleteUser(q.r.PathValue("id"))
	})
	if err != nil {
		return err
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}
