package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/sshtest"
)

// tenantBed is a gateway serving two clients, acme and globex, whose hosts
// are the same sshd (web01 in acme, app01 in globex):
//
//	alice  sysadmins    standing root on acme/web01 and globex/app01
//	bob    helpdesk     eligible for prod-root (acme) and globex-root
//	carol  security     approves prod-root: oversees acme
//	dave   management   approves globex-root: oversees globex
//	tara   acme-audit   audits: [acme]: tenant auditor of acme
//	erin   auditors     oversees every tenant
type tenantBed struct {
	*testbed
	tara *sshtest.Client
}

func newTenantBed(t *testing.T) *tenantBed {
	t.Helper()
	tara := newClient(t, filepath.Join(t.TempDir(), "tara"))
	b := newTestbed(t, bedOptions{
		tenants: func(h *sshtest.Host) string {
			return fmt.Sprintf("  - name: globex\n    hosts:\n      - name: app01\n        address: %q\n        host_key: %q\n",
				h.Addr, authorizedKey(h.HostKey))
		},
		extraGroups: "  - name: acme-audit\n    audits: [acme]\n",
		extraUsers:  fmt.Sprintf("  - name: tara\n    keys: [%q]\n    groups: [acme-audit]\n", authorizedKey(tara.PublicKey)),
		extraRoles: `  - name: globex-admin
    tenant: globex
    hosts: {names: [app01]}
    logins: [root]
    members: [sysadmins]
  - name: globex-root
    tenant: globex
    hosts: {names: [app01]}
    logins: [root]
    privileged: true
    eligible: [helpdesk]
    approvers: [management]
`,
	})
	tara.TrustHost("127.0.0.1:"+b.port, b.hostKey)
	return &tenantBed{testbed: b, tara: tara}
}

// liveIDs lists, by tenant, the live session IDs c sees; code is the exit
// status of `sessions --live`.
func (b *tenantBed) liveIDs(c *sshtest.Client, history bool) (map[string][]string, int) {
	b.t.Helper()
	args := []string{"sessions", "--live", "--json"}
	if history {
		args = []string{"sessions", "--json"}
	}
	out, _, code := b.run(c, "gw", args...)
	if code != 0 {
		return nil, code
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		b.t.Fatalf("sessions: %q", out)
	}
	got := map[string][]string{}
	for _, l := range list {
		got[l["tenant"].(string)] = append(got[l["tenant"].(string)], l["id"].(string))
	}
	return got, 0
}

// sameAnswer requires the answers to a foreign and to an unknown ID to be
// the same bytes once each ID is replaced, and to name neither tenant,
// owner nor role of the foreign object.
func sameAnswer(t *testing.T, what, foreign, foreignID, unknown, unknownID string, leaks ...string) {
	t.Helper()
	norm := func(s, id string) string { return strings.ReplaceAll(s, " "+id+" ", " ID ") }
	if foreign == "" || norm(foreign, foreignID) != norm(unknown, unknownID) {
		t.Errorf("%s: foreign ID answers %q, unknown ID %q", what, foreign, unknown)
	}
	for _, l := range leaks {
		if strings.Contains(foreign, l) {
			t.Errorf("%s: answer %q reveals %q", what, foreign, l)
		}
	}
}

// refused runs a command that must fail with status 1 and returns stderr.
func (b *tenantBed) refused(c *sshtest.Client, args ...string) string {
	b.t.Helper()
	out, errOut, code := b.run(c, "gw", args...)
	if code != 1 || out != "" || strings.Count(errOut, "\n") != 1 {
		b.t.Errorf("%v: code %d stdout %q stderr %q, want one refusal line", args, code, out, errOut)
	}
	return errOut
}

const unknownSession = "aaaaaaaaaaaaaaaaaaaaaaaaaa"

