package gateway_test

import (
	"testing"

	"github.com/warden-gw/warden/policy"
)

// TestSessionsAndGrantsRecordThePolicyVersion: the evidence packet judges a
// session and a grant by the policy they ran under (issue 13 item 3), so
// the rows must name it, through the real ssh client and workflow, and a
// policy put in force later is named by the sessions admitted after.
func TestSessionsAndGrantsRecordThePolicyVersion(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	gid := b.requestAndApprove("10m")
	if _, errOut, code := b.run(b.bob, "root@web01", "true"); code != 0 {
		t.Fatalf("session: %d %q", code, errOut)
	}
	first := b.lastSession("bob")
	db := b.db()
	var grantV, sessV string
	if err := db.QueryRow(`SELECT policy_version FROM grants WHERE id = ?`, gid).Scan(&grantV); err != nil {
		t.Fatal(err)
	}
	if err := db.QueryRow(`SELECT policy_version FROM sessions WHERE id = ?`, first.ID).Scan(&sessV); err != nil {
		t.Fatal(err)
	}
	if want := b.cfg.Version(); len(want) != 64 || grantV != want || sessV != want {
		t.Fatalf("grant recorded %q, session %q; the policy is %q", grantV, sessV, want)
	}

	// The hash chain names the version too, so editing the rows shows.
	if evs := b.events("session.start"); len(evs) != 1 || evs[0].Data["policy_version"] != b.cfg.Version() {
		t.Errorf("session.start events %+v", evs)
	}
	if evs := b.events("request.approved"); len(evs) != 1 || evs[0].Data["policy_version"] != b.cfg.Version() {
		t.Errorf("request.approved events %+v", evs)
	}

	edited, err := policy.Parse(append(append([]byte{}, b.cfg.Source...), "# edited\n"...), b.cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	b.gw.SetPolicy(edited)
	if _, errOut, code := b.run(b.bob, "root@web01", "true"); code != 0 {
		t.Fatalf("session under the edited policy: %d %q", code, errOut)
	}
	var n int
	if err := db.QueryRow(`SELECT COUNT(*) FROM sessions WHERE user = 'bob' AND policy_version = ?`, edited.Version()).Scan(&n); err != nil || n != 1 {
		t.Fatalf("sessions under the edited policy: %d %v", n, err)
	}
}
