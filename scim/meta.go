package scim

import "net/http"

func (h *Handler) serviceProviderConfig(q *request) error {
	return q.write(http.StatusOK, map[string]any{
		"schemas":          []string{"urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"},
		"documentationUri": "https://github.com/warden-gw/warden#identity-directories",
		"patch":            map[string]any{"supported": true},
		"bulk":             map[string]any{"supported": false, "maxOperations": 0, "maxPayloadSize": maxBody},
		"filter":           map[string]any{"supported": true, "maxResults": 1000},
		"changePassword":   map[string]any{"supported": false},
		"sort":             map[string]any{"supported": false},
		"etag":             map[string]any{"supported": false},
		"authenticationSchemes": []map[string]any{{
			"type": "oauthbearertoken", "name": "Bearer token", "primary": true,
			"description": "One token per directory, from identity.directories[].token_file",
		}},
		"meta": map[string]any{"resourceType": "ServiceProviderConfig", "location": Prefix + "/ServiceProviderConfig"},
	})
}

func attr(name, typ string, multi, required, caseExact bool, uniq string) map[string]any {
	return map[string]any{"name": name, "type": typ, "multiValued": multi, "required": required, "caseExact": caseExact,
		"mutability": "readWrite", "returned": "default", "uniqueness": uniq}
}

func schemaDefs() []map[string]any {
	return []map[string]any{
		{"id": schemaUser, "name": "User", "description": "A Warden user provisioned by a directory",
			"attributes": []map[string]any{
				attr("userName", "string", false, true, false, "server"),
				attr("externalId", "string", false, false, true, "none"),
				attr("displayName", "string", false, false, false, "none"),
				attr("active", "boolean", false, false, false, "none"),
				attr("emails", "complex", true, false, false, "none"),
			}},
		{"id": schemaWarden, "name": "WardenUser", "description": "SSH public keys of a Warden user",
			"attributes": []map[string]any{attr("sshPublicKeys", "string", true, false, true, "none")}},
		{"id": schemaGroup, "name": "Group", "description": "A directory group; its displayName names a policy group",
			"attributes": []map[string]any{
				attr("displayName", "string", false, true, false, "none"),
				attr("externalId", "string", false, false, true, "none"),
				attr("members", "complex", true, false, false, "none"),
			}},
	}
}

func (h *Handler) schemas(q *request) error {
	res := schemaDefs()
	return q.write(http.StatusOK, map[string]any{"schemas": []string{schemaList}, "totalResults": len(res),
		"startIndex": 1, "itemsPerPage": len(res), "Resources": res})
}

func (h *Handler) resourceTypes(q *request) error {
	res := []map[string]any{
		{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"}, "id": "User", "name": "User",
			"endpoint": "/Users", "schema": schemaUser,
			"schemaExtensions": []map[string]any{{"schema": schemaWarden, "required": false}}},
		{"schemas": []string{"urn:ietf:params:scim:schemas:core:2.0:ResourceType"}, "id": "Group", "name": "Group",
			"endpoint": "/Groups", "schema": schemaGroup},
	}
	return q.write(http.StatusOK, map[string]any{"schemas": []string{schemaList}, "totalResults": len(res),
		"startIndex": 1, "itemsPerPage": len(res), "Resources": res})
}
