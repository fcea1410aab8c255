package evidence

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/exceptions"
	"github.com/warden-gw/warden/policy"
)

// clock is a settable clock shared by the store and the code under test.
type clock struct{ ns atomic.Int64 }

func newClock(t time.Time) *clock { c := &clock{}; c.Set(t); return c }
func (c *clock) Now() time.Time   { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) Set(t time.Time)  { c.ns.Store(t.UnixNano()) }
func at(s string) time.Time       { t, _ := time.Parse(time.RFC3339, s); return t }
func stamp(t testing.TB, s string) string {
	t.Helper()
	v, err := audit.Time(at(s))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// keyLine is a fixed ed25519 public key in authorized_keys form.
func keyLine(seed byte) string {
	pub := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize)).Public()
	k, err := ssh.NewPublicKey(pub)
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// testPolicy: acme with a privileged role and a break-glass role, beta
// with one privileged role. gina is eligible and never activates.
func testPolicyYAML() string {
	return strings.NewReplacer("$HOST", keyLine(9), "$K1", keyLine(1), "$K2", keyLine(2), "$K3", keyLine(3),
		"$K4", keyLine(4), "$K5", keyLine(5), "$K6", keyLine(6)).Replace(`
tenants:
  - name: acme
    hosts:
      - {name: web01, address: "127.0.0.1:22", host_key: "$HOST", labels: {env: prod, tier: web}}
  - name: beta
    hosts:
      - {name: web01, address: "127.0.0.2:22", host_key: "$HOST", labels: {env: prod}}
groups:
  - name: sysadmins
  - name: security
  - name: helpdesk
  - name: oncall
  - name: management
users:
  - {name: alice, keys: ["$K1"], groups: [sysadmins]}
  - {name: bob, keys: ["$K2"], groups: [helpdesk]}
  - {name: carol, keys: ["$K3"], groups: [security]}
  - {name: dave, keys: ["$K4"], groups: [oncall, sysadmins]}
  - {name: erin, keys: ["$K5"], groups: [management]}
  - {name: gina, keys: ["$K6"], groups: [sysadmins]}
roles:
  - {name: web-deploy, tenant: acme, hosts: {labels: {tier: web}}, logins: [deploy], members: [helpdesk]}
  - name: prod-root
    tenant: acme
    hosts: {labels: {env: prod}}
    logins: [root]
    privileged: true
    eligible: [sysadmins]
    approvers: [security]
    max_duration: 2h
  - name: break-glass
    tenant: acme
    hosts: {names: ["*"]}
    logins: [root]
    break_glass: true
    eligible: [oncall]
    approvers: [security, management]
  - name: beta-root
    tenant: beta
    hosts: {names: ["*"]}
    logins: [root]
    privileged: true
    eligible: [sysadmins]
    approvers: [security]
`)
}

func testPolicy(t testing.TB) *policy.Config {
	t.Helper()
	cfg, err := policy.Parse([]byte(testPolicyYAML()), "warden.yaml")
	if err != nil {
		t.Fatalf("test policy: %v", err)
	}
	return cfg
}

// world is a data directory with a real store, a clock and a policy.
type world struct {
	t     testing.TB
	dir   string
	clk   *clock
	st    *audit.Store
	cfg   *policy.Config
	reg   *exceptions.Register
	ctx   context.Context
	recID int
	ver   string        // policy version that sessions record; "" for none
	be    audit.Backend // the store's database; zero: SQLite in dir
}

func newWorld(t testing.TB, start time.Time) *world {
	return newWorldOn(t, start, audit.Backend{})
}

// newWorldOn is newWorld with the store in backend b.
func newWorldOn(t testing.TB, start time.Time, b audit.Backend) *world {
	t.Helper()
	w := &world{t: t, dir: t.TempDir(), clk: newClock(start), cfg: testPolicy(t), ctx: context.Background(), be: b}
	st, err := audit.Open(w.ctx, w.dir, audit.Options{Now: w.clk.Now, Backend: b})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w.st = st
	w.reg = &exceptions.Register{Store: st, DB: st.DB(), Now: w.clk.Now}
	return w
}

// exec runs SQL through the writer.
func (w *world) exec(query string, args ...any) {
	w.t.Helper()
	if err := w.st.Update(w.ctx, func(tx *audit.Tx) error {
		_, err := tx.Exec(query, args...)
		return err
	}); err != nil {
		w.t.Fatalf("%s: %v", query, err)
	}
}

