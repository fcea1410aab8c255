package gateway_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/evidence"
	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/internal/keyfile"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/internal/vaulttest"
	"github.com/warden-gw/warden/jit"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/rotate"
)

// rotBed is a break-glass setup without SSH clients: a real sshd whose
// root reads keysFile and HOMES/%u/authorized_keys2 (Debian reads
// ~/.ssh/authorized_keys2 by default; %u keeps the test out of /root), a
// real Vault KV holding the static key, a database, and policies written
// on demand. Gateways are started and stopped on it at will, as restarts.
type rotBed struct {
	t        *testing.T
	dir      string
	data     string
	host     *sshtest.Host
	vault    *vaulttest.Server
	kv       *api.Client
	keysFile string
	planted  string // root's authorized_keys2
	oldPEM   []byte
	oldLine  string
	users    map[string]*policy.User
	store    *audit.Store
}

func newRotBed(t *testing.T) *rotBed {
	t.Helper()
	b := &rotBed{t: t, dir: t.TempDir()}
	b.data = filepath.Join(b.dir, "data")
	b.vault = vaulttest.Start(t)
	b.kv = b.vault.Client()
	if err := b.kv.Sys().Mount("vaultkv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	homes := filepath.Join(b.dir, "homes")
	b.keysFile = filepath.Join(b.dir, "root_keys")
	b.planted = filepath.Join(homes, "root", "authorized_keys2")
	if err := os.MkdirAll(filepath.Dir(b.planted), 0o700); err != nil {
		t.Fatal(err)
	}
	b.host = sshtest.StartHost(t, sshtest.HostOptions{
		ExtraConfig: "Match all\n    AuthorizedKeysFile " + b.keysFile + " " + filepath.Join(homes, "%u", "authorized_keys2") + "\n",
	})
	var pub string
	b.oldPEM, pub = newKeyPair(t)
	b.oldLine = pub + " breakglass\n"
	if err := os.WriteFile(b.keysFile, []byte(b.oldLine), 0o600); err != nil {
		t.Fatal(err)
	}
	putKVRetry(t, b.kv, map[string]any{"private_key": string(b.oldPEM)})
	var err error
	b.store, err = audit.Open(context.Background(), b.data, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.store.Close() })
	return b
}

