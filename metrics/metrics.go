package metrics

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Options configures Metrics. Every field is optional.
type Options struct {
	// Live returns the number of live session channels (the gateway's
	// registry); nil leaves warden_sessions_live out.
	Live func() int
	// Counts reads active grants and pending requests from the store;
	// nil leaves warden_grants_active and warden_requests_pending out.
	Counts func(ctx context.Context) (Counts, error)
	// CountsCache is how long one Counts answer serves scrapes; zero
	// means 5s.
	CountsCache time.Duration
	// Now is the clock of that cache; nil means time.Now.
	Now func() time.Time
	// Logger receives failures of Counts; nil means slog.Default().
	Logger *slog.Logger
}

// Counts is what the store-backed gauges show.
type Counts struct {
	GrantsActive    int
	RequestsPending int
}

// Metrics holds Warden's registry and the counters the gateway moves.
// Create it with New; a nil *Metrics counts nothing.
type Metrics struct {
	reg *prometheus.Registry

	sessionsEnded *prometheus.CounterVec
	sessionBytes  *prometheus.CounterVec
	refusals      *prometheus.CounterVec
	signSeconds   *prometheus.HistogramVec
	recordingErrs prometheus.Counter
	scim          *prometheus.CounterVec
	unauthorized  prometheus.Counter
	storeErrs     prometheus.Counter
}

// signBuckets cover the built-in CA (well under a millisecond for
// Ed25519) up to a Vault past its timeout (5s by default), where a
// session is refused.
var signBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// New returns Metrics with its own registry: Warden's metrics, the Go
// runtime's and the process's. A registry of its own, not the global one,
// so that nothing a dependency registers globally is exposed.
func New(opt Options) *Metrics {
	if opt.CountsCache == 0 {
		opt.CountsCache = 5 * time.Second
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	m := &Metrics{reg: prometheus.NewRegistry()}
	m.sessionsEnded = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_sessions_ended_total", Help: "Sessions ended, by sessions.end_reason.",
	}, []string{"reason"})
	m.sessionBytes = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_session_bytes_total", Help: "Bytes of ended sessions: in is client to host, out is host to client.",
	}, []string{"direction"})
	m.refusals = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_refusals_total", Help: "Refusals, by audit event type and reason (other: not a known reason).",
	}, []string{"event", "reason"})
	m.signSeconds = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Name: "warden_credential_sign_seconds", Help: "Time to obtain a per-session certificate, by backend and result.",
		Buckets: signBuckets,
	}, []string{"backend", "result"})
	m.recordingErrs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "warden_recording_errors_total", Help: "Recordings that could not be opened or written, and transfer streams that did not parse.",
	})
	m.scim = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "warden_scim_requests_total", Help: "SCIM requests answered, by method and status code.",
	}, []string{"method", "code"})
	m.unauthorized = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "warden_metrics_unauthorized_total", Help: "Requests for /metrics refused for a missing or wrong token.",
	})
	m.storeErrs = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "warden_metrics_store_errors_total", Help: "Scrapes whose grant and request counts could not be read.",
	})
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.sessionsEnded, m.sessionBytes, m.refusals, m.signSeconds, m.recordingErrs, m.scim, m.unauthorized,
	)
	// Series that exist from the start, so that rate() and absent() see
	// zero rather than nothing.
	for r := range endReasons {
		m.sessionsEnded.WithLabelValues(r)
	}
	m.sessionBytes.WithLabelValues("in")
	m.sessionBytes.WithLabelValues("out")
	if opt.Live != nil {
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "warden_sessions_live", Help: "Session channels in the gateway's live registry (admitted, not yet ended).",
		}, func() float64 { return float64(opt.Live()) }))
	}
	if opt.Counts != nil {
		// The gauges collect the error counter themselves, after their
		// read: registered apart, it could be gathered before the read that
		// failed and report the failure one scrape late.
		m.reg.MustRegister(newStoreGauges(opt, m.storeErrs))
	} else {
		m.reg.MustRegister(m.storeErrs)
	}
	return m
}

// Registry returns the registry, for tests and for more collectors.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// SessionEnded counts an ended session by its end reason, with the bytes
// it carried. The gateway calls it once per session, at its end, so the
// byte path has no metric work at all.
func (m *Metrics) SessionEnded(reason string, bytesIn, bytesOut int64) {
	if m == nil {
		return
	}
	m.sessionsEnded.WithLabelValues(bounded(endReasons, reason)).Inc()
	if bytesIn > 0 {
		m.sessionBytes.WithLabelValues("in").Add(float64(bytesIn))
	}
	if bytesOut > 0 {
		m.sessionBytes.WithLabelValues("out").Add(float64(bytesOut))
	}
}

// Refused counts a refusal by its audit event type and its kind (what was
// refused). Values outside the known sets are counted as "other".
func (m *Metrics) Refused(event, kind string) {
	if m == nil {
		return
	}
	m.refusals.WithLabelValues(bounded(refusalEvents, event), reasonLabel(kind)).Inc()
}

// CredentialSigned records how long the backend took to sign a session's
// certificate, and whether it did.
func (m *Metrics) CredentialSigned(backend string, took time.Duration, err error) {
	if m == nil {
		return
	}
	if backend == "" {
		backend = "builtin"
	}
	result := "ok"
	if err != nil {
		result = "error"
	}
	m.signSeconds.WithLabelValues(bounded(backends, backend), result).Observe(took.Seconds())
}

// RecordingFailed counts a recording that could not be opened or written,
// or a transfer stream that did not parse.
func (m *Metrics) RecordingFailed() {
	if m == nil {
		return
	}
	m.recordingErrs.Inc()
}
