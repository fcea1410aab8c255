package evidence

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/jit"
	"github.com/warden-gw/warden/policy"
)

// servedWorld is a month run by a "gateway": the policy file is loaded
// and recorded as the gateway's at the start of October, and grants are
// made by the real workflow, which records their policy version.
type servedWorld struct {
	*world
	path string
	jit  *jit.Service
}

func newServedWorld(t *testing.T) *servedWorld {
	w := newWorld(t, at("2026-10-01T00:00:00Z"))
	sw := &servedWorld{world: w, path: filepath.Join(w.dir, "warden.yaml")}
	sw.serve(testPolicyYAML(), "2026-10-01T00:00:00Z")
	svc, err := jit.New(jit.Options{Store: w.st, Policy: func() *policy.Config { return sw.cfg }, Now: w.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	sw.jit = svc
	return sw
}

// serve writes src as the policy file, loads it as warden serve does and
// records the load as the gateway's at ts (a start or a reload).
func (sw *servedWorld) serve(src, ts string) {
	sw.t.Helper()
	writeFile(sw.t, sw.path, []byte(src))
	cfg, err := policy.Load(sw.path)
	if err != nil {
		sw.t.Fatal(err)
	}
	if err := RecordPolicy(sw.ctx, sw.st, cfg, UseGateway, at(ts)); err != nil {
		sw.t.Fatal(err)
	}
	sw.cfg, sw.ver = cfg, cfg.Version()
}

// elevate has user request role at ts and the approvers approve a minute
// later, through the workflow; it returns the grant's ID.
func (sw *servedWorld) elevate(ts, user, role string, d time.Duration, approvers ...string) int64 {
	sw.t.Helper()
	sw.clk.Set(at(ts))
	req, err := sw.jit.Request(sw.ctx, sw.cfg.User(user), role, d, "INC-7 disk full", "")
	if err != nil {
		sw.t.Fatal(err)
	}
	sw.clk.Set(at(ts).Add(time.Minute))
	var g *jit.Grant
	for _, a := range approvers {
		if _, g, err = sw.jit.Approve(sw.ctx, sw.cfg.User(a), req.ID, "ok"); err != nil {
			sw.t.Fatal(err)
		}
	}
	if g == nil {
		sw.t.Fatalf("%s's request for %s made no grant", user, role)
	}
	return g.ID
}

// octoberServed: a break-glass grant and a prod-root grant, with sessions,
// all under the policy the gateway loaded on the 1st; gina is eligible
// and never activates (a stale admin).
func octoberServed(t *testing.T) *servedWorld {
	sw := newServedWorld(t)
	bg := sw.elevate("2026-10-10T12:00:00Z", "dave", "break-glass", time.Hour, "carol", "erin")
	sw.session("bg1", "dave", "acme", bg, "2026-10-10T12:05:00Z", "2026-10-10T12:30:00Z", "systemctl restart nginx")
	pr := sw.elevate("2026-10-12T09:00:00Z", "alice", "prod-root", time.Hour, "carol")
	sw.session("pr1", "alice", "acme", pr, "2026-10-12T09:05:00Z", "2026-10-12T09:20:00Z", "uptime")
	sw.clk.Set(at("2026-11-02T08:00:00Z"))
	return sw
}

// verdicts reads what a packet decided: the grants with their break-glass
// verdict, the summary's break-glass uses, overdue items and policies.
func verdicts(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range []string{"grants.json", "summary.json"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		out[name] = string(b)
	}
	return out
}

// TestRebuildAfterPolicyEditGivesSameVerdicts is the attack of issue 13
// item 3: after a break-glass emergency the role is edited (no longer
// break-glass, or renamed) and the gateway restarted; the month's packet,
// rebuilt, must still show the break-glass use, the stale admin, and the
// policy that judged them.
func TestRebuildAfterPolicyEditGivesSameVerdicts(t *testing.T) {
	for name, edit := range map[string]func(string) string{
		"break_glass false": func(s string) string {
			return strings.Replace(s, "    break_glass: true\n", "    privileged: true\n", 1)
		},
		"renamed, gina removed": func(s string) string {
			s = strings.Replace(s, "  - name: break-glass\n", "  - name: emergency\n", 1)
			return strings.Replace(s, "  - {name: gina, keys: [\""+keyLine(6)+"\"], groups: [sysadmins]}\n", "", 1)
		},
	} {
		t.Run(name, func(t *testing.T) {
			sw := octoberServed(t)
			month := at("2026-10-01T00:00:00Z")
			dir := filepath.Join(t.TempDir(), "acme-2026-10")
			before, err := Build(sw.ctx, Options{DataDir: sw.dir, Tenant: "acme", Month: month, Out: dir, Policy: sw.cfg, Now: sw.clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			old := sw.cfg.Version()
			if len(before.Summary.BreakGlass) != 1 || before.Summary.OverdueByKind[OverdueStaleAdmin] != 1 {
				t.Fatalf("the packet before the edit: break-glass %v, overdue %v", before.Summary.BreakGlass, before.Summary.Overdue)
			}

			edited := edit(testPolicyYAML())
			if edited == testPolicyYAML() {
				t.Fatal("the edit changed nothing")
			}
			sw.serve(edited, "2026-11-03T00:00:00Z") // the clean-up, then a restart
			if sw.cfg.Version() == old {
				t.Fatal("the edited policy has the old version")
			}
			// Sanity: today's policy would judge differently.
			if r := sw.cfg.Role("break-glass"); r != nil && r.BreakGlass {
				t.Fatal("the edit left break-glass in place")
			}

			again := filepath.Join(t.TempDir(), "rebuilt")
			after, err := Build(sw.ctx, Options{DataDir: sw.dir, Tenant: "acme", Month: month, Out: again, Policy: sw.cfg, Now: sw.clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(verdicts(t, dir), verdicts(t, again)) {
				t.Errorf("verdicts changed after the edit:\nbefore %v\nafter  %v", verdicts(t, dir), verdicts(t, again))
			}
			// Nothing the edited policy could judge is in the packet, so
			// the rebuild is byte-identical: into the same directory it is
			// a no-op.
			same, err := Build(sw.ctx, Options{DataDir: sw.dir, Tenant: "acme", Month: month, Out: dir, Policy: sw.cfg, Now: sw.clk.Now})
			if err != nil || !same.Reused {
				t.Errorf("rebuild into the first packet's directory: reused %v, %v", same != nil && same.Reused, err)
			}
			want := []PolicyVersion{{SHA256: old, File: "policy-" + old + ".json", Path: sw.path, Grants: 2, Sessions: 2, EndOfPeriod: true}}
			if !reflect.DeepEqual(after.Summary.PolicyVersions, want) {
				t.Errorf("policy versions = %+v\nwant %+v", after.Summary.PolicyVersions, want)
			}
			for _, g := range readJSON(t, filepath.Join(again, "grants.json")) {
				if g["policy_version"] != old || g["judged_by"] != old || g["judged_by_current"] != false {
					t.Errorf("grant judged by %v (recorded %v, current %v)", g["judged_by"], g["policy_version"], g["judged_by_current"])
				}
			}
			// The packet holds the judging policy's extract, which says
			// the role was break-glass, and the manifest covers it.
			var x policyExtract
			b, err := os.ReadFile(filepath.Join(again, "policy-"+old+".json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &x); err != nil || x.SHA256 != old || x.Tenant != "acme" {
				t.Fatalf("extract %+v: %v", x, err)
			}
			found := false
			for _, r := range x.Roles {
				found = found || r.Name == "break-glass" && r.BreakGlass
			}
			if !found {
				t.Errorf("extract does not show the break-glass role: %s", b)
			}
			if m, _ := os.ReadFile(filepath.Join(again, ManifestName)); !bytes.Contains(m, []byte("  policy-"+old+".json\n")) {
				t.Error("the manifest does not cover the policy extract")
			}
			md, _ := os.ReadFile(filepath.Join(again, "summary.md"))
			if !bytes.Contains(md, []byte(old)) {
				t.Error("summary.md does not name the policy that judged it")
			}
			checkTools(t, again, true)
		})
	}
}

// TestRowsWithoutVersionAreJudgedByCurrentPolicyAndMarked: rows written
// before versions were recorded have nothing else to go by.
func TestRowsWithoutVersionAreJudgedByCurrentPolicyAndMarked(t *testing.T) {
	w := october(t) // raw rows, no version, no recorded load
	dir := filepath.Join(t.TempDir(), "p")
	pk := w.build(dir)
	cur := w.cfg.Version()
	want := []PolicyVersion{{SHA256: cur, File: "policy-" + cur + ".json", Path: w.cfg.Path, Grants: 5, EndOfPeriod: true, Current: true}}
	if !reflect.DeepEqual(pk.Summary.PolicyVersions, want) {
		t.Errorf("policy versions = %+v\nwant %+v", pk.Summary.PolicyVersions, want)
	}
	for _, g := range readJSON(t, filepath.Join(dir, "grants.json")) {
		if g["policy_version"] != "" || g["judged_by"] != cur || g["judged_by_current"] != true {
			t.Errorf("legacy grant %v: recorded %q, judged by %v, current %v", g["id"], g["policy_version"], g["judged_by"], g["judged_by_current"])
		}
	}
	md, _ := os.ReadFile(filepath.Join(dir, "summary.md"))
	if !bytes.Contains(md, []byte("CURRENT policy, for what had no recorded version")) {
		t.Error("summary.md does not say the current policy judged unversioned rows")
	}
}

// TestRecordPolicyKeepsEachVersionOnce: every load is an event; the bytes
// are stored once per version, exactly.
func TestRecordPolicyKeepsEachVersionOnce(t *testing.T) {
	sw := newServedWorld(t)
	sw.serve(testPolicyYAML(), "2026-10-02T00:00:00Z")
	sw.serve(testPolicyYAML()+"# edited\n", "2026-10-03T00:00:00Z")
	var n int
	var content []byte
	if err := sw.st.DB().QueryRow(`SELECT COUNT(*) FROM policy_versions`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("policy_versions rows = %d, %v", n, err)
	}
	if err := sw.st.DB().QueryRow(`SELECT content FROM policy_versions WHERE sha256 = ?`, sw.ver).Scan(&content); err != nil ||
		string(content) != testPolicyYAML()+"# edited\n" {
		t.Fatalf("stored content %q, %v", content, err)
	}
	if got := eventTypes(t, sw.world)[EventPolicyLoaded]; got != 3 {
		t.Errorf("%d policy.loaded events, want 3", got)
	}
	if err := sw.st.DB().QueryRow(`SELECT COUNT(*) FROM audit_events WHERE type = ? AND subject = ?`,
		EventPolicyLoaded, "policy:"+sw.ver).Scan(&n); err != nil || n != 1 {
		t.Errorf("events naming the new version = %d, %v", n, err)
	}
	if err := sw.st.Update(sw.ctx, func(tx *audit.Tx) error {
		_, err := tx.Exec(`UPDATE policy_versions SET content = 'x'`)
		return err
	}); err == nil || !strings.Contains(err.Error(), "append-only") {
		t.Error("a stored policy version was rewritten")
	}
	if err := RecordPolicy(sw.ctx, sw.st, &policy.Config{}, UseGateway, time.Time{}); err == nil {
		t.Error("a policy with no version was recorded")
	}
}

// TestEditedRowVersionIsOverruledByTheChain: someone who can write
// warden.db points the break-glass grant at a laxer policy version (one
// that was really loaded, so it parses) to make the emergency disappear
// from the packet. The request.approved event in the hash chain names the
// real version: the packet judges by it and reports the disagreement.
func TestEditedRowVersionIsOverruledByTheChain(t *testing.T) {
	sw := octoberServed(t)
	lax, err := policy.Parse([]byte(strings.Replace(testPolicyYAML(), "    break_glass: true\n", "    privileged: true\n", 1)), sw.path)
	if err != nil {
		t.Fatal(err)
	}
	if err := RecordPolicy(sw.ctx, sw.st, lax, UseEvidence, at("2026-10-20T00:00:00Z")); err != nil {
		t.Fatal(err)
	}
	sw.exec(`UPDATE grants SET policy_version = ? WHERE role = 'break-glass'`, lax.Version())
	pk := sw.build(filepath.Join(t.TempDir(), "p"))
	if len(pk.Summary.BreakGlass) != 1 {
		t.Errorf("break-glass uses = %+v, want the emergency", pk.Summary.BreakGlass)
	}
	if pk.Summary.OverdueByKind[OverdueTampered] != 1 {
		t.Errorf("overdue = %+v, want the tampered grant", pk.Summary.Overdue)
	}
}
