package jit

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/notify"
	"github.com/warden-gw/warden/policy"
)

// t0 is the start of every test clock.
var t0 = time.Date(2026, 11, 29, 9, 0, 0, 0, time.UTC)

// hostKey is a fixed ed25519 host key line for the test policy.
func hostKey() string {
	k, err := ssh.NewPublicKey(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize)).Public())
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
}

// approverCount is how many extra security approvers (appr01...) the test
// policy has, for the concurrency tests.
const approverCount = 20

// policyYAML is the test policy. Options change it for policy-reload tests:
// each is a "old=>new" replacement of its text.
//
//	alice, bob   sysadmins          eligible for prod-root and db-admin
//	sam          sysadmins+security eligible and approver of prod-root
//	carol, dan   security           approve prod-root, db-admin, break-glass
//	erin         management         approves db-admin and break-glass
//	oscar        oncall             eligible for break-glass
//	olga         oncall+security    eligible and approver of break-glass
//	hank         helpdesk           standing web-deploy only
//	appr01..20   security
func policyYAML(edits ...string) string {
	var users strings.Builder
	for i := 1; i <= approverCount; i++ {
		fmt.Fprintf(&users, "  - {name: appr%02d, groups: [security]}\n", i)
	}
	src := `groups: [{name: sysadmins}, {name: security}, {name: management}, {name: oncall}, {name: helpdesk}]
tenants:
  - name: acme
    hosts:
      - {name: web01, address: 10.0.0.1, host_key: 'HOSTKEY', labels: {env: prod, tier: web}}
users:
  - {name: alice, groups: [sysadmins]}
  - {name: bob, groups: [sysadmins]}
  - {name: sam, groups: [sysadmins, security]}
  - {name: carol, groups: [security]}
  - {name: dan, groups: [security]}
  - {name: erin, groups: [management]}
  - {name: oscar, groups: [oncall]}
  - {name: olga, groups: [oncall, security]}
  - {name: hank, groups: [helpdesk]}
` + users.String() + `roles:
  - {name: web-deploy, tenant: acme, hosts: {labels: {tier: web}}, logins: [deploy], members: [helpdesk]}
  - name: prod-root
    tenant: acme
    hosts: {labels: {env: prod}}
    logins: [root]
    privileged: true
    eligible: [sysadmins]
    approvers: [security]
    approvals: 1
    max_duration: 2h
    request_ttl: 1h
    require_reason: true
  - name: db-admin
    tenant: acme
    hosts: {names: [web01]}
    logins: [postgres]
    privileged: true
    eligible: [sysadmins]
    approvers: [security, management]
    approvals: 2
    max_duration: 4h
    require_reason: false
    require_ticket: true
  - name: break-glass
    tenant: acme
    hosts: {names: ["*"]}
    logins: [root]
    break_glass: true
    eligible: [oncall]
    approvers: [security, management]
`
	src = strings.Replace(src, "HOSTKEY", hostKey(), 1)
	for _, e := range edits {
		old, repl, ok := strings.Cut(e, "=>")
		if !ok || !strings.Contains(src, old) {
			panic("policy edit does not apply: " + e)
		}
		src = strings.Replace(src, old, repl, 1)
	}
	return src
}

// mustPolicy parses the test policy with edits.
func mustPolicy(t testing.TB, edits ...string) *policy.Config {
	t.Helper()
	c, err := policy.Parse([]byte(policyYAML(edits...)), "warden.yaml")
	if err != nil {
		t.Fatalf("test policy: %v", err)
	}
	return c
}

// fakeClock is a manual clock whose timers fire when the clock is moved to
// or past their deadline. It is safe for concurrent use.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	armed   chan struct{} // closed and replaced whenever a timer is armed
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

func newClock(at time.Time) *fakeClock { return &fakeClock{now: at, armed: make(chan struct{})} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Until fires when the clock reaches at.
func (c *fakeClock) Until(at time.Time) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if !at.After(c.now) {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at, ch})
	close(c.armed)
	c.armed = make(chan struct{})
	return ch
}

