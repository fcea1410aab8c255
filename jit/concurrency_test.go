package jit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestConcurrentApprovalsGiveOneGrant(t *testing.T) {
	tests := []struct {
		name          string
		requester     string
		role          string
		sameApprover  bool
		wantApprovals int
	}{
		{"twenty approvers, one approval needed", "alice", "prod-root", false, 1},
		{"one approver twenty times", "alice", "prod-root", true, 1},
		{"break-glass, twenty approvers", "oscar", "break-glass", false, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			r := e.request(tc.requester, tc.role, time.Hour, "x", "")
			var (
				wg     sync.WaitGroup
				mu     sync.Mutex
				grants []*Grant
				errs   []error
			)
			start := make(chan struct{})
			for i := 1; i <= approverCount; i++ {
				name := fmt.Sprintf("appr%02d", i)
				if tc.sameApprover {
					name = "appr01"
				}
				u := e.user(name)
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					_, g, err := e.svc.Approve(context.Background(), u, r.ID, "")
					mu.Lock()
					defer mu.Unlock()
					if g != nil {
						grants = append(grants, g)
					}
					if err != nil {
						errs = append(errs, err)
					}
				}()
			}
			close(start)
			wg.Wait()
			if len(grants) != 1 {
				t.Fatalf("%d approvals returned a grant, want exactly 1", len(grants))
			}
			if len(errs) != approverCount-tc.wantApprovals {
				t.Errorf("%d refusals, want %d", len(errs), approverCount-tc.wantApprovals)
			}
			for _, err := range errs {
				if !errors.Is(err, ErrState) {
					t.Errorf("refusal %v is not ErrState", err)
				}
			}
			if n := e.count(`SELECT count(*) FROM grants WHERE request_id = ?`, r.ID); n != 1 {
				t.Errorf("%d grant rows", n)
			}
			if n := e.count(`SELECT count(*) FROM approvals WHERE request_id = ?`, r.ID); n != tc.wantApprovals {
				t.Errorf("%d approval rows, want %d", n, tc.wantApprovals)
			}
			if n := len(e.events(EventGrantStarted)); n != 1 {
				t.Errorf("%d grant.started events", n)
			}
			e.verifyChain()
		})
	}
}

func TestConcurrentIdenticalRequestsOpenOne(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	var mu sync.Mutex
	ok := 0
	start := make(chan struct{})
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			_, err := e.svc.Request(context.Background(), e.user("alice"), "prod-root", time.Hour, "x", "")
			if err != nil && !errors.Is(err, ErrState) {
				t.Error(err)
			}
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			}
		}()
	}
	close(start)
	wg.Wait()
	if ok != 1 || e.count(`SELECT count(*) FROM requests`) != 1 {
		t.Errorf("%d requests opened, %d rows", ok, e.count(`SELECT count(*) FROM requests`))
	}
}

func TestConcurrentRevokeAndExpiryEndOnce(t *testing.T) {
	e := newEnv(t)
	e.run()
	g := e.grant(time.Hour)
	e.clock.Advance(time.Minute)
	sentinel := e.request("bob", "prod-root", time.Hour, "y", "") // TTL after g's expiry
	e.clock.WaitArmed(t, g.ExpiresAt.Add(-warnBefore))
	var wg sync.WaitGroup
	for _, actor := range []string{"alice", "carol", "dan", "sam"} {
		u := e.user(actor)
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := e.svc.Revoke(context.Background(), u, g.ID, ""); err != nil && !errors.Is(err, ErrState) {
				t.Error(err)
			}
		}()
	}
	e.clock.Set(g.ExpiresAt) // the expiry races the revocations
	wg.Wait()
	e.nextEnd()
	// Run arms the sentinel's TTL only after handling the expiry.
	e.clock.WaitArmed(t, sentinel.CreatedAt.Add(time.Hour))
	e.stop()
	select {
	case end := <-e.ends:
		t.Errorf("grant ended twice: %+v", end)
	default:
	}
	if n := e.count(`SELECT count(*) FROM audit_events WHERE type IN ('grant.expired', 'grant.revoked', 'grant.relinquished')`); n != 1 {
		t.Errorf("%d end events", n)
	}
}

// TestConcurrentApproveAndCloseOneWins races the final approval of a
// request with what else would close it, the requester's cancel or another
// approver's deny: exactly one of them takes effect, a request closed
// without approval never leaves a grant behind (nor a grant a request that
// says cancelled or denied), and the loser is refused.
func TestConcurrentApproveAndCloseOneWins(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		state string
		close func(e *env, id int64) error
	}{
		{"cancel", StateCancelled, func(e *env, id int64) error {
			_, err := e.svc.Cancel(ctx, e.user("alice"), id)
			return err
		}},
		{"deny", StateDenied, func(e *env, id int64) error {
			_, err := e.svc.Deny(ctx, e.user("dan"), id, "no")
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for i := 0; i < 20; i++ {
				e := newEnv(t)
				r := e.request("alice", "prod-root", time.Hour, "x", "")
				var (
					wg         sync.WaitGroup
					grant      *Grant
					aErr, cErr error
					start      = make(chan struct{})
					carol      = e.user("carol")
				)
				wg.Add(2)
				go func() { defer wg.Done(); <-start; _, grant, aErr = e.svc.Approve(ctx, carol, r.ID, "") }()
				go func() { defer wg.Done(); <-start; cErr = tc.close(e, r.ID) }()
				close(start)
				wg.Wait()

				row := e.requestRow(r.ID)
				grants := e.count(`SELECT count(*) FROM grants WHERE request_id = ?`, r.ID)
				switch {
				case aErr == nil && cErr != nil:
					if grant == nil || row.State != StateApproved || grants != 1 || !errors.Is(cErr, ErrState) {
						t.Fatalf("approve won: grant %v, state %s, %d grants, %s %v", grant, row.State, grants, tc.name, cErr)
					}
				case cErr == nil && aErr != nil:
					if grant != nil || row.State != tc.state || grants != 0 || !errors.Is(aErr, ErrState) {
						t.Fatalf("%s won: grant %v, state %s, %d grants, approve %v", tc.name, grant, row.State, grants, aErr)
					}
				default:
					t.Fatalf("approve %v and %s %v: want exactly one to succeed", aErr, tc.name, cErr)
				}
				e.verifyChain()
			}
		})
	}
}
