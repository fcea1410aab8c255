package evidence

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// The packet's joiners, movers and leavers: each directory change of the
// month, with the time from the change to the gateway's removal of the
// access; another tenant's directory stays out.
func TestPacketLifecycleSection(t *testing.T) {
	w := newWorld(t, at("2026-10-01T00:00:00Z"))
	ev := func(ts, typ, actor, subject string, data map[string]any) {
		t.Helper()
		if err := w.st.Append(w.ctx, audit.Event{TS: at(ts), Type: typ, Actor: actor, Subject: subject, Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	ev("2026-10-02T09:00:00Z", "identity.user.created", "scim:entra", "user:dana@contoso.com",
		map[string]any{"directory": "entra", "tenant": "", "user_name": "dana@contoso.com", "active": true})
	ev("2026-10-03T09:00:00Z", "identity.group.updated", "scim:entra", "group:sysadmins",
		map[string]any{"directory": "entra", "tenant": "", "added": []string{}, "removed": []string{"dana@contoso.com"}})
	ev("2026-10-03T09:00:00.250Z", "identity.access_removed", "scim:entra", "user:dana@contoso.com",
		map[string]any{"user": "dana@contoso.com", "directory": "entra", "sessions": []string{"s1"}, "grants": []int64{4}, "requests": []int64{}})
	ev("2026-10-20T17:00:00Z", "identity.user.deactivated", "scim:entra", "user:dana@contoso.com",
		map[string]any{"directory": "entra", "tenant": "", "user_name": "dana@contoso.com", "active": false})
	ev("2026-10-20T17:00:00.120Z", "identity.access_removed", "scim:entra", "user:dana@contoso.com",
		map[string]any{"user": "dana@contoso.com", "directory": "entra", "sessions": []string{}, "grants": []int64{}, "requests": []int64{}})
	ev("2026-10-21T10:00:00Z", "identity.user.deleted", "scim:beta-okta", "user:zed@beta.example",
		map[string]any{"directory": "beta-okta", "tenant": "beta", "user_name": "zed@beta.example", "active": false})
	w.clk.Set(at("2026-11-15T00:00:00Z"))

	out := filepath.Join(t.TempDir(), "acme")
	if _, err := Build(w.ctx, Options{DataDir: w.dir, Tenant: "acme", Month: at("2026-10-01T00:00:00Z"), Out: out, Policy: w.cfg, Now: w.clk.Now}); err != nil {
		t.Fatal(err)
	}
	csv, err := os.ReadFile(filepath.Join(out, "lifecycle.csv"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(csv)), "\n")
	want := []string{
		strings.Join(lifecycleHeader, ","),
		",2026-10-02T09:00:00.000000Z,entra,dana@contoso.com,joiner,identity.user.created,,,0,0,0",
		",2026-10-03T09:00:00.000000Z,entra,dana@contoso.com,mover,identity.group.updated,2026-10-03T09:00:00.250000Z,0.250,1,1,0",
		",2026-10-20T17:00:00.000000Z,entra,dana@contoso.com,leaver,identity.user.deactivated,2026-10-20T17:00:00.120000Z,0.120,0,0,0",
	}
	if len(lines) != len(want) {
		t.Fatalf("lifecycle.csv:\n%s", csv)
	}
	for i, l := range lines[1:] {
		if _, rest, _ := strings.Cut(l, ","); ","+rest != want[i+1] {
			t.Errorf("row %d = %q, want %q", i, l, want[i+1])
		}
	}
	md, _ := os.ReadFile(filepath.Join(out, "summary.md"))
	for _, s := range []string{"Joiners, movers and leavers (3)", "1 joiners, 1 movers, 1 leavers", mdEscape("0.250 s (dana@contoso.com)")} {
		if !strings.Contains(string(md), s) {
			t.Errorf("summary.md lacks %q", s)
		}
	}
}

// The end-of-period checks judge directory users by the groups the
// directory gave them at the end, replayed from the chain: dana (in
// sysadmins, renamed from ops) is eligible for prod-root and her grant is
// explained; erik, deleted before the end, is nobody.
func TestDirectoryUsersAtPeriodEnd(t *testing.T) {
	w := newWorld(t, at("2026-10-01T00:00:00Z"))
	cfg, err := policy.Parse([]byte(testPolicyYAML()+"http_listen: \"127.0.0.1:0\"\nidentity:\n  directories: [{name: entra, token_file: /t/entra}]\n"), "warden.yaml")
	if err != nil {
		t.Fatal(err)
	}
	ev := func(ts, typ string, data map[string]any) {
		t.Helper()
		if err := w.st.Append(w.ctx, audit.Event{TS: at(ts), Type: typ, Actor: "scim:entra", Subject: "x", Data: data}); err != nil {
			t.Fatal(err)
		}
	}
	ev("2026-10-02T09:00:00Z", "identity.user.created", map[string]any{"directory": "entra", "id": "u1", "user_name": "dana@contoso.com", "active": true})
	ev("2026-10-02T09:00:01Z", "identity.user.created", map[string]any{"directory": "entra", "id": "u2", "user_name": "erik@contoso.com", "active": true})
	ev("2026-10-02T09:00:02Z", "identity.group.created", map[string]any{"directory": "entra", "id": "g1", "display_name": "ops", "added": []string{"dana@contoso.com", "erik@contoso.com"}})
	ev("2026-10-03T09:00:00Z", "identity.group.updated", map[string]any{"directory": "entra", "id": "g1", "display_name": "sysadmins", "previous_display_name": "ops", "added": []string{}, "removed": []string{}})
	ev("2026-10-04T09:00:00Z", "identity.user.deleted", map[string]any{"directory": "entra", "id": "u2", "user_name": "erik@contoso.com", "active": false})
	ev("2026-11-04T09:00:00Z", "identity.user.deactivated", map[string]any{"directory": "entra", "id": "u1", "user_name": "dana@contoso.com", "active": false})

	tx, err := w.st.DB().Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	end, _ := audit.Time(at("2026-11-01T00:00:00Z"))
	m, err := directoryAt(tx, cfg, end)
	if err != nil {
		t.Fatal(err)
	}
	dana := m.User("dana@contoso.com")
	if dana == nil || !dana.InAny([]string{"sysadmins"}) || m.User("erik@contoso.com") != nil {
		t.Fatalf("dana %+v, erik %+v", dana, m.User("erik@contoso.com"))
	}
	if why := unexplained(m, "dana@contoso.com", "prod-root", "acme"); why != "" {
		t.Fatalf("dana's grant unexplained: %s", why)
	}
	later, _ := audit.Time(at("2026-12-01T00:00:00Z"))
	if m, _ := directoryAt(tx, cfg, later); m.User("dana@contoso.com") != nil {
		t.Fatal("a leaver still counts after she left")
	}
	if m, _ := directoryAt(tx, testPolicy(t), end); m.User("dana@contoso.com") != nil {
		t.Fatal("directory users merged into a policy without directories")
	}
}
