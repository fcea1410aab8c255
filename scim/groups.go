package scim

import (
	"net/http"
	"slices"
	"strings"

	"github.com/warden-gw/warden/identity"
)

type groupAttrs struct{ g identity.Group }

func (a groupAttrs) get(path string) []any {
	switch path {
	case "id":
		return []any{a.g.ID}
	case "externalid":
		return []any{a.g.ExternalID}
	case "displayname":
		return []any{a.g.DisplayName}
	case "members.value":
		out := make([]any, len(a.g.Members))
		for i, m := range a.g.Members {
			out[i] = m
		}
		return out
	}
	return nil
}

func (a groupAttrs) elems(multi string) []attrs {
	var out []attrs
	if multi == "members" {
		for _, m := range a.g.Members {
			out = append(out, mapAttrs{"value": m})
		}
	}
	return out
}

// withMembers tells whether members are wanted: Entra reads groups with
// excludedAttributes=members, and 10,000 members are not worth sending
// to a client that does not want them.
func withMembers(q *request) bool {
	for _, a := range strings.Split(q.r.URL.Query().Get("excludedAttributes"), ",") {
		if strings.EqualFold(strings.TrimSpace(a), "members") {
			return false
		}
	}
	return true
}

func (h *Handler) listGroups(q *request) error {
	start, count, err := page(q)
	if err != nil {
		return err
	}
	var f expr
	if s := q.r.URL.Query().Get("filter"); s != "" {
		if f, err = parseFilter(s, groupSchema); err != nil {
			return err
		}
	}
	if err := projection(q, map[string]any{}, groupAttrNames); err != nil {
		return err
	}
	var hits []identity.Group
	for _, g := range h.dir.Groups() {
		if g.Directory == q.dir && (f == nil || match(f, groupAttrs{g}, groupSchema)) {
			hits = append(hits, g)
		}
	}
	resources := []map[string]any{}
	for i := start - 1; i < len(hits) && len(resources) < count; i++ {
		out := h.groupJSON(q, hits[i], withMembers(q))
		_ = projection(q, out, groupAttrNames)
		resources = append(resources, out)
	}
	return q.write(http.StatusOK, map[string]any{"schemas": []string{schemaList}, "totalResults": len(hits),
		"startIndex": start, "itemsPerPage": len(resources), "Resources": resources})
}

func (h *Handler) group(q *request, id string) (identity.Group, bool) {
	i := slices.IndexFunc(h.dir.Groups(), func(g identity.Group) bool { return g.ID == id && g.Directory == q.dir })
	if i < 0 {
		return identity.Group{}, false
	}
	return h.dir.Groups()[i], true
}

func (h *Handler) getGroup(q *request) error {
	g, ok := h.group(q, q.r.PathValue("id"))
	if !ok {
		return errNotFound("group not found")
	}
	out := h.groupJSON(q, g, withMembers(q))
	if err := projection(q, out, groupAttrNames); err != nil {
		return err
	}
	return q.write(http.StatusOK, out)
}

func decodeGroup(m map[string]any, g *identity.Group) error {
	if err := checkSchemas(m, schemaGroup); err != nil {
		return err
	}
	for k, v := range m {
		var err error
		switch strings.ToLower(k) {
		case "displayname":
			g.DisplayName, err = stringValue("displayName", v)
		case "externalid":
			g.ExternalID, err = stringValue("externalId", v)
		case "members":
			g.Members, err = memberIDs(v)
		case "schemas", "id", "meta":
		default:
			return errValue("unknown attribute " + strconvQuote(k))
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (h *Handler) createGroup(q *request) error {
	m, err := q.object()
	if err != nil {
		return err
	}
	var g identity.Group
	if err := decodeGroup(m, &g); err != nil {
		return err
	}
	var out identity.Group
	var created bool
	err = h.dir.Update(q.r.Context(), q.dir, func(tx *identity.Tx) error {
		var err error
		out, created, err = tx.CreateGroup(g)
		return err
	})
	if err != nil {
		return err
	}
	status := http.StatusCreated
	if !created {
		status = http.StatusOK // a retried POST: the group it created
	}
	q.w.Header().Set("Location", h.location(q, "Groups", out.ID))
	return q.write(status, h.groupJSON(q, out, true))
}

func (h *Handler) replaceGroup(q *request) error {
	m, err := q.object()
	if err != nil {
		return err
	}
	id := q.r.PathValue("id")
	var out identity.Group
	err = h.dir.Update(q.r.Context(), q.dir, func(tx *identity.Tx) error {
		prev, err := tx.Group(id)
		if err != nil {
			return err
		}
		g := identity.Group{ID: id, Members: prev.Members}
		if err := decodeGroup(m, &g); err != nil {
			return err
		}
		out, err = tx.SaveGroup(g)
		return err
	})
	if err != nil {
		return err
	}
	return q.write(http.StatusOK, h.groupJSON(q, out, true))
}

func (h *Handler) deleteGroup(q *request) error {
	err := h.dir.Update(q.r.Context(), q.dir, func(tx *identity.Tx) error {
		return tx.DeleteGroup(q.r.PathValue("id"))
	})
	if err != nil {
		return err
	}
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}