func TestOversightIsScopedByTenant(t *testing.T) {
	b := newTenantBed(t)
	pa := b.alice.StartPTY(t, b.port, "root@acme/web01", 80, 24)
	pa.Send("export PS1='A> '\r")
	pa.Expect(t, `A> $`, expectWait)
	pg := b.alice.StartPTY(t, b.port, "root@globex/app01", 80, 24)
	pg.Send("export PS1='G> '\r")
	pg.Expect(t, `G> $`, expectWait)

	all, _ := b.liveIDs(b.erin, false)
	if len(all["acme"]) != 1 || len(all["globex"]) != 1 {
		t.Fatalf("global auditor sees %v", all)
	}
	acme, globex := all["acme"][0], all["globex"][0]

	// Listing, live and past: each sees only the tenants it oversees.
	for _, history := range []bool{false, true} {
		for _, tc := range []struct {
			who  string
			c    *sshtest.Client
			want string
		}{
			{"carol", b.carol, "acme"}, {"dave", b.dave, "globex"}, {"tara", b.tara, "acme"}, {"erin", b.erin, "acme globex"},
		} {
			got, code := b.liveIDs(tc.c, history)
			var tenants []string
			for tn := range got {
				tenants = append(tenants, tn)
			}
			sort.Strings(tenants)
			if code != 0 || strings.Join(tenants, " ") != tc.want {
				t.Errorf("%s (history %v) sees %v, want %s", tc.who, history, got, tc.want)
			}
		}
	}
	if errOut := b.refused(b.bob, "sessions", "--live"); !strings.Contains(errOut, "only approvers and auditors") {
		t.Errorf("bob: %q", errOut)
	}

	// Watch and kill across tenants: the same answer as for no session.
	for _, tc := range []struct {
		who     string
		c       *sshtest.Client
		foreign string
	}{
		{"carol", b.carol, globex}, {"tara", b.tara, globex}, {"dave", b.dave, acme},
	} {
		for _, cmd := range []string{"watch", "kill"} {
			sameAnswer(t, tc.who+" "+cmd, b.refused(tc.c, cmd, tc.foreign), tc.foreign,
				b.refused(tc.c, cmd, unknownSession), unknownSession, "acme", "globex", "alice", "root")
		}
	}
	if got := b.refused(b.carol, "kill", globex); got != "warden: no live session "+globex+" that you can act on\n" {
		t.Errorf("carol kill: %q", got)
	}
	// Nothing was killed by those attempts.
	if now, _ := b.liveIDs(b.erin, false); len(now["acme"]) != 1 || len(now["globex"]) != 1 {
		t.Fatalf("sessions after refused kills: %v", now)
	}
	b.waitEvent("command.refused", "tenant globex not overseen")

	// The tenant auditor and the approver watch their own tenant.
	for _, c := range []*sshtest.Client{b.tara, b.carol} {
		ctx, cancel := context.WithCancel(testCtx(t))
		watch := c.SSH(ctx, b.port, "gw", "watch", acme)
		var seen safeBuffer
		watch.Stdout = &seen
		if err := watch.Start(); err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(expectWait); !strings.Contains(seen.String(), "watching "+acme); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("watch never started: %q", seen.String())
			}
		}
		cancel()
		_ = watch.Wait()
	}

	// Each kills in its own tenant.
	if out, errOut, code := b.run(b.dave, "gw", "kill", globex); code != 0 || out != "session "+globex+" terminated\n" {
		t.Fatalf("dave kill: %d %q %q", code, out, errOut)
	}
	pg.Expect(t, `session terminated by an administrator`, expectWait)
	if out, errOut, code := b.run(b.tara, "gw", "kill", acme); code != 0 || out != "session "+acme+" terminated\n" {
		t.Fatalf("tara kill: %d %q %q", code, out, errOut)
	}
	pa.Expect(t, `session terminated by an administrator`, expectWait)
	if s := b.waitSessionEnded(globex); s.EndReason != "killed" {
		t.Errorf("globex end %q", s.EndReason)
	}
	if s := b.waitSessionEnded(acme); s.EndReason != "killed" {
		t.Errorf("acme end %q", s.EndReason)
	}
}

func TestExceptionRegisterIsScopedByTenant(t *testing.T) {
	b := newTenantBed(t)
	future := time.Now().UTC().AddDate(0, 1, 0).Format("2006-01-02")
	add := func(c *sshtest.Client, tenant string) (string, string, int) {
		return b.run(c, "gw", "exception", "add", "--tenant", tenant, "--owner", "ops", "--reason", "'legacy app'",
			"--controls", "'weekly review'", "--expires", future)
	}
	idOf := func(out string) string {
		m := regexp.MustCompile(`^exception (\d+) recorded`).FindStringSubmatch(out)
		if m == nil {
			t.Fatalf("add: %q", out)
		}
		return m[1]
	}
	out, _, _ := add(b.carol, "acme")
	xa := idOf(out)
	out, _, _ = add(b.dave, "globex")
	xg := idOf(out)

	// Registering for a tenant one does not oversee answers as for a
	// tenant that does not exist.
	for _, tc := range []struct {
		c      *sshtest.Client
		tenant string
	}{{b.carol, "globex"}, {b.tara, "globex"}, {b.dave, "acme"}} {
		_, foreign, code := add(tc.c, tc.tenant)
		_, unknown, _ := add(tc.c, "nosuch")
		if code != 1 || strings.ReplaceAll(foreign, tc.tenant, "T") != strings.ReplaceAll(unknown, "nosuch", "T") {
			t.Errorf("add for %s: %q vs %q", tc.tenant, foreign, unknown)
		}
	}

	list := func(c *sshtest.Client) string {
		out, errOut, code := b.run(c, "gw", "exceptions", "--json")
		var xs []map[string]any
		if code != 0 || json.Unmarshal([]byte(out), &xs) != nil {
			t.Fatalf("exceptions: %d %q %q", code, out, errOut)
		}
		var ts []string
		for _, x := range xs {
			ts = append(ts, x["tenant"].(string))
		}
		return strings.Join(ts, " ")
	}
	for _, tc := range []struct {
		who  string
		c    *sshtest.Client
		want string
	}{
		{"carol", b.carol, "acme"}, {"dave", b.dave, "globex"}, {"tara", b.tara, "acme"}, {"erin", b.erin, "acme globex"}, {"bob", b.bob, ""},
	} {
		if got := list(tc.c); got != tc.want {
			t.Errorf("%s lists %q, want %q", tc.who, got, tc.want)
		}
	}

	// Closing another tenant's entry: the answer of a missing one, and
	// the entry stays open.
	for _, tc := range []struct {
		c  *sshtest.Client
		id string
	}{{b.carol, xg}, {b.tara, xg}, {b.dave, xa}} {
		sameAnswer(t, "close "+tc.id, b.refused(tc.c, "exception", "close", tc.id, "--note", "x"), tc.id,
			b.refused(tc.c, "exception", "close", "999", "--note", "x"), "999", "acme", "globex", "ops")
	}
	if got := list(b.erin); got != "acme globex" {
		t.Fatalf("after refused closes: %q", got)
	}
	if errOut := b.refused(b.bob, "exception", "close", xa, "--note", "x"); !strings.Contains(errOut, "only approvers and auditors") {
		t.Errorf("bob close: %q", errOut)
	}
	if out, errOut, code := b.run(b.tara, "gw", "exception", "close", xa, "--note", "'app retired'"); code != 0 || out != "exception "+xa+" closed\n" {
		t.Fatalf("tara close: %d %q %q", code, out, errOut)
	}
	if out, errOut, code := b.run(b.erin, "gw", "exception", "close", xg, "--note", "'app retired'"); code != 0 || out != "exception "+xg+" closed\n" {
		t.Fatalf("erin close: %d %q %q", code, out, errOut)
	}
	b.waitEvent("exception.closed", "tara")
}

