package cli

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/recstore"
	gossh "golang.org/x/crypto/ssh"
)

// Nodes sharing a store (issue 12, CONTRACT §8). Every nodeHeartbeat the
// gateway writes its heartbeat and looks for nodes whose heartbeat is
// older than nodeDeadAfter: their open sessions are ended as interrupted
// (audit.Store.ReapDeadNodes), so a node that died does not leave sessions
// that look live for ever. On a store of its own (SQLite) a node finds
// nobody else and the reaper does nothing.
const (
	nodeHeartbeat = 5 * time.Second
	// 20 s: four heartbeats missed. With the reaper running every 5 s, a
	// survivor ends a dead node's sessions at most 25 s after its last
	// heartbeat, within the 30 s issue 12 asks for.
	nodeDeadAfter = 20 * time.Second
)

// nodeStart claims this node's row (audit.Store.NodeStarted) for this
// process, before anything takes the node's open sessions for its own
// (CloseOrphans): a node_id held by a live node on another host fails the
// start with one line saying so.
func nodeStart(ctx context.Context, st *audit.Store, deadAfter time.Duration) (*audit.Self, error) {
	me, err := audit.NewSelf("", deadAfter)
	if err != nil {
		return nil, err
	}
	if err := st.NodeStarted(ctx, me); err != nil {
		return nil, err
	}
	return me, nil
}

// nodeKeys records the fingerprints of this node's gateway host key and CA
// key and refuses to serve when a live node of the cluster uses other keys
// (audit.Store.NodeKeys). The CA key comes from the credential backend; if
// Vault cannot be asked now, only the host key is compared (all nodes on
// one Vault mount share its CA anyway), and the start is not made to
// depend on Vault.
func nodeKeys(ctx context.Context, st *audit.Store, me *audit.Self, sig gatewaySigner, host gossh.PublicKey, log *slog.Logger) error {
	me.HostKey = gossh.FingerprintSHA256(host)
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if ca, err := sig.CAPublicKey(cctx); err != nil {
		log.Warn("CA key not compared with the other nodes': the credential backend did not answer", "err", err)
	} else {
		me.CAKey = gossh.FingerprintSHA256(ca)
	}
	return st.NodeKeys(ctx, me)
}

// sealerOf is recs as a recstore.Sealer, or nil (recordings are local
// files): the reaper then notes where a dead node's recordings are.
func sealerOf(recs recstore.Store) recstore.Sealer {
	if s, ok := recs.(recstore.Sealer); ok && s != nil {
		return s
	}
	return nil
}

// startNode runs the heartbeat and the reaper until the returned stop is
// called; stop waits for the goroutine to end, so that nothing writes a
// heartbeat after it (the clean stop's stopped_at must stay). remote, when
// set, is the object store a dead node's recordings are sealed from.
//
// lost, when set (a store shared with other nodes), is called once per
// outage when this node's last heartbeat written is DeadAfter less one
// period old: the others are about to take it for dead and end its rows as
// interrupted, so its sessions must end too (gateway.Server.StoreLost). A
// heartbeat write that takes longer than that period (a database slow
// enough) therefore ends them too: fail closed, as the others cannot tell.
func startNode(ctx context.Context, st *audit.Store, me *audit.Self, remote recstore.Sealer, log *slog.Logger, every time.Duration, lost func() int) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	cut := newCutOff(me.DeadAfter-every, time.Now())
	if lost != nil {
		// The watchdog: a store that hangs rather than fails holds the
		// heartbeat below for a whole write deadline (15 s) per try, and
		// the others count from the last heartbeat written, not from when
		// this node hears of a failure. So the cut-off is checked on a
		// clock of its own, against the last heartbeat written.
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(max(every/5, 10*time.Millisecond))
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				if cut.due(time.Now()) && ctx.Err() == nil {
					n := lost()
					log.Error("cut off from the store for longer than the other nodes wait: ended this node's live sessions",
						"sessions", n, "after", cut.after.String())
				}
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		var dupLogged bool
		gate := newReapGate(every, time.Now())
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			stamped := time.Now() // no later than the heartbeat_at it writes
			if err := st.Heartbeat(ctx, me); errors.Is(err, audit.ErrNodeInUse) {
				// Another process runs with this node_id: both keep
				// heartbeating (their sessions are live), and the
				// operator must fix the configuration. Said once.
				if !dupLogged {
					log.Error("two gateways share this node_id", "err", err)
					dupLogged = true
				}
			} else if err != nil && ctx.Err() == nil {
				// Others will take this node for dead after deadAfter
				// and end its sessions; say so loudly.
				log.Error("node heartbeat not written", "err", err)
				gate.failed(time.Now())
				continue
			}
			cut.ok(stamped)
			if !gate.open(time.Now()) {
				continue // the store just came back: let the others heartbeat first
			}
			n, err := st.ReapDeadNodes(ctx, me.DeadAfter, remote)
			if err != nil && ctx.Err() == nil {
				log.Error("sessions of dead nodes not reaped", "err", err)
			}
			if n > 0 {
				log.Warn("ended the open sessions of a node that stopped heartbeating", "count", n, "dead_after", me.DeadAfter.String())
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

// reapGate keeps a node from judging others right after it regained the
// store. When the store was down for everyone (PostgreSQL restarting, a
// network cut), every node's heartbeat went stale together; the first node
// back would otherwise end every other node's live sessions as
// interrupted, though they are fine and about to heartbeat. So a node
// reaps only after its own heartbeats have succeeded for two heartbeat
// periods in a row (from its start, or from its last failure): by then
// every live node that reaches the store has written its own.
type reapGate struct {
	wait         time.Duration
	healthySince time.Time
}

func newReapGate(every time.Duration, start time.Time) *reapGate {
	return &reapGate{wait: 2 * every, healthySince: start}
}

// failed records a heartbeat that could not be written at now.
func (g *reapGate) failed(now time.Time) { g.healthySince = now }

// open reports whether the node may reap at now.
func (g *reapGate) open(now time.Time) bool { return now.Sub(g.healthySince) >= g.wait }

// cutOff tells when a node has been cut off from the shared store for
// long enough that the other nodes will take it for dead: they count from
// its last heartbeat written, so due reports true once `after` has passed
// since then (or since the start), and again only after a heartbeat was
// written (ok) and `after` passed once more. It is safe for concurrent use
// (the heartbeat loop and the watchdog).
type cutOff struct {
	after   time.Duration
	mu      sync.Mutex
	last    time.Time // when the last heartbeat written was stamped, or the start
	tripped bool
}

func newCutOff(after time.Duration, start time.Time) *cutOff {
	return &cutOff{after: after, last: start}
}

// due reports, once per outage, that `after` has passed at now since the
// last heartbeat written.
func (c *cutOff) due(now time.Time) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tripped || now.Sub(c.last) < c.after {
		return false
	}
	c.tripped = true
	return true
}

// ok records a heartbeat written, stamped no earlier than at: the outage,
// if any, is over, unless an earlier one was already newer.
func (c *cutOff) ok(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !at.After(c.last) {
		return // a late answer stamped before the last one: nothing newer
	}
	c.last, c.tripped = at, false
}
