package cli

import (
	"context"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/jit"
	"github.com/warden-gw/warden/metrics"
	"github.com/warden-gw/warden/policy"
)

// openMetrics builds the metrics, hands them to the gateway and mounts
// GET /metrics on the HTTP listener: open, or behind the bearer token of
// metrics_token_file. A token file that cannot be read, or holds a short
// token, stops the start: metrics meant to be private are not served
// open. Without http_listen nobody could scrape them, so there are none.
func (r *running) openMetrics(cfg *policy.Config, gopt *gateway.Options) error {
	if r.web == nil {
		return nil
	}
	token := ""
	if cfg.MetricsTokenFile != "" {
		var err error
		if token, err = metrics.ReadToken(cfg.MetricsTokenFile); err != nil {
			return err
		}
	}
	r.metrics = metrics.New(metrics.Options{
		// r.srv is set before anything listens, so before any scrape.
		Live: func() int {
			if r.srv == nil {
				return 0
			}
			return r.srv.LiveSessions()
		},
		Counts: r.storeCounts,
		Logger: r.log,
	})
	gopt.Metrics = r.metrics
	r.web.Handle("GET /metrics", r.metrics.Handler(metrics.HandlerOptions{Token: token, Audit: r.store, Logger: r.log}))
	return nil
}

// storeCounts reads active grants and pending requests from the read-only
// pool (package metrics caches the answer, so scrapes cannot load the
// database). Active is what jit.Service.ActiveGrant calls active: not
// ended, started, not expired.
func (r *running) storeCounts(ctx context.Context) (metrics.Counts, error) {
	var c metrics.Counts
	ts, err := audit.Time(time.Now())
	if err != nil {
		return c, err
	}
	err = r.store.DB().QueryRowContext(ctx, `SELECT
		(SELECT count(*) FROM grants WHERE ended_at IS NULL AND starts_at <= ? AND expires_at > ?),
		(SELECT count(*) FROM requests WHERE state = ?)`, ts, ts, jit.StatePending).Scan(&c.GrantsActive, &c.RequestsPending)
	return c, err
}
