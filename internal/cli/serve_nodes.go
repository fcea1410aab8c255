package cli

import (
	"context"
	"log/slog"
	"time"

	"github.com/warden-gw/warden/audit"
)

// Nodes sharing a store (issue 12, CONTRACT §8). Every nodeHeartbeat the
// gateway writes its heartbeat and looks for nodes whose heartbeat is
// older than nodeDeadAfter: their open sessions are ended as interrupted
// (audit.Store.ReapDeadNodes), so a node that died does not leave sessions
// that look live for ever. On a store of its own (SQLite) a node finds
// nobody else and the reaper does nothing.
const (
	nodeHeartbeat = 5 * time.Second
	nodeDeadAfter = 30 * time.Second
)

// startNode runs the heartbeat and the reaper until the returned stop is
// called; stop waits for the goroutine to end, so that nothing writes a
// heartbeat after it (the clean stop's stopped_at must stay).
func startNode(ctx context.Context, st *audit.Store, log *slog.Logger, every, deadAfter time.Duration) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			if err := st.Heartbeat(ctx); err != nil && ctx.Err() == nil {
				// Others will take this node for dead after deadAfter
				// and end its sessions; say so loudly.
				log.Error("node heartbeat not written", "err", err)
				continue
			}
			n, err := st.ReapDeadNodes(ctx, deadAfter)
			if err != nil && ctx.Err() == nil {
				log.Error("sessions of dead nodes not reaped", "err", err)
			}
			if n > 0 {
				log.Warn("ended the open sessions of a node that stopped heartbeating", "count", n, "dead_after", deadAfter.String())
			}
		}
	}()
	return func() { cancel(); <-done }
}
