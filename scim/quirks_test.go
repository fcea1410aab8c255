package scim_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/warden-gw/warden/identity"
)

// TestClientQuirks sends, for each quirk of issue 9, the exact JSON that
// Entra ID or Okta sends (with their IDs replaced by Warden's), and checks
// the answer and what was stored. {DANA}, {ERIK} and {GROUP} stand for the
// SCIM ids of the fixtures every case starts from: dana and erik, active,
// and the group sysadmins holding dana.
func TestClientQuirks(t *testing.T) {
	cases := []struct {
		name         string
		method, path string
		body         string
		status       int
		check        func(t *testing.T, s state, resp map[string]any)
	}{
		{
			name: "Entra create, string boolean True", method: "POST", path: "/Users", status: 201,
			body: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],
				"externalId":"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef","userName":"Test_User_ab6490ee@testuser.com","active":"True",
				"emails":[{"primary":true,"type":"work","value":"Test_User_fd0ea19b@testuser.com"}],"meta":{"resourceType":"User"},
				"name":{"formatted":"givenName familyName","familyName":"familyName","givenName":"givenName"},"roles":[],
				"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"IT","manager":{"value":"x"}}}`,
			check: func(t *testing.T, _ state, r map[string]any) {
				if r["active"] != true || r["externalId"] != "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef" {
					t.Errorf("created %v", r)
				}
			},
		},
		{
			name: "Entra without flag: Replace active False", method: "PATCH", path: "/Users/{DANA}", status: 200,
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
			check: func(t *testing.T, s state, _ map[string]any) {
				if s.dana.Active {
					t.Error("dana still active")
				}
			},
		},
		{
			name: "Entra without flag: Add and Replace attributes", method: "PATCH", path: "/Users/{DANA}", status: 200,
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
				{"op":"Add","path":"displayName","value":"Dana D"},
				{"op":"Replace","path":"emails[type eq \"work\"].value","value":"dana.d@contoso.com"},
				{"op":"Add","path":"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department","value":"Ops"}]}`,
			check: func(t *testing.T, s state, _ map[string]any) {
				if s.dana.DisplayName != "Dana D" || len(s.dana.Emails) != 1 || s.dana.Emails[0].Value != "dana.d@contoso.com" || !s.dana.Active {
					t.Errorf("dana %+v", s.dana)
				}
			},
		},
		{
			name: "Entra without flag: Remove members with a value", method: "PATCH", path: "/Groups/{GROUP}", status: 204,
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Remove","path":"members","value":[{"value":"{DANA}"}]}]}`,
			check: func(t *testing.T, s state, _ map[string]any) {
				if len(s.group.Members) != 0 {
					t.Errorf("members %v", s.group.Members)
				}
			},
		},
		{
			name: "Entra with flag: lower-case remove of members[value eq]", method: "PATCH", path: "/Groups/{GROUP}", status: 204,
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"{DANA}\"]"}]}`,
			check: func(t *testing.T, s state, _ map[string]any) {
				if len(s.group.Members) != 0 {
					t.Errorf("members %v", s.group.Members)
				}
			},
		},
		{
			name: "Entra with flag: several attributes in one value", method: "PATCH", path: "/Users/{DANA}", status: 200,
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{
				"active":false,"displayName":"Dana X","emails[type eq \"work\"].value":"dx@contoso.com","name.givenName":"Dana","name.familyName":"X"}}]}`,
			check: func(t *testing.T, s state, _ map[string]any) {
				if s.dana.Active || s.dana.DisplayName != "Dana X" || s.dana.Emails[0].Value != "dx@contoso.com" {
					t.Errorf("dana %+v", s.dana)
				}
			},
		},
		{
			name: "Entra with flag: add members", method: "PATCH", path: "/Groups/{GROUP}", status: 204,
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"add","path":"members","value":[{"value":"{ERIK}"}]}]}`,
			check: func(t *testing.T, s state, _ map[string]any) {
				if len(s.group.Members) != 2 || !slices.Contains(s.erik.Groups, "sysadmins") {
					t.Errorf("members %v, erik's groups %v", s.group.Members, s.erik.Groups)
				}
			},
		},
		{name: "Entra filter: userName eq", method: "GET", path: "/Users?filter=" + q(`userName eq "dana@contoso.com"`), status: 200, check: total(1)},
		{name: "Entra filter: externalId eq", method: "GET", path: "/Users?filter=" + q(`externalId eq "e-erik"`), status: 200, check: total(1)},
		{name: "Entra filter: and", method: "GET", path: "/Users?filter=" + q(`externalId eq "e-dana" and userName eq "erik@contoso.com"`), status: 200, check: total(0)},
		{name: "Entra filter: work email", method: "GET", path: "/Users?filter=" + q(`emails[type eq "work"].value eq "erik@contoso.com"`), status: 200, check: total(1)},
		{name: "Entra group filter with member", method: "GET", path: "/Groups?excludedAttributes=members&filter=" + q(`id eq "{GROUP}" and members[value eq "{DANA}"]`), status: 200, check: total(1)},
		{name: "Entra group filter without member", method: "GET", path: "/Groups?excludedAttributes=members&filter=" + q(`id eq "{GROUP}" and members[value eq "{ERIK}"]`), status: 200, check: total(0)},
		{
			name: "Entra group read without members", method: "GET", path: "/Groups/{GROUP}?excludedAttributes=members", status: 200,
			check: func(t *testing.T, _ state, r map[string]any) {
				if _, has := r["members"]; has || r["displayName"] != "sysadmins" {
					t.Errorf("group %v", r)
				}
			},
		},
		{name: "Okta test connection", method: "GET", path: "/Users?startIndex=1&count=2", status: 200, check: total(2)},
		{name: "Okta userName filter", method: "GET", path: "/Users?filter=userName%20eq%20%22erik%40contoso.com%22&startIndex=1&count=100", status: 200, check: total(1)},
		{
			name: "Okta create", method: "POST", path: "/Users", status: 201,
			body: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"test.user@okta.local","name":{"givenName":"Test","familyName":"User"},
				"emails":[{"primary":true,"value":"test.user@okta.local","type":"work"}],"displayName":"Test User","locale":"en-US",
				"externalId":"00ujl29u0le5T6Aj10h7","groups":[],"password":"1mz050nq","active":true}`,
			check: func(t *testing.T, _ state, r map[string]any) {
				if r["userName"] != "test.user@okta.local" || r["active"] != true {
					t.Errorf("created %v", r)
				}
			},
		},
		{
			name: "Okta PUT without active keeps the user active", method: "PUT", path: "/Users/{DANA}", status: 200,
			body: `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"id":"{DANA}","userName":"dana@contoso.com",
				"name":{"givenName":"Another","familyName":"User"},"emails":[{"primary":true,"value":"dana@contoso.com","type":"work"}],
				"displayName":"Another User","locale":"en-US","externalId":"e-dana","groups":[],"meta":{"resourceType":"User"}}`,
			check: func(t *testing.T, s state, _ map[string]any) {
				if !s.dana.Active || s.dana.DisplayName != "Another User" {
					t.Errorf("dana %+v", s.dana)
				}
			},
		},
		{
			name: "Okta deactivate", method: "PATCH", path: "/Users/{ERIK}", status: 200,
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":false}}]}`,
			check: func(t *testing.T, s state, _ map[string]any) {
				if s.erik.Active {
					t.Error("erik still active")
				}
			},
		},
		{
			name: "Okta group push mixing add, remove and replace", method: "PATCH", path: "/Groups/{GROUP}", status: 204,
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[
				{"op":"add","path":"members","value":[{"value":"{ERIK}","display":"erik@contoso.com"}]},
				{"op":"remove","path":"members[value eq \"{DANA}\"]"},
				{"op":"replace","path":"members","value":[{"value":"{DANA}","display":"dana@contoso.com"},{"value":"{ERIK}","display":"erik@contoso.com"}]},
				{"op":"remove","path":"members[value eq \"{ERIK}\"]"},
				{"op":"replace","value":{"id":"{GROUP}","displayName":"sysadmins"}}]}`,
			check: func(t *testing.T, s state, _ map[string]any) {
				if len(s.group.Members) != 1 || s.group.Members[0] != s.dana.ID {
					t.Errorf("members %v", s.group.Members)
				}
			},
		},
		{
			name: "keys as one string of lines", method: "PATCH", path: "/Users/{DANA}", status: 200,
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"urn:ietf:params:scim:schemas:extension:warden:2.0:User:sshPublicKeys",
				"value":"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl laptop\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIE4Dg5bcxLgWUVe+Q5hmjRNtWZjQGdPAbbJqtXtzePV0 token\n"}]}`,
			check: func(t *testing.T, s state, _ map[string]any) {
				if len(s.dana.Keys) != 2 {
					t.Errorf("keys %v", s.dana.Keys)
				}
			},
		},
		{name: "unknown filter attribute", method: "GET", path: "/Users?filter=" + q(`nickName eq "x"`), status: 400},
		{name: "unknown excluded attribute", method: "GET", path: "/Groups/{GROUP}?excludedAttributes=owners", status: 400},
		{name: "unknown PATCH attribute", method: "PATCH", path: "/Users/{DANA}", status: 400,
			body: `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"shoeSize","value":"42"}]}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b := newBed(t)
			dana := b.user(t, "dana@contoso.com", "e-dana")
			erik := b.user(t, "erik@contoso.com", "e-erik")
			code, g := b.do(t, "POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"sysadmins","members":[{"value":"`+dana+`"}]}`)
			if code != 201 {
				t.Fatal(code, g)
			}
			gid := g["id"].(string)
			fill := strings.NewReplacer("{DANA}", dana, "{ERIK}", erik, "{GROUP}", gid)
			code, resp := b.do(t, c.method, fill.Replace(c.path), fill.Replace(c.body))
			if code != c.status {
				t.Fatalf("status %d, want %d: %v", code, c.status, resp)
			}
			if c.status >= 400 && (resp["scimType"] == nil && c.status == 400 || !strings.HasPrefix(resp["detail"].(string), "warden: ")) {
				t.Fatalf("error body %v", resp)
			}
			if c.check != nil {
				var s state
				s.dana, _ = b.dir.UserByID("okta", dana)
				s.erik, _ = b.dir.UserByID("okta", erik)
				for _, gr := range b.dir.Groups() {
					if gr.ID == gid {
						s.group = gr
					}
				}
				c.check(t, s, resp)
			}
		})
	}
}

// state is what a case's check sees after its request.
type state struct {
	dana, erik identity.User
	group      identity.Group
}

// total checks a list response's totalResults.
func total(n int) func(*testing.T, state, map[string]any) {
	return func(t *testing.T, _ state, r map[string]any) {
		if got, _ := r["totalResults"].(float64); int(got) != n {
			t.Errorf("totalResults %v, want %d", r["totalResults"], n)
		}
	}
}
