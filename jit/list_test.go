package jit

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

func ids[T any](list []T, id func(T) int64) []int64 {
	out := []int64{}
	for _, x := range list {
		out = append(out, id(x))
	}
	return out
}

func requestID(r Request) int64 { return r.ID }
func grantID(g Grant) int64     { return g.ID }

func TestRequestsShowsOwnAndDecidable(t *testing.T) {
	e := newEnv(t)
	e.request("alice", "prod-root", time.Hour, "x", "")      // 1
	e.request("bob", "db-admin", time.Hour, "", "CHG-1")     // 2
	e.request("oscar", "break-glass", time.Hour, "fire", "") // 3
	r4 := e.request("bob", "prod-root", time.Hour, "x", "")  // 4
	e.approve("carol", r4.ID)

	tests := []struct {
		viewer  string
		pending bool
		want    []int64
	}{
		{"alice", false, []int64{1}},
		{"bob", false, []int64{4, 2}},
		{"bob", true, []int64{2}},
		{"carol", false, []int64{4, 3, 2, 1}}, // security approves all three roles
		{"carol", true, []int64{3, 2, 1}},
		{"erin", false, []int64{3, 2}}, // management: db-admin and break-glass
		{"hank", false, []int64{}},
	}
	for _, tc := range tests {
		got, err := e.svc.Requests(context.Background(), e.user(tc.viewer), tc.pending)
		if err != nil {
			t.Fatal(err)
		}
		if g := ids(got, requestID); !slices.Equal(g, tc.want) {
			t.Errorf("Requests(%s, pending=%v) = %v, want %v", tc.viewer, tc.pending, g, tc.want)
		}
	}
	// A viewer no longer in the policy still sees their own requests only.
	got, err := e.svc.Requests(context.Background(), &policy.User{Name: "bob"}, false)
	if err != nil || len(got) != 2 {
		t.Errorf("stale viewer: %v %v", ids(got, requestID), err)
	}
	_, err = e.svc.Requests(context.Background(), nil, false)
	wantRefusal(t, err, ErrForbidden, "unknown user")
	// Approvals come along.
	all, _ := e.svc.Requests(context.Background(), e.user("bob"), false)
	if len(all[0].Approvals) != 1 || all[0].Approvals[0].Approver != "carol" || len(all[1].Approvals) != 0 {
		t.Errorf("approvals %+v / %+v", all[0].Approvals, all[1].Approvals)
	}
}

func TestActiveGrantAndGrants(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, ok, err := e.svc.ActiveGrant(ctx, "alice", "prod-root"); ok || err != nil {
		t.Fatalf("grant before any request: %v %v", ok, err)
	}
	short := e.grant(10 * time.Minute)
	long := e.grant(time.Hour)
	g, ok, err := e.svc.ActiveGrant(ctx, "alice", "prod-root")
	if err != nil || !ok || g.ID != long.ID {
		t.Fatalf("ActiveGrant = %+v %v %v, want the longest", g, ok, err)
	}
	for _, other := range [][2]string{{"bob", "prod-root"}, {"alice", "db-admin"}, {"alice", "nope"}} {
		if _, ok, _ := e.svc.ActiveGrant(ctx, other[0], other[1]); ok {
			t.Errorf("ActiveGrant(%s, %s) found a grant", other[0], other[1])
		}
	}
	list, err := e.svc.Grants(ctx, "alice", true)
	if err != nil || !slices.Equal(ids(list, grantID), []int64{long.ID, short.ID}) {
		t.Fatalf("Grants active = %v %v", ids(list, grantID), err)
	}
	// At exactly ExpiresAt a grant is over, with or without Run.
	e.clock.Set(short.ExpiresAt)
	list, _ = e.svc.Grants(ctx, "alice", true)
	if !slices.Equal(ids(list, grantID), []int64{long.ID}) {
		t.Errorf("Grants active at the short grant's expiry = %v", ids(list, grantID))
	}
	list, _ = e.svc.Grants(ctx, "alice", false)
	if !slices.Equal(ids(list, grantID), []int64{long.ID, short.ID}) {
		t.Errorf("Grants all = %v", ids(list, grantID))
	}
	e.clock.Set(long.ExpiresAt.Add(-time.Microsecond))
	if _, ok, _ := e.svc.ActiveGrant(ctx, "alice", "prod-root"); !ok {
		t.Error("grant not active one microsecond before expiry")
	}
	e.clock.Set(long.ExpiresAt)
	if _, ok, _ := e.svc.ActiveGrant(ctx, "alice", "prod-root"); ok {
		t.Error("grant active at its expiry")
	}
	if list, _ := e.svc.Grants(ctx, "nobody", false); list == nil || len(list) != 0 {
		t.Errorf("Grants of nobody = %#v, want an empty slice", list)
	}
}

func TestActiveGrantFollowsPolicy(t *testing.T) {
	for _, edit := range []string{
		"{name: alice, groups: [sysadmins]}=>{name: alice, groups: [helpdesk]}",   // no longer eligible
		"{name: alice, groups: [sysadmins]}=>{name: alicia, groups: [sysadmins]}", // user removed
		"name: prod-root=>name: prod-root2",                                       // role removed
	} {
		e := newEnv(t)
		e.grant(time.Hour)
		e.pol.Store(mustPolicy(t, edit))
		if _, ok, err := e.svc.ActiveGrant(context.Background(), "alice", "prod-root"); ok || err != nil {
			t.Errorf("after %q: ActiveGrant = %v, %v", edit, ok, err)
		}
	}
}

func TestListsFromReadOnlyDatabase(t *testing.T) {
	e := newEnv(t)
	e.grant(time.Hour)
	e.request("bob", "db-admin", 90*time.Minute, "", "CHG-1")
	e.close()

	r, err := audit.OpenReadOnly(e.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	reqs, err := ListRequests(context.Background(), r.DB())
	if err != nil || !slices.Equal(ids(reqs, requestID), []int64{2, 1}) {
		t.Fatalf("ListRequests = %v %v", ids(reqs, requestID), err)
	}
	grants, err := ListGrants(context.Background(), r.DB())
	if err != nil || len(grants) != 1 || grants[0].User != "alice" {
		t.Fatalf("ListGrants = %+v %v", grants, err)
	}

	b, err := json.Marshal(reqs)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"id":2,"user":"bob","role":"db-admin","tenant":"acme","ticket":"CHG-1","state":"pending",` +
		`"created_at":"2026-11-29T09:00:00Z","approvals":[],"duration":"1h30m0s"},` +
		`{"id":1,"user":"alice","role":"prod-root","tenant":"acme","reason":"INC-4711","state":"approved",` +
		`"created_at":"2026-11-29T09:00:00Z","decided_at":"2026-11-29T09:00:00Z",` +
		`"approvals":[{"approver":"carol","decision":"approved","ts":"2026-11-29T09:00:00Z"}],"duration":"1h0m0s"}]`
	if string(b) != want {
		t.Errorf("JSON:\n got %s\nwant %s", b, want)
	}
	b, _ = json.Marshal(grants)
	if !strings.Contains(string(b), `"expires_at":"2026-11-29T10:00:00Z"`) || strings.Contains(string(b), "ended_at") {
		t.Errorf("grant JSON %s", b)
	}

	// An empty database lists [] rather than null.
	empty := newEnv(t)
	reqs, err = empty.svc.AllRequests(context.Background())
	grants, err2 := empty.svc.AllGrants(context.Background())
	if err != nil || err2 != nil || reqs == nil || grants == nil {
		t.Errorf("empty lists %#v %#v %v %v", reqs, grants, err, err2)
	}
}