// putKVRetry writes the static key; a fresh KV v2 mount refuses writes
// for a moment while it upgrades.
func putKVRetry(t *testing.T, c *api.Client, data map[string]any) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.KVv2("vaultkv").Put(context.Background(), "breakglass/acme", data)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("kv put: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// policy writes and loads a policy. withRole false drops the break-glass
// role (clean-up after the emergency); withHost false drops web01.
func (b *rotBed) policy(withRole, withHost bool) *policy.Config {
	b.t.Helper()
	hosts := fmt.Sprintf(`      - name: web01
        address: %q
        host_key: %q
`, b.host.Addr, authorizedKey(b.host.HostKey))
	if !withHost {
		hosts = fmt.Sprintf(`      - name: web02
        address: "127.0.0.1:1"
        host_key: %q
`, authorizedKey(b.host.HostKey))
	}
	role := ""
	if withRole {
		role = `  - name: break-glass
    tenant: acme
    hosts: {names: [web01]}
    logins: [root]
    break_glass: true
    eligible: [oncall]
    approvers: [security, management]
    credential: {vault_kv: vaultkv/data/breakglass/acme}
`
	}
	keys := map[string]string{}
	for _, u := range []string{"bob", "carol", "dave"} {
		_, pub := newKeyPair(b.t)
		keys[u] = pub
	}
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
host_key: %s
data_dir: %s
credentials:
  backend: builtin
  vault: {address: %q}
tenants:
  - name: acme
    hosts:
%sgroups:
  - name: oncall
  - name: security
  - name: management
users:
  - name: bob
    keys: [%q]
    groups: [oncall]
  - name: carol
    keys: [%q]
    groups: [security]
  - name: dave
    keys: [%q]
    groups: [management]
roles:
  - name: standing
    tenant: acme
    hosts: {names: ["*"]}
    logins: [deploy]
    members: [oncall]
%s`, filepath.Join(b.dir, "gw_host"), b.data, b.vault.Addr, hosts, keys["bob"], keys["carol"], keys["dave"], role)
	p := filepath.Join(b.dir, "warden.yaml")
	if err := os.WriteFile(p, []byte(yaml), 0o600); err != nil {
		b.t.Fatal(err)
	}
	cfg, err := policy.Load(p)
	if err != nil {
		b.t.Fatalf("policy: %v", err)
	}
	return cfg
}

// jit returns a workflow on the bed's store under cfg and clock.
func (b *rotBed) jit(cfg *policy.Config, clk *fakeClock) *jit.Service {
	b.t.Helper()
	opt := jit.Options{Store: b.store, Policy: func() *policy.Config { return cfg }}
	if clk != nil {
		opt.Now, opt.Until = clk.Now, clk.Until
	}
	j, err := jit.New(opt)
	if err != nil {
		b.t.Fatal(err)
	}
	return j
}

// breakGlass requests and approves a break-glass grant for bob.
func (b *rotBed) breakGlass(j *jit.Service, cfg *policy.Config) jit.Grant {
	b.t.Helper()
	ctx := context.Background()
	req, err := j.Request(ctx, cfg.User("bob"), "break-glass", 30*time.Minute, "INC-7 outage", "")
	if err != nil {
		b.t.Fatal(err)
	}
	if _, _, err := j.Approve(ctx, cfg.User("carol"), req.ID, ""); err != nil {
		b.t.Fatal(err)
	}
	_, g, err := j.Approve(ctx, cfg.User("dave"), req.ID, "")
	if err != nil || g == nil {
		b.t.Fatalf("approve: %v %v", g, err)
	}
	return *g
}

// gateway starts a gateway (and so its rotation worker) on the bed; the
// returned func stops it, as a shutdown before a restart.
func (b *rotBed) gateway(cfg *policy.Config, j *jit.Service, rot any, n *alerts, clk *fakeClock) (*gateway.Server, func()) {
	b.t.Helper()
	hk, _, err := keyfile.LoadOrCreateEd25519(cfg.HostKey)
	if err != nil {
		b.t.Fatal(err)
	}
	opt := gateway.Options{Policy: cfg, Store: b.store, Signer: noSigner{}, HostKey: hk, JIT: j}
	if rot != nil {
		opt.Rotator = rot.(interface {
			Rotate(context.Context, rotate.Target) (rotate.Result, error)
		})
	}
	if n != nil {
		opt.Notifier = n
	}
	if clk != nil {
		opt.Now, opt.Until = clk.Now, clk.Until
	}
	gw, err := gateway.New(opt)
	if err != nil {
		b.t.Fatal(err)
	}
	j.OnGrantEnd(gw.GrantEnded)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- gw.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() { once.Do(func() { cancel(); <-done }) }
	b.t.Cleanup(stop)
	return gw, stop
}

// realKV is the rotator warden serve uses, on the bed's host.
func (b *rotBed) realKV() testKV {
	return testKV{c: b.kv, authorizedKeys: b.keysFile, sshdConfig: b.host.ConfigPath}
}

// waitRotation waits until grant id's rotation has made at least attempts
// attempts and is not between them, and returns it.
func (b *rotBed) waitRotation(id int64, attempts int, state string) jit.Rotation {
	b.t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		r, ok, err := jit.LoadRotation(context.Background(), b.store.DB(), id)
		if err == nil && ok && r.Attempts >= attempts && r.State == state {
			return r
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("rotation of grant %d: %+v (ok %v, err %v), want %d attempts and state %s", id, r, ok, err, attempts, state)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// assertRotated checks the outcome on the host and in Vault: the old key
// no longer logs in, the key Vault holds does.
func (b *rotBed) assertRotated() {
	b.t.Helper()
	tb := &testbed{t: b.t, host: b.host}
	if err := directLogin(b.t, tb, b.oldPEM); err == nil {
		b.t.Error("the old break-glass key still logs in")
	}
	sec, err := b.kv.KVv2("vaultkv").Get(context.Background(), "breakglass/acme")
	if err != nil {
		b.t.Fatal(err)
	}
	if err := directLogin(b.t, tb, []byte(fmt.Sprint(sec.Data["private_key"]))); err != nil {
		b.t.Errorf("the key in Vault does not log in: %v", err)
	}
}

// TestRotationOwedByTheGrantSurvivesRoleRemovalAndRestart: the grant ends
// while no gateway runs (a crash), the break-glass role is then removed
// from the policy, which is normal clean-up, and the gateway restarts. The
// rotation recorded at grant start still happens, on the recorded host.
func TestRotationOwedByTheGrantSurvivesRoleRemovalAndRestart(t *testing.T) {
	b := newRotBed(t)
	p1 := b.policy(true, true)
	j1 := b.jit(p1, nil)
	g := b.breakGlass(j1, p1)
	r, ok, err := jit.LoadRotation(context.Background(), b.store.DB(), g.ID)
	if err != nil || !ok || r.Host != "web01" || r.Login != "root" || r.KVPath != "vaultkv/data/breakglass/acme" || r.State != jit.RotationOwed {
		t.Fatalf("rotation recorded at grant start: %+v %v %v", r, ok, err)
	}
	// The grant ends with nobody listening: no rotation runs.
	if _, err := j1.Revoke(context.Background(), p1.User("bob"), g.ID, ""); err != nil {
		t.Fatal(err)
	}
	// A second grant is still running when the gateway stops.
	g2 := b.breakGlass(j1, p1)
	p2 := b.policy(false, true)
	if p2.Role("break-glass") != nil {
		t.Fatal("the role is still in the policy")
	}
	n := &alerts{}
	j2 := b.jit(p2, nil)
	b.gateway(p2, j2, b.realKV(), n, nil)
	// At start the workflow deprovisions the grant the policy no longer
	// allows; that end, too, rotates from the recorded row.
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan struct{})
	go func() { defer close(runDone); j2.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-runDone })
	b.waitRotation(g.ID, 1, jit.RotationDone)
	r2 := b.waitRotation(g2.ID, 1, jit.RotationDone)
	if r2.GrantEndedAt.IsZero() {
		t.Error("the second grant did not end")
	}
	var reason string
	if err := b.store.DB().QueryRow(`SELECT end_reason FROM grants WHERE id = ?`, g2.ID).Scan(&reason); err != nil || reason != "deprovisioned" {
		t.Errorf("second grant end_reason %q %v, want deprovisioned", reason, err)
	}
	b.assertRotated()
	if !n.has("rotated after grant") {
		t.Errorf("no success alert: %v", n.texts())
	}
}

// TestRotationAfterReconcileApply: `warden reconcile --apply` ends an
// unexplained break-glass grant in the database; no end-of-grant hook
// runs there, but the owed row stays, and the next gateway start rotates.
func TestRotationAfterReconcileApply(t *testing.T) {
	b := newRotBed(t)
	p1 := b.policy(true, true)
	g := b.breakGlass(b.jit(p1, nil), p1)
	p2 := b.policy(false, true)
	rec, err := evidence.ApplyReconcile(context.Background(), b.store, p2, evidence.ReconcileOptions{Actor: "auditor"})
	if err != nil || len(rec.Deprovisioned) != 1 || rec.Deprovisioned[0] != g.ID {
		t.Fatalf("reconcile: %+v %v", rec, err)
	}
	owed, err := jit.OwedRotations(context.Background(), b.store.DB())
	if err != nil || len(owed) != 1 || !owed[0].Due() {
		t.Fatalf("owed after reconcile: %+v %v", owed, err)
	}
	b.gateway(p2, b.jit(p2, nil), b.realKV(), nil, nil)
	b.waitRotation(g.ID, 1, jit.RotationDone)
	b.assertRotated()
}

// TestRotationFailsOnAPlantedKeyAndIsRetriedUntilDone: during the grant
// root plants the old key in authorized_keys2, hidden from the gateway's
// address. The rotation fails, stays owed, is alerted and listed; once the
// line is removed, the retry after the backoff (fake clock) succeeds. A
// planted command= on the old line does not reach the new one.
func TestRotationFailsOnAPlantedKeyAndIsRetriedUntilDone(t *testing.T) {
	b := newRotBed(t)
	clk := newFakeClock(time.Now())
	p := b.policy(true, true)
	j := b.jit(p, clk)
	n := &alerts{}
	b.gateway(p, j, b.realKV(), n, clk)
	g := b.breakGlass(j, p)
	// Root, during the grant.
	mark := filepath.Join(b.dir, "backdoor-ran")
	if err := os.WriteFile(b.planted, []byte(`from="!127.0.0.1,*" `+b.oldLine), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.keysFile, []byte(`command="touch `+mark+`; eval \"$SSH_ORIGINAL_COMMAND\"" `+b.oldLine), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := j.Revoke(context.Background(), p.User("bob"), g.ID, "done"); err != nil {
		t.Fatal(err)
	}
	r := b.waitRotation(g.ID, 1, jit.RotationFailed)
	if !strings.Contains(r.LastError, b.planted) {
		t.Errorf("last error %q does not name %s", r.LastError, b.planted)
	}
	if got, want := r.NextAttemptAt.Sub(clk.Now()), gateway.RotationBackoff(1); got > want || got < want-time.Second {
		t.Errorf("next attempt in %s, want %s", got, want)
	}
	n.wait(t, "NOT rotated after grant")
	ev := waitEventIn(t, b.store, jit.EventRotationResult, fmt.Sprintf("grant:%d", g.ID))
	if ev.Data["ok"] != false {
		t.Errorf("rotation.result %v", ev.Data)
	}
	owed, err := jit.OwedRotations(context.Background(), b.store.DB())
	if err != nil || len(owed) != 1 || owed[0].GrantID != g.ID {
		t.Fatalf("owed rotations: %+v %v", owed, err)
	}
	// The evidence packet of the month carries it as overdue.
	month := time.Date(clk.Now().Year(), clk.Now().Month(), 1, 0, 0, 0, 0, time.UTC)
	pk, err := evidence.Build(context.Background(), evidence.Options{Tenant: "acme", Month: month, DataDir: b.data,
		Out: filepath.Join(b.dir, "packet"), Policy: p, Now: func() time.Time { return clk.Now().Add(time.Second) }})
	if err != nil {
		t.Fatal(err)
	}
	if pk.Summary.OverdueByKind[evidence.OverdueRotationOwed] != 1 {
		t.Errorf("overdue %+v, want one %s", pk.Summary.Overdue, evidence.OverdueRotationOwed)
	}

	// Before the backoff has passed nothing is tried again.
	clk.Advance(gateway.RotationBackoff(1) - time.Second)
	time.Sleep(300 * time.Millisecond)
	if r2, _, _ := jit.LoadRotation(context.Background(), b.store.DB(), g.ID); r2.Attempts != 1 {
		t.Fatalf("attempts = %d before the backoff passed", r2.Attempts)
	}
	// Someone cleans up the planted line; the retry succeeds.
	if err := os.WriteFile(b.planted, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Second)
	b.waitRotation(g.ID, 2, jit.RotationDone)
	b.assertRotated()
	n.wait(t, "rotated after grant")
	keys, err := os.ReadFile(b.keysFile)
	if err != nil || strings.Contains(string(keys), "command=") {
		t.Errorf("authorized keys after rotation: %q %v", keys, err)
	}
	os.Remove(mark)
	sec, _ := b.kv.KVv2("vaultkv").Get(context.Background(), "breakglass/acme")
	if err := directLogin(t, &testbed{t: t, host: b.host}, []byte(fmt.Sprint(sec.Data["private_key"]))); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Error("the planted command runs at logins with the new key")
	}
	if owed, _ := jit.OwedRotations(context.Background(), b.store.DB()); len(owed) != 0 {
		t.Errorf("still owed: %+v", owed)
	}
}

// TestRotationRetriesWithBackoffUntilDone: a rotator that fails (a Vault
// that is down, an attempt cut short) is retried at 1m, 2m, 4m... of the
// injected clock; every failure is alerted; a restart in between keeps the
// schedule; the last attempt succeeds.
func TestRotationRetriesWithBackoffUntilDone(t *testing.T) {
	b := &rotBed{t: t, dir: t.TempDir()}
	b.data = filepath.Join(b.dir, "data")
	b.host = &sshtest.Host{Addr: "127.0.0.1:1", HostKey: mustKey(t)}
	b.vault = &vaulttest.Server{Addr: "http://127.0.0.1:1"}
	var err error
	if b.store, err = audit.Open(context.Background(), b.data, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.store.Close() })
	clk := newFakeClock(time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC))
	p := b.policy(true, true)
	j := b.jit(p, clk)
	n := &alerts{}
	rot := &flakyRotator{fails: 3}
	_, stop := b.gateway(p, j, rot, n, clk)
	g := b.breakGlass(j, p)
	if _, err := j.Revoke(context.Background(), p.User("bob"), g.ID, ""); err != nil {
		t.Fatal(err)
	}
	b.waitRotation(g.ID, 1, jit.RotationFailed)
	clk.Advance(time.Minute)
	b.waitRotation(g.ID, 2, jit.RotationFailed)
	// A restart between attempts: the stored next attempt (2m after the
	// second) is kept, not replaced by "now".
	stop()
	j2 := b.jit(p, clk)
	b.gateway(p, j2, rot, n, clk)
	time.Sleep(300 * time.Millisecond)
	if r, _, _ := jit.LoadRotation(context.Background(), b.store.DB(), g.ID); r.Attempts != 2 {
		t.Fatalf("attempts = %d right after the restart, want 2", r.Attempts)
	}
	clk.Advance(2 * time.Minute)
	b.waitRotation(g.ID, 3, jit.RotationFailed)
	clk.Advance(4 * time.Minute)
	r := b.waitRotation(g.ID, 4, jit.RotationDone)
	if r.NewFingerprint != "SHA256:new" {
		t.Errorf("new fingerprint %q", r.NewFingerprint)
	}
	if got := n.count("NOT rotated"); got != 3 {
		t.Errorf("%d failure alerts, want 3: %v", got, n.texts())
	}
	targets := rot.seen()
	for _, tg := range targets {
		if tg.Host.Name != "web01" || tg.Login != "root" || tg.KVPath != "vaultkv/data/breakglass/acme" {
			t.Errorf("target %+v", tg)
		}
	}
	if len(targets) != 4 {
		t.Errorf("%d attempts reached the rotator, want 4", len(targets))
	}
}

// TestRotationOfAHostGoneFromThePolicyFailsLoudly: the recorded host was
// removed from the policy; the rotation is not skipped: it fails, stays
// owed and is alerted, and the rotator is never called on another host.
func TestRotationOfAHostGoneFromThePolicyFailsLoudly(t *testing.T) {
	b := &rotBed{t: t, dir: t.TempDir()}
	b.data = filepath.Join(b.dir, "data")
	b.host = &sshtest.Host{Addr: "127.0.0.1:1", HostKey: mustKey(t)}
	b.vault = &vaulttest.Server{Addr: "http://127.0.0.1:1"}
	var err error
	if b.store, err = audit.Open(context.Background(), b.data, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.store.Close() })
	p1 := b.policy(true, true)
	j1 := b.jit(p1, nil)
	g := b.breakGlass(j1, p1)
	if _, err := j1.Revoke(context.Background(), p1.User("bob"), g.ID, ""); err != nil {
		t.Fatal(err)
	}
	p2 := b.policy(false, false)
	n := &alerts{}
	rot := &flakyRotator{}
	b.gateway(p2, b.jit(p2, nil), rot, n, nil)
	r := b.waitRotation(g.ID, 1, jit.RotationFailed)
	if !strings.Contains(r.LastError, "no longer in the policy") {
		t.Errorf("last error %q", r.LastError)
	}
	n.wait(t, "NOT rotated")
	if len(rot.seen()) != 0 {
		t.Errorf("the rotator was called: %+v", rot.seen())
	}
}

// TestRotationSweepPicksUpAGrantEndedElsewhere: `warden reconcile --apply`
// in another process ends a break-glass grant while the gateway runs; no
// hook tells the gateway, and its sweep (RotationSweep of the injected
// clock) finds the owed rotation.
func TestRotationSweepPicksUpAGrantEndedElsewhere(t *testing.T) {
	b := &rotBed{t: t, dir: t.TempDir()}
	b.data = filepath.Join(b.dir, "data")
	b.host = &sshtest.Host{Addr: "127.0.0.1:1", HostKey: mustKey(t)}
	b.vault = &vaulttest.Server{Addr: "http://127.0.0.1:1"}
	var err error
	if b.store, err = audit.Open(context.Background(), b.data, audit.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.store.Close() })
	clk := newFakeClock(time.Date(2026, 12, 2, 8, 0, 0, 0, time.UTC))
	p1 := b.policy(true, true)
	j := b.jit(p1, clk)
	rot := &flakyRotator{}
	b.gateway(p1, j, rot, nil, clk)
	g := b.breakGlass(j, p1)
	p2 := b.policy(false, true)
	if _, err := evidence.ApplyReconcile(context.Background(), b.store, p2, evidence.ReconcileOptions{Now: clk.Now}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if len(rot.seen()) != 0 {
		t.Fatal("rotated before the sweep: something told the gateway")
	}
	clk.Advance(gateway.RotationSweep)
	b.waitRotation(g.ID, 1, jit.RotationDone)
}
