package metrics

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// countsTimeout bounds one read of the store's counts: a scrape must not
// hang on a busy database.
const countsTimeout = 2 * time.Second

// storeGauges is a collector for warden_grants_active and
// warden_requests_pending. The counts are read at most once per cache
// period; scrapes in between, and scrapes that arrive while a read runs,
// get the last answer. So however often /metrics is asked for, the store
// sees one query pair per period.
type storeGauges struct {
	read   func(context.Context) (Counts, error)
	ttl    time.Duration
	now    func() time.Time
	log    *slog.Logger
	errors prometheus.Counter

	grants, pending *prometheus.Desc

	mu   sync.Mutex
	at   time.Time // when last read; zero before the first
	last Counts
	ok   bool // the last read succeeded
}

func newStoreGauges(opt Options, errs prometheus.Counter) *storeGauges {
	return &storeGauges{
		read: opt.Counts, ttl: opt.CountsCache, now: opt.Now, log: opt.Logger, errors: errs,
		grants:  prometheus.NewDesc("warden_grants_active", "Grants giving access now (read from the store, cached briefly).", nil, nil),
		pending: prometheus.NewDesc("warden_requests_pending", "Elevation requests waiting for a decision (read from the store, cached briefly).", nil, nil),
	}
}

func (g *storeGauges) Describe(ch chan<- *prometheus.Desc) {
	ch <- g.grants
	ch <- g.pending
	g.errors.Describe(ch)
}

// Collect emits the counts, or nothing when the store could not be read:
// a missing series is what an alert on absent() notices, while a stale or
// zero value would look like the truth.
func (g *storeGauges) Collect(ch chan<- prometheus.Metric) {
	c, ok := g.counts()
	g.errors.Collect(ch) // after the read, which may have counted a failure
	if !ok {
		return
	}
	ch <- prometheus.MustNewConstMetric(g.grants, prometheus.GaugeValue, float64(c.GrantsActive))
	ch <- prometheus.MustNewConstMetric(g.pending, prometheus.GaugeValue, float64(c.RequestsPending))
}

func (g *storeGauges) counts() (Counts, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	if age := now.Sub(g.at); !g.at.IsZero() && age >= 0 && age < g.ttl {
		return g.last, g.ok
	}
	ctx, cancel := context.WithTimeout(context.Background(), countsTimeout)
	defer cancel()
	c, err := g.read(ctx)
	g.at, g.last, g.ok = now, c, err == nil
	if err != nil {
		g.errors.Inc()
		g.log.Error("metrics: read grant and request counts", "err", err)
	}
	return g.last, g.ok
}