// request stores a request with its events, as package jit writes them:
// audit.CheckRows, which the packet runs, compares the rows with them. A
// denied request's closing event is its denial (decide).
func (w *world) request(id int, user, role, tenant, state, created, decided string) {
	w.t.Helper()
	var dec any
	if decided != "" {
		dec = stamp(w.t, decided)
	}
	data := map[string]any{"request_id": id, "user": user, "role": role, "tenant": tenant, "reason": "INC-1", "duration": "1h0m0s"}
	w.withEvents(`INSERT INTO requests (id, user, role, tenant, reason, ticket, duration, state, created_at, decided_at)
		VALUES (?, ?, ?, ?, 'INC-1', NULL, '1h0m0s', ?, ?, ?)`, []any{id, user, role, tenant, state, stamp(w.t, created), dec},
		audit.Event{TS: at(created), Type: "request.created", Subject: fmt.Sprintf("request:%d", id), Data: data})
	if state != "pending" && state != "denied" {
		w.withEvents("", nil, audit.Event{TS: at(decided), Type: "request." + state, Subject: fmt.Sprintf("request:%d", id), Data: data})
	}
}

// decide stores an approver's decision with its event (approval.recorded,
// or request.denied, which also closes the request).
func (w *world) decide(req int, approver, decision, ts string) {
	w.t.Helper()
	typ := "approval.recorded"
	if decision == "denied" {
		typ = "request.denied"
	}
	w.withEvents(`INSERT INTO approvals (request_id, approver, decision, comment, ts) VALUES (?, ?, ?, NULL, ?)`,
		[]any{req, approver, decision, stamp(w.t, ts)},
		audit.Event{TS: at(ts), Type: typ, Subject: fmt.Sprintf("request:%d", req), Data: map[string]any{"request_id": req, "approver": approver}})
}

