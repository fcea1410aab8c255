package web

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// readyCache is how long a readiness answer is reused, and probeTimeout
// how long one probe may take.
const (
	readyCache   = time.Second
	probeTimeout = 5 * time.Second
)

type readyResult struct {
	at     time.Time
	failed []string // names of the checks that failed
}

func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	fmt.Fprintln(w, "ok")
}

// readyz answers 200 "ready" when every check passes, else 503 with the
// names of the failing checks. Causes go to the log only: the endpoint is
// unauthenticated, and an error from Vault or SQLite may say too much.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	res := s.readiness(r.Context())
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if len(res.failed) > 0 {
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprintf(w, "not ready: %s\n", strings.Join(res.failed, ", "))
		return
	}
	fmt.Fprintln(w, "ready")
}

func (s *Server) readiness(ctx context.Context) readyResult {
	s.readyMu.Lock()
	defer s.readyMu.Unlock()
	now := s.opt.Now()
	if age := now.Sub(s.ready.at); !s.ready.at.IsZero() && age >= 0 && age < readyCache {
		return s.ready
	}
	res := readyResult{at: now}
	for _, c := range s.opt.Ready {
		pctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), probeTimeout)
		err := c.Probe(pctx)
		cancel()
		if err != nil {
			s.log.Warn("not ready", "check", c.Name, "err", err)
			res.failed = append(res.failed, c.Name)
		}
	}
	s.ready = res
	return res
}