// Issue 13 item 8: approve, deny, cancel and revoke answer a foreign ID as
// they answer one that does not exist.
func TestIDCommandsDoNotRevealForeignObjects(t *testing.T) {
	b := newTenantBed(t)
	request := func(role string) string {
		out, errOut, code := b.run(b.bob, "gw", "request", role, "--for", "1h", "--reason", "'INC-1'")
		m := regexp.MustCompile(`^request (\d+) opened`).FindStringSubmatch(out)
		if code != 0 || m == nil {
			t.Fatalf("request %s: %d %q %q", role, code, out, errOut)
		}
		return m[1]
	}
	rg := request("globex-root")
	ra := request("prod-root")
	leaks := []string{"bob", "globex", "prod-root", "acme", "pending", "approver", "yours"}
	for _, tc := range []struct {
		who  string
		c    *sshtest.Client
		args []string // the ID goes last but for the flags
		id   string
	}{
		{"carol approves globex's", b.carol, []string{"approve", "ID"}, rg},
		{"carol denies globex's", b.carol, []string{"deny", "ID", "--reason", "no"}, rg},
		{"dave approves acme's", b.dave, []string{"approve", "ID", "--comment", "ok"}, ra},
		{"alice approves", b.alice, []string{"approve", "ID"}, ra},
		{"carol cancels bob's", b.carol, []string{"cancel", "ID"}, ra},
		{"alice cancels bob's", b.alice, []string{"cancel", "ID"}, rg},
	} {
		run := func(id string) string {
			args := append([]string{}, tc.args...)
			args[1] = id
			return b.refused(tc.c, args...)
		}
		sameAnswer(t, tc.who, run(tc.id), tc.id, run("999"), "999", leaks...)
	}
	if got := b.refused(b.carol, "approve", rg); got != "warden: no request "+rg+" that you can act on\n" {
		t.Errorf("carol approve: %q", got)
	}
	// The requests were not touched, and the owner still gets the reason.
	if got := b.refused(b.bob, "approve", ra); got != "warden: you cannot approve your own request\n" {
		t.Errorf("bob approves his own: %q", got)
	}
	out, errOut, code := b.run(b.dave, "gw", "approve", rg)
	g := regexp.MustCompile(`grant (\d+) for bob on globex-root`).FindStringSubmatch(out)
	if code != 0 || g == nil {
		t.Fatalf("dave approve: %d %q %q", code, out, errOut)
	}
	for _, c := range []*sshtest.Client{b.carol, b.alice, b.tara} {
		sameAnswer(t, "revoke", b.refused(c, "revoke", g[1]), g[1], b.refused(c, "revoke", "999"), "999", leaks...)
	}
	if got := b.refused(b.carol, "revoke", g[1]); got != "warden: no grant "+g[1]+" that you can act on\n" {
		t.Errorf("carol revoke: %q", got)
	}
	// Each refusal left an audit event with its real cause.
	b.waitEvent("command.refused", "you are not an approver of globex-root")
	if out, errOut, code := b.run(b.bob, "gw", "grants", "--json"); code != 0 || !strings.Contains(out, `"globex-root"`) {
		t.Fatalf("bob's grant gone: %d %q %q", code, out, errOut)
	}
}
