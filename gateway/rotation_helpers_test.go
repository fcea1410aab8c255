package gateway_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/notify"
	"github.com/warden-gw/warden/rotate"
	"github.com/warden-gw/warden/vault"
)

// Fakes of the rotation tests: a rotator, a webhook, a clock and a signer.

// flakyRotator fails its first fails attempts, then succeeds.
type flakyRotator struct {
	mu      sync.Mutex
	fails   int
	targets []rotate.Target
}

func (f *flakyRotator) Rotate(_ context.Context, t rotate.Target) (rotate.Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.targets = append(f.targets, t)
	if len(f.targets) <= f.fails {
		return rotate.Result{OldFingerprint: "SHA256:old"}, &rotate.StepError{Step: rotate.StepFetch, Err: errors.New("vault unavailable")}
	}
	return rotate.Result{OldFingerprint: "SHA256:old", NewFingerprint: "SHA256:new", Steps: []string{rotate.StepCheck}}, nil
}

func (f *flakyRotator) seen() []rotate.Target {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]rotate.Target(nil), f.targets...)
}

// alerts records webhook events.
type alerts struct {
	mu  sync.Mutex
	evs []notify.Event
}

func (a *alerts) Notify(_ context.Context, ev notify.Event) {
	a.mu.Lock()
	a.evs = append(a.evs, ev)
	a.mu.Unlock()
}

func (a *alerts) texts() []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, e := range a.evs {
		out = append(out, e.Text)
	}
	return out
}

func (a *alerts) count(substr string) int {
	n := 0
	for _, s := range a.texts() {
		if strings.Contains(s, substr) {
			n++
		}
	}
	return n
}

func (a *alerts) has(substr string) bool { return a.count(substr) > 0 }

func (a *alerts) wait(t *testing.T, substr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !a.has(substr) {
		if time.Now().After(deadline) {
			t.Fatalf("no alert containing %q: %v", substr, a.texts())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeClock is an injected clock whose timers fire when Advance passes
// their time.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []clockWaiter
}

type clockWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock(t time.Time) *fakeClock { return &fakeClock{now: t.UTC()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Until(t time.Time) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if !c.now.Before(t) {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, clockWaiter{t, ch})
	return ch
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !c.now.Before(w.at) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// noSigner refuses certificates: these tests open no sessions.
type noSigner struct{}

func (noSigner) Sign(context.Context, vault.SignRequest) (*vault.Credential, error) {
	return nil, errors.New("no sessions in this test")
}

func mustKey(t *testing.T) gossh.PublicKey {
	t.Helper()
	_, pub := newKeyPair(t)
	k, _, _, _, err := gossh.ParseAuthorizedKey([]byte(pub))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// waitEventIn waits for an event of typ about subject in st.
func waitEventIn(t *testing.T, st *audit.Store, typ, subject string) audit.Event {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		all, err := st.Events(context.Background(), 0, 100000)
		if err != nil {
			t.Fatal(err)
		}
		for i := len(all) - 1; i >= 0; i-- {
			if all[i].Type == typ && all[i].Subject == subject {
				return all[i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s event for %s", typ, subject)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestRotationBackoffDoublesUpToAnHour(t *testing.T) {
	want := []time.Duration{time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute, 16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
	for i, w := range want {
		if got := gateway.RotationBackoff(i + 1); got != w {
			t.Errorf("attempt %d: %s, want %s", i+1, got, w)
		}
	}
	if got := gateway.RotationBackoff(1000); got != time.Hour {
		t.Errorf("attempt 1000: %s", got)
	}
}
