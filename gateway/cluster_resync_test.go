package gateway

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gw/warden/cluster"
	"github.com/warden-gw/warden/jit"
)

// flakyGrants is fakeGrants whose first reads fail, as when PostgreSQL
// answers the listener's reconnection but not yet the next query.
type flakyGrants struct {
	fakeGrants
	fails atomic.Int32
}

func (f *flakyGrants) ActiveGrants(ctx context.Context) ([]jit.Grant, error) {
	if f.fails.Add(-1) >= 0 {
		return nil, errors.New("store unreachable")
	}
	return f.fakeGrants.ActiveGrants(ctx)
}

// Attack on the resync (review): a resync whose store read fails must be
// tried again. Otherwise a grant revoked, or a user deprovisioned, on
// another node while this node's bus was down keeps its session (and, for
// the directory, the leaver's key) here until the next message or restart.
func TestResyncIsRetriedAfterAStoreError(t *testing.T) {
	g := &flakyGrants{}
	g.fails.Store(2)
	bus := cluster.NewLocal()
	defer bus.Close()
	s := &Server{opt: Options{JIT: g, Now: time.Now, Bus: bus}, log: slog.Default(), live: newRegistry()}
	ended := make(chan error, 1)
	s.live.add(&session{id: strings.Repeat("b", 26), grantID: 2, cancel: func(err error) {
		select {
		case ended <- err:
		default:
		}
	}})
	leave := s.joinCluster() // its resync fails: the store does not answer
	defer leave()
	select {
	case err := <-ended:
		if err != errGrantRevoked {
			t.Fatalf("cause %v; want %v", err, errGrantRevoked)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the session of a revoked grant still runs 15 s after a failed resync: the resync was not tried again")
	}
}

// switchGrants is fakeGrants in which grant 2 runs until revoked is set.
type switchGrants struct {
	fakeGrants
	revoked atomic.Bool
}

func (f *switchGrants) ActiveGrants(ctx context.Context) ([]jit.Grant, error) {
	gs, _ := f.fakeGrants.ActiveGrants(ctx)
	if !f.revoked.Load() {
		gs = append(gs, jit.Grant{ID: 2, ExpiresAt: time.Now().Add(time.Hour)})
	}
	return gs, nil
}

// Attack on the push (review): the node that revokes a grant, or commits
// a SCIM deactivation, may fail to publish it (its pool connection cut,
// PostgreSQL busy) while the other nodes' listeners stay up, so they never
// resync. The revoke answered "revoked", and the session ran on elsewhere
// until the grant's expiry (for a leaver: the key kept working, no bound
// at all). Every node reads the store again now and then as a safety net.
func TestAMessageLostWithoutReconnectIsCaughtUp(t *testing.T) {
	old := clusterResyncEvery
	clusterResyncEvery = 200 * time.Millisecond
	defer func() { clusterResyncEvery = old }()
	g := &switchGrants{}
	bus := cluster.NewLocal()
	defer bus.Close()
	s := &Server{opt: Options{JIT: g, Now: time.Now, Bus: bus}, log: slog.Default(), live: newRegistry()}
	ended := make(chan error, 1)
	s.live.add(&session{id: strings.Repeat("b", 26), grantID: 2, cancel: func(err error) {
		select {
		case ended <- err:
		default:
		}
	}})
	leave := s.joinCluster()
	defer leave()
	g.revoked.Store(true) // on another node, whose grant_ended never went out
	select {
	case err := <-ended:
		if err != errGrantRevoked {
			t.Fatalf("cause %v; want %v", err, errGrantRevoked)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the session of a grant revoked elsewhere, whose message was lost, still runs after 10 s")
	}
}
