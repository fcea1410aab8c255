package scim

import (
	"encoding/json"
	"testing"

	"github.com/warden-gw/warden/identity"
)

func TestFilterGrammar(t *testing.T) {
	u := userAttrs{identity.User{ID: "1", UserName: "Dana@Contoso.com", ExternalID: "AbC", Active: true,
		Emails: []identity.Email{{Value: "dana@contoso.com", Type: "work"}, {Value: "d@home.example", Type: "home"}}}}
	for f, want := range map[string]bool{
		`userName eq "dana@contoso.com"`:                                    true,
		`USERNAME EQ "DANA@CONTOSO.COM"`:                                    true,
		`urn:ietf:params:scim:schemas:core:2.0:User:userName sw "dana"`:     true,
		`externalId eq "abc"`:                                               false,
		`externalId eq "AbC" and active eq true`:                            true,
		`not (active eq true) or userName co "contoso"`:                     true,
		`emails[type eq "work"].value eq "dana@contoso.com"`:                true,
		`emails[type eq "home"].value eq "dana@contoso.com"`:                false,
		`emails[type eq "home"]`:                                            true,
		`emails.value ew "home.example"`:                                    true,
		`displayName pr`:                                                    false,
		`(userName eq "x" or userName eq "dana@contoso.com") and active pr`: true,
	} {
		e, err := parseFilter(f, userSchema)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if got := match(e, u, userSchema); got != want {
			t.Errorf("%s = %v, want %v", f, got, want)
		}
	}
	for _, bad := range []string{``, `userName`, `userName eq`, `userName eq x`, `password eq "x"`, `userName regex "x"`,
		`(userName eq "x"`, `emails[type eq "work"`, `emails[colour eq "x"].value eq "y"`, `userName eq "x" and`, `not userName eq "x"`} {
		if _, err := parseFilter(bad, userSchema); err == nil {
			t.Errorf("%q parsed", bad)
		} else if se, ok := err.(*Error); !ok || se.Type != "invalidFilter" || se.Status != 400 {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

// FuzzFilter: whatever a client sends, the parser returns an expression
// or an invalidFilter error, and never panics or loops.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{`userName eq "a"`, `emails[type eq "work"].value eq "x"`, `not (a eq 1) or ((b pr))`, `"`, `[[[`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, err := parseFilter(s, userSchema)
		if err == nil {
			match(e, userAttrs{identity.User{UserName: "x"}}, userSchema)
			return
		}
		if se, ok := err.(*Error); !ok || se.Type != "invalidFilter" {
			t.Fatalf("%q: %v", s, err)
		}
	})
}

// FuzzPatch: any PATCH body is refused with a SCIM error or applied to a
// user and a group without panicking.
func FuzzPatch(f *testing.F) {
	for _, s := range []string{
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"emails[type eq \"work\"].value":"x","active":true}}]}`,
		`{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"remove","path":"members[value eq \"1\"]"},{"op":"add","path":"members","value":[{"value":"2"}]}]}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var m map[string]any
		if json.Unmarshal([]byte(s), &m) != nil || m == nil {
			return
		}
		ops, err := parsePatch(m)
		if err != nil {
			if _, ok := err.(*Error); !ok {
				t.Fatalf("%q: %T %v", s, err, err)
			}
			return
		}
		u := identity.User{UserName: "x", Emails: []identity.Email{{Value: "a", Type: "work"}}}
		g := identity.Group{DisplayName: "g", Members: []string{"1"}}
		for _, op := range ops {
			if err := applyUserOp(&u, op); err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("user %q: %T %v", s, err, err)
				}
			}
			if err := applyGroupOp(&g, op); err != nil {
				if _, ok := err.(*Error); !ok {
					t.Fatalf("group %q: %T %v", s, err, err)
				}
			}
		}
	})
}