// withEvents runs query (none when "") and appends evs in one write.
func (w *world) withEvents(query string, args []any, evs ...audit.Event) {
	w.t.Helper()
	if err := w.st.Update(w.ctx, func(tx *audit.Tx) error {
		if query != "" {
			if _, err := tx.Exec(query, args...); err != nil {
				return err
			}
		}
		for _, e := range evs {
			e.Actor = "warden"
			if err := tx.Append(e); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		w.t.Fatalf("%s: %v", query, err)
	}
}

func (w *world) grant(id int, req any, user, role, tenant, starts, expires, ended, reason string) {
	w.t.Helper()
	var e, r any
	if ended != "" {
		e, r = stamp(w.t, ended), reason
	}
	// With its events, as package jit writes them: audit verify checks
	// every grants row against its grant.started and end events.
	err := w.st.Update(w.ctx, func(tx *audit.Tx) error {
		if _, err := tx.Exec(`INSERT INTO grants (id, request_id, user, role, tenant, starts_at, expires_at, ended_at, end_reason)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, id, req, user, role, tenant, stamp(w.t, starts), stamp(w.t, expires), e, r); err != nil {
			return err
		}
		data := map[string]any{"grant_id": id, "user": user, "role": role, "tenant": tenant,
			"starts_at": stamp(w.t, starts), "expires_at": stamp(w.t, expires)}
		if req != nil {
			data["request_id"] = req
		}
		if err := tx.Append(audit.Event{TS: at(starts), Type: "grant.started", Actor: "warden", Subject: fmt.Sprintf("grant:%d", id), Data: data}); err != nil {
			return err
		}
		if ended == "" {
			return nil
		}
		return tx.Append(audit.Event{TS: at(ended), Type: "grant." + reason, Actor: "warden", Subject: fmt.Sprintf("grant:%d", id),
			Data: map[string]any{"grant_id": id, "ended_at": stamp(w.t, ended), "end_reason": reason}})
	})
	if err != nil {
		w.t.Fatalf("grant %d: %v", id, err)
	}
}

// session records a session with a recording and its commands; ended ""
// leaves it open. Commands are "text" or "!text" for a denied one.
func (w *world) session(id, user, tenant string, grant int64, started, ended string, cmds ...string) {
	w.t.Helper()
	start := at(started)
	rel := "recordings/" + start.Format(time.DateOnly) + "/" + id + ".cast"
	body := []byte(`{"version":2,"width":80,"height":24}` + "\n" + `[0.1,"o","hello ` + id + `\r\n"]` + "\n")
	if err := os.MkdirAll(filepath.Join(w.dir, filepath.Dir(rel)), 0o700); err != nil {
		w.t.Fatal(err)
	}
	writeFile(w.t, filepath.Join(w.dir, rel), body)
	role := "web-deploy"
	if grant != 0 {
		role = "prod-root"
	}
	if err := w.st.StartSession(w.ctx, audit.Session{ID: id, User: user, Login: "root", Host: "web01", Tenant: tenant,
		Role: role, GrantID: grant, ClientAddr: "192.0.2.1:5555", StartedAt: start, RecordingPath: rel,
		PolicyVersion: w.ver}); err != nil {
		w.t.Fatal(err)
	}
	for i, c := range cmds {
		action, rule := audit.ActionAllowed, ""
		if text, denied := strings.CutPrefix(c, "!"); denied {
			c, action, rule = text, audit.ActionDenied, "^rm -rf /"
		}
		if err := w.st.LogCommand(w.ctx, audit.Command{SessionID: id, TS: start.Add(time.Duration(i+1) * time.Second),
			User: user, Login: "root", Host: "web01", Tenant: tenant, Source: audit.SourceShell, Command: c,
			Action: action, Rule: rule}); err != nil {
			w.t.Fatal(err)
		}
	}
	if ended == "" {
		return
	}
	sum := sha256.Sum256(body)
	zero := 0
	if err := w.st.EndSession(w.ctx, id, audit.SessionEnd{EndedAt: at(ended), Reason: "exit", ExitStatus: &zero,
		RecordingSHA256: hex.EncodeToString(sum[:]), BytesIn: 10, BytesOut: int64(len(body))}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) event(ts, typ, subject string, data map[string]any) {
	w.t.Helper()
	if err := w.st.Append(w.ctx, audit.Event{TS: at(ts), Type: typ, Actor: "warden", Subject: subject, Data: data}); err != nil {
		w.t.Fatal(err)
	}
}

func (w *world) exception(now, tenant, owner, expires string) exceptions.Exception {
	w.t.Helper()
	w.clk.Set(at(now))
	e, err := w.reg.Add(w.ctx, exceptions.Exception{Tenant: tenant, Owner: owner, Reason: "legacy agent needs root",
		Controls: "IP allow-list; weekly review", ExpiresAt: at(expires), CreatedBy: "carol"})
	if err != nil {
		w.t.Fatal(err)
	}
	return e
}

func (w *world) closeException(now string, id int64) {
	w.t.Helper()
	w.clk.Set(at(now))
	if _, err := w.reg.Close(w.ctx, id, "carol", "fixed"); err != nil {
		w.t.Fatal(err)
	}
}

// october seeds the month 2026-10 of tenant acme (and some of beta, which
// acme's packet must never show). The comments give the expected figures.
func october(t testing.TB) *world { return octoberOn(t, audit.Backend{}) }

// octoberOn is october with the store in backend be.
func octoberOn(t testing.TB, be audit.Backend) *world {
	w := newWorldOn(t, at("2026-10-01T00:00:00Z"), be)
	// Exceptions: 1 expires in the month, 2 stays open, 3 is closed in the
	// month, 4 is closed only after it, 5 belongs to beta.
	w.exception("2026-10-01T08:00:00Z", "acme", "alice", "2026-10-20T00:00:00Z")
	w.exception("2026-10-02T08:00:00Z", "acme", "bob", "2026-12-01T00:00:00Z")
	e3 := w.exception("2026-10-02T09:00:00Z", "acme", "bob", "2026-12-01T00:00:00Z")
	e4 := w.exception("2026-10-02T10:00:00Z", "acme", "dave", "2026-12-01T00:00:00Z")
	w.exception("2026-10-02T11:00:00Z", "beta", "alice", "2026-12-01T00:00:00Z")
	w.closeException("2026-10-15T00:00:00Z", e3.ID)

	// Request 1: approved, grant 1 relinquished after 1h; two sessions,
	// the second's recording is altered afterwards.
	w.request(1, "alice", "prod-root", "acme", "approved", "2026-10-03T09:00:00Z", "2026-10-03T09:05:00Z")
	w.decide(1, "carol", "approved", "2026-10-03T09:05:00Z")
	w.grant(1, 1, "alice", "prod-root", "acme", "2026-10-03T09:05:00Z", "2026-10-03T11:05:00Z", "2026-10-03T10:05:00Z", "relinquished")
	w.session("s1", "alice", "acme", 1, "2026-10-03T09:10:00Z", "2026-10-03T09:40:00Z", "uptime", "!rm -rf /", "id")
	w.session("s6", "alice", "acme", 1, "2026-10-03T09:45:00Z", "2026-10-03T09:50:00Z", "whoami")
	// Request 2: denied.
	w.request(2, "alice", "prod-root", "acme", "denied", "2026-10-05T09:00:00Z", "2026-10-05T09:30:00Z")
	w.decide(2, "carol", "denied", "2026-10-05T09:30:00Z")
	// Request 3: break-glass, two approvers, grant 2 expired, rotation failed.
	w.request(3, "dave", "break-glass", "acme", "approved", "2026-10-10T11:50:00Z", "2026-10-10T12:00:00Z")
	w.decide(3, "carol", "approved", "2026-10-10T11:55:00Z")
	w.decide(3, "erin", "approved", "2026-10-10T12:00:00Z")
	w.grant(2, 3, "dave", "break-glass", "acme", "2026-10-10T12:00:00Z", "2026-10-10T13:00:00Z", "2026-10-10T13:00:00Z", "expired")
	w.session("s2", "dave", "acme", 2, "2026-10-10T12:05:00Z", "2026-10-10T12:50:00Z", "systemctl restart nginx", "!rm -rf /var")
	w.event("2026-10-10T13:01:00Z", EventRotation, "grant:2", map[string]any{"ok": false, "error": "authorized_keys not writable"})
	// A standing session: not privileged.
	w.session("s3", "bob", "acme", 0, "2026-10-12T10:00:00Z", "2026-10-12T10:20:00Z", "ls")
	// Grant 6: a role that is gone; reconciliation ends it on the 25th and
	// flags gina, who never activated.
	w.grant(6, nil, "bob", "old-role", "acme", "2026-10-15T00:00:00Z", "2026-11-15T00:00:00Z", "", "")
	w.clk.Set(at("2026-10-25T00:00:00Z"))
	if _, err := ApplyReconcile(w.ctx, w.st, w.cfg, ReconcileOptions{Tenant: "acme", Now: w.clk.Now}); err != nil {
		t.Fatal(err)
	}
	// Request 5: pending since the 20th, past its 24h TTL at the end.
	w.request(5, "alice", "prod-root", "acme", "pending", "2026-10-20T09:00:00Z", "")
	// Grant 7: bob is not eligible for prod-root: unexplained at the end.
	w.grant(7, nil, "bob", "prod-root", "acme", "2026-10-26T00:00:00Z", "2026-11-26T00:00:00Z", "", "")
	// Request 4: approved on the 31st, grant 3 revoked on Nov 1st: active
	// at the end of October, as is the session under it.
	w.request(4, "alice", "prod-root", "acme", "approved", "2026-10-31T23:00:00Z", "2026-10-31T23:10:00Z")
	w.decide(4, "carol", "approved", "2026-10-31T23:10:00Z")
	w.grant(3, 4, "alice", "prod-root", "acme", "2026-10-31T23:10:00Z", "2026-11-01T01:10:00Z", "2026-11-01T00:30:00Z", "revoked")
	w.session("s4", "alice", "acme", 3, "2026-10-31T23:15:00Z", "2026-11-01T00:30:00Z", "tail -f /var/log/syslog")
	// Request 6: created on the 31st, denied on Nov 1st: pending at the end.
	w.request(6, "alice", "prod-root", "acme", "denied", "2026-10-31T22:00:00Z", "2026-11-01T08:00:00Z")
	w.decide(6, "carol", "denied", "2026-11-01T08:00:00Z")
	// After the month: exception 4 closed, a November session.
	w.closeException("2026-11-05T00:00:00Z", e4.ID)
	w.session("s7", "alice", "acme", 0, "2026-11-02T10:00:00Z", "2026-11-02T10:10:00Z", "date")
	// Beta's rows.
	w.request(10, "alice", "beta-root", "beta", "approved", "2026-10-04T09:00:00Z", "2026-10-04T09:01:00Z")
	w.decide(10, "carol", "approved", "2026-10-04T09:01:00Z")
	w.grant(10, 10, "alice", "beta-root", "beta", "2026-10-04T09:01:00Z", "2026-10-04T10:01:00Z", "2026-10-04T10:01:00Z", "expired")
	w.session("b1", "alice", "beta", 10, "2026-10-04T09:02:00Z", "2026-10-04T09:30:00Z", "cat /etc/beta-secret")

	// Alter s6's recording after its digest was stored.
	p := filepath.Join(w.dir, "recordings", "2026-10-03", "s6.cast")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-3] ^= 1
	writeFile(t, p, b)
	w.clk.Set(at("2026-11-15T12:00:00Z"))
	return w
}

// build makes acme's October packet into a fresh directory.
func (w *world) build(out string) *Packet {
	w.t.Helper()
	pk, err := Build(w.ctx, Options{DataDir: w.dir, Backend: w.be, Tenant: "acme", Month: at("2026-10-01T00:00:00Z"), Out: out,
		Policy: w.cfg, Now: w.clk.Now})
	if err != nil {
		w.t.Fatalf("Build: %v", err)
	}
	return pk
}