// Set moves the clock to at and fires the timers that are due.
func (c *fakeClock) Set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = at
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if at.Before(w.at) {
			kept = append(kept, w)
			continue
		}
		w.ch <- at
	}
	c.waiters = kept
}

// Advance moves the clock forward by d.
func (c *fakeClock) Advance(d time.Duration) { c.Set(c.Now().Add(d)) }

// WaitArmed waits until a timer for at has been armed, which means Run has
// chosen that deadline as its next one. Run may arm the same deadline again
// after a wake-up; every such timer fires when the clock reaches at.
func (c *fakeClock) WaitArmed(t testing.TB, at time.Time) {
	t.Helper()
	guard := time.After(30 * time.Second) // a hang guard, not a timing check
	for {
		c.mu.Lock()
		armed := c.armed
		for _, w := range c.waiters {
			if w.at.Equal(at) {
				c.mu.Unlock()
				return
			}
		}
		c.mu.Unlock()
		select {
		case <-armed:
		case <-guard:
			t.Fatalf("no timer was armed for %s", at.Format(time.RFC3339Nano))
		}
	}
}

// recorder is a Notifier that keeps what it was sent.
type recorder struct {
	mu     sync.Mutex
	events []notify.Event
	ch     chan notify.Event
}

func newRecorder() *recorder { return &recorder{ch: make(chan notify.Event, 100)} }

func (r *recorder) Notify(_ context.Context, ev notify.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
	r.ch <- ev
}

