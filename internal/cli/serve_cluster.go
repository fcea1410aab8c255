package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/cluster"
	gossh "golang.org/x/crypto/ssh"
)

// topicJIT tells the leader that a request or grant was created: it
// re-reads the deadlines (CONTRACT §8's cluster design, jit.Service.Resync).
const topicJIT = "jit"

// jitRestartDelay is how long the leader waits before running the
// workflow's deadlines again after its start-up load failed.
const jitRestartDelay = 10 * time.Second

// openCluster opens the bus and the leader of the gateways sharing the
// store: on PostgreSQL, LISTEN/NOTIFY and advisory locks on the store's
// own database (the DSN's credentials and TLS), its messages authenticated
// with a key derived from the gateway host key at hostKeyPath; on SQLite,
// a node alone, an in-process bus and a leader that always leads. close
// stops them.
func openCluster(ctx context.Context, b audit.Backend, hostKeyPath string, log *slog.Logger) (cluster.Bus, cluster.Leader, func(), error) {
	if b.Driver != audit.DriverPostgres {
		l := cluster.NewLocal()
		return l, cluster.Alone{}, l.Close, nil
	}
	key, err := clusterKey(hostKeyPath)
	if err != nil {
		return nil, nil, nil, err
	}
	octx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	p, err := cluster.Open(octx, b.DSN, cluster.Options{Logger: log, Key: key})
	if err != nil {
		return nil, nil, nil, err
	}
	return p, p, p.Close, nil
}

// clusterKey derives the key that authenticates the cluster's messages
// from the gateway host key's private half, which every node of a cluster
// shares (a node with another host key does not start: audit NodeKeys)
// and no database role holds. PostgreSQL lets any role that may connect
// NOTIFY and LISTEN on any channel, so the store's credentials alone do
// not tell a node from an auditor's read-only role (cluster/sign.go). The
// key is derived from the parsed key, not the file's bytes, so two files
// holding one key in different encodings give the same key.
func clusterKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("cluster key: %w", err)
	}
	raw, err := gossh.ParseRawPrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("cluster key: parse %s: %w", path, err)
	}
	if k, ok := raw.(*ed25519.PrivateKey); ok {
		raw = *k
	}
	der, err := x509.MarshalPKCS8PrivateKey(raw)
	if err != nil {
		return nil, fmt.Errorf("cluster key: %s: %w", path, err)
	}
	m := hmac.New(sha256.New, der)
	m.Write([]byte("warden cluster message key v1"))
	return m.Sum(nil), nil
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
