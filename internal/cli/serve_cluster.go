package cli

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/cluster"
)

// topicJIT tells the leader that a request or grant was created: it
// re-reads the deadlines (CONTRACT §8's cluster design, jit.Service.Resync).
const topicJIT = "jit"

// jitRestartDelay is how long the leader waits before running the
// workflow's deadlines again after its start-up load failed.
const jitRestartDelay = 10 * time.Second

// openCluster opens the bus and the leader of the gateways sharing the
// store: on PostgreSQL, LISTEN/NOTIFY and advisory locks on the store's
// own database (the DSN's credentials and TLS); on SQLite, a node alone,
// an in-process bus and a leader that always leads. close stops them.
func openCluster(ctx context.Context, b audit.Backend, log *slog.Logger) (cluster.Bus, cluster.Leader, func(), error) {
	if b.Driver != audit.DriverPostgres {
		l := cluster.NewLocal()
		return l, cluster.Alone{}, l.Close, nil
	}
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	p, err := cluster.Open(octx, b.DSN, cluster.Options{Logger: log})
	if err != nil {
		return nil, nil, nil, err
	}
	return p, p, p.Close, nil
}

// announceJIT makes every gateway tell the cluster when it creates a
// request or a grant, so that the leader, the only one running the
// deadlines, queues them. A message that does not go out delays only the
// record and the alerts: the gateway still ends a grant's sessions at its
// expiry, and the leader reads every deadline again when it (re)connects.
func (r *running) announceJIT() {
	r.jit.OnChange(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.bus.Publish(ctx, topicJIT, []byte("{}")); err != nil {
			r.log.Warn("cluster: the leader was not told of a new request or grant; it will read it at its next resync", "err", err)
		}
	})
}

// leadJIT runs the workflow's deadlines for one term of leadership: Run,
// with a resync on every "jit" message and, through leading, on every
// reconnection of the bus. Run returns early only when its start-up load
// fails; it is tried again rather than leave the cluster without expiry.
func (r *running) leadJIT(ctx context.Context, leading *atomic.Bool) {
	cancel := r.bus.Subscribe(topicJIT, func([]byte) { r.resyncJIT(ctx) })
	defer cancel()
	leading.Store(true)
	defer leading.Store(false)
	for {
		err := r.jit.Run(ctx)
		if ctx.Err() != nil {
			return
		}
		r.log.Error("elevation scheduler stopped; starting it again", "err", err, "in", jitRestartDelay.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(jitRestartDelay):
		}
	}
}

// resyncJIT queues the stored deadlines on the leader.
func (r *running) resyncJIT(ctx context.Context) {
	if err := r.jit.Resync(ctx); err != nil && ctx.Err() == nil {
		r.log.Warn("elevation deadlines not re-read", "err", err)
	}
}
