package metrics

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/warden-gw/warden/audit"
)

// EventUnauthorized is the audit event of a /metrics request refused for
// its token: the first from each source address in a minute.
const EventUnauthorized = "metrics.unauthorized"

// minTokenLen is the shortest token accepted from metrics_token_file: a
// guessable token is no protection.
const minTokenLen = 16

// ReadToken reads the bearer token from path (metrics_token_file),
// without surrounding white space. A missing, unreadable or short token
// stops the start: metrics configured to be private must not be served
// open, nor behind a token anyone could guess.
func ReadToken(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("metrics: metrics_token_file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if len(t) < minTokenLen {
		return "", fmt.Errorf("metrics: the token in %s is shorter than %d characters", path, minTokenLen)
	}
	return t, nil
}

// appender is where refused requests are recorded (audit.Store).
type appender interface {
	Append(ctx context.Context, e audit.Event) error
}

// HandlerOptions configures Handler.
type HandlerOptions struct {
	// Token, when set, is the bearer token a scraper must send
	// (Authorization: Bearer TOKEN); "" serves /metrics to anyone
	// (CONTRACT §7: no auth unless configured).
	Token string
	// Audit receives a metrics.unauthorized event for refused requests;
	// nil records none.
	Audit appender
	// Logger receives refusals; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of the audit budget; nil means time.Now.
	Now func() time.Time
}

// Handler returns the GET /metrics handler. With a token, a request
// without it, or with another, is answered 401 and counted in
// warden_metrics_unauthorized_total; the first from each source address in
// a minute is an audit event, so that guessing is on record without one
// row per guess. The token is never logged.
func (m *Metrics) Handler(opt HandlerOptions) http.Handler {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	// At most two scrapes are computed at once; more get 503. A
	// Prometheus server scrapes one at a time, so only a flood waits.
	prom := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:            slog.NewLogLogger(opt.Logger.Handler(), slog.LevelError),
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 2,
	})
	if opt.Token == "" {
		return prom
	}
	h := &tokenHandler{next: prom, want: sha256.Sum256([]byte(opt.Token)), opt: opt, m: m}
	return h
}

type tokenHandler struct {
	next http.Handler
	// want is the token's SHA-256: comparing digests of equal length in
	// constant time says nothing, by timing, about the token's length or
	// how much of it a guess got right.
	want [32]byte
	opt  HandlerOptions
	m    *Metrics

	mu   sync.Mutex
	seen map[string]time.Time // source address -> its last audited refusal
}

func (h *tokenHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	why := h.check(r)
	if why == "" {
		h.next.ServeHTTP(w, r)
		return
	}
	h.m.unauthorized.Inc()
	src, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		src = r.RemoteAddr
	}
	if h.first(src) {
		h.opt.Logger.Warn("metrics: request refused", "client", src, "reason", why)
		if h.opt.Audit != nil {
			ev := audit.Event{TS: h.opt.Now().UTC(), Type: EventUnauthorized, Subject: "client:" + truncate(src, 64),
				Data: map[string]any{"reason": why}}
			if err := h.opt.Audit.Append(context.WithoutCancel(r.Context()), ev); err != nil {
				h.opt.Logger.Error("metrics: audit refused request", "err", err)
			}
		}
	}
	w.Header().Set("WWW-Authenticate", `Bearer realm="warden-metrics"`)
	http.Error(w, "missing or wrong bearer token", http.StatusUnauthorized)
}

// check returns "" when the request carries the token, else why not.
func (h *tokenHandler) check(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "missing bearer token"
	}
	got := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(got[:], h.want[:]) != 1 {
		return "wrong bearer token"
	}
	return ""
}

// first reports whether src's refusal now is its first in a minute. The
// map is bounded: when full it is forgotten, and sources are recorded
// again.
func (h *tokenHandler) first(src string) bool {
	now := h.opt.Now()
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.seen == nil || len(h.seen) >= 10000 {
		h.seen = map[string]time.Time{}
	}
	if last, ok := h.seen[src]; ok && now.Sub(last) < time.Minute && now.Sub(last) >= 0 {
		return false
	}
	h.seen[src] = now
	return true
}

// truncate cuts s to at most n bytes (a source address is short; this only
// bounds what a strange RemoteAddr could put in the chain).
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n]
}