// ofType returns the notifications of type typ sent so far.
func (r *recorder) ofType(typ string) []notify.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []notify.Event
	for _, ev := range r.events {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// next waits for the next notification of type typ.
func (r *recorder) next(t testing.TB, typ string) notify.Event {
	t.Helper()
	guard := time.After(30 * time.Second)
	for {
		select {
		case ev := <-r.ch:
			if ev.Type == typ {
				return ev
			}
		case <-guard:
			t.Fatalf("no %s notification", typ)
		}
	}
}

// env is a Service on a real store in a temporary directory, with a fake
// clock, a recording notifier and a swappable policy.
type env struct {
	t      testing.TB
	dir    string
	store  *audit.Store
	clock  *fakeClock
	pol    atomic.Pointer[policy.Config]
	notes  *recorder
	svc    *Service
	ends   chan Grant // every grant passed to OnGrantEnd
	cancel context.CancelFunc
	done   chan error
}

// newEnv opens a fresh environment at t0.
func newEnv(t testing.TB) *env {
	t.Helper()
	return openEnv(t, t.TempDir(), newClock(t0), mustPolicy(t))
}

// openEnv opens a Service on the store in dir.
func openEnv(t testing.TB, dir string, clock *fakeClock, pol *policy.Config) *env {
	t.Helper()
	return openEnvWith(t, dir, audit.Options{Now: clock.Now}, clock, pol)
}

// openEnvWith opens a Service on the store opt describes (cluster_test.go:
// two gateways on one PostgreSQL database).
func openEnvWith(t testing.TB, dir string, opt audit.Options, clock *fakeClock, pol *policy.Config) *env {
	t.Helper()
	store, err := audit.Open(context.Background(), dir, opt)
	if err != nil {
		t.Fatalf("audit.Open: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	e := &env{t: t, dir: dir, store: store, clock: clock, notes: newRecorder(), ends: make(chan Grant, 100)}
	e.pol.Store(pol)
	e.svc, err = New(Options{Store: store, Policy: e.pol.Load, Now: clock.Now, Until: clock.Until, Notifier: e.notes})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.OnGrantEnd(func(g Grant) { e.ends <- g })
	return e
}

// run starts Run; it is stopped at cleanup (or by stop).
func (e *env) run() {
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- e.svc.Run(ctx) }()
	e.t.Cleanup(e.stop)
}

// stop stops Run and checks it returned nil.
func (e *env) stop() {
	if e.cancel == nil {
		return
	}
	e.cancel()
	if err := <-e.done; err != nil {
		e.t.Errorf("Run: %v", err)
	}
	e.cancel = nil
}

// close stops Run and closes the store, as a gateway shutdown would.
func (e *env) close() {
	e.stop()
	if err := e.store.Close(); err != nil {
		e.t.Fatal(err)
	}
}

// user returns the current policy's user of that name.
func (e *env) user(name string) *policy.User {
	u := e.pol.Load().User(name)
	if u == nil {
		e.t.Fatalf("no user %s in the test policy", name)
	}
	return u
}

// request opens a request that must succeed.
func (e *env) request(user, role string, d time.Duration, reason, ticket string) Request {
	e.t.Helper()
	r, err := e.svc.Request(context.Background(), e.user(user), role, d, reason, ticket)
	if err != nil {
		e.t.Fatalf("Request(%s, %s): %v", user, role, err)
	}
	return r
}

// approve approves a request and must succeed.
func (e *env) approve(approver string, id int64) (Request, *Grant) {
	e.t.Helper()
	r, g, err := e.svc.Approve(context.Background(), e.user(approver), id, "")
	if err != nil {
		e.t.Fatalf("Approve(%s, %d): %v", approver, id, err)
	}
	return r, g
}

// grant opens and approves a prod-root request by alice for d.
func (e *env) grant(d time.Duration) Grant {
	e.t.Helper()
	r := e.request("alice", "prod-root", d, "INC-4711", "")
	_, g := e.approve("carol", r.ID)
	if g == nil {
		e.t.Fatal("approval did not start a grant")
	}
	return *g
}

// nextEnd waits for the next OnGrantEnd callback.
func (e *env) nextEnd() Grant {
	e.t.Helper()
	select {
	case g := <-e.ends:
		return g
	case <-time.After(30 * time.Second): // a hang guard, not a timing check
		e.t.Fatal("no grant ended")
		return Grant{}
	}
}

// events returns the audit events of typ, oldest first.
func (e *env) events(typ string) []audit.Event {
	e.t.Helper()
	all, err := e.store.Events(context.Background(), 0, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	var out []audit.Event
	for _, ev := range all {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

// count runs a COUNT(*) query on the read pool.
func (e *env) count(query string, args ...any) int {
	e.t.Helper()
	var n int
	if err := e.store.DB().QueryRow(query, args...).Scan(&n); err != nil {
		e.t.Fatal(err)
	}
	return n
}

// loadGrant reads a grant from the read pool.
func (e *env) grantRow(id int64) Grant {
	e.t.Helper()
	g, err := loadGrant(dbQuerier{context.Background(), e.store.DB()}, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return g
}

// requestRow reads a request from the read pool.
func (e *env) requestRow(id int64) Request {
	e.t.Helper()
	r, err := loadRequest(dbQuerier{context.Background(), e.store.DB()}, id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// verifyChain checks the audit hash chain of the environment's store.
func (e *env) verifyChain() {
	e.t.Helper()
	rep, err := audit.Verify(context.Background(), e.dir)
	if err != nil || len(rep.Problems) > 0 {
		e.t.Fatalf("audit.Verify: %+v %v", rep, err)
	}
}

// wantRefusal checks that err is an *Error of kind with message msg.
func wantRefusal(t testing.TB, err error, kind error, msg string) {
	t.Helper()
	got, ok := UserMessage(err)
	if !ok {
		t.Fatalf("error %v is not a user-facing refusal (want %q)", err, msg)
	}
	if got != msg {
		t.Errorf("message = %q\n      want %q", got, msg)
	}
	if kind != nil && !isKind(err, kind) {
		t.Errorf("error %q does not match %v", got, kind)
	}
}

// isKind reports whether err matches kind and none of the other sentinels.
func isKind(err, kind error) bool {
	for _, k := range []error{ErrNotFound, ErrForbidden, ErrInvalid, ErrState} {
		if (k == kind) != errors.Is(err, k) {
			return false
		}
	}
	return true
}
