package web

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Options configures a Server.
type Options struct {
	// CertFile and KeyFile, when both are set, make the listener serve
	// TLS (http_tls); otherwise it serves plain HTTP.
	CertFile, KeyFile string
	// Listen is http_listen as configured; its host names the listener
	// in links when PublicURL is empty.
	Listen string
	// PublicURL is http_public_url, or "" to derive links from the
	// listener's address.
	PublicURL string
	// Ready lists what /readyz checks; each must answer within its
	// context's deadline.
	Ready []Check
	// Logger receives operational logs; nil means slog.Default().
	Logger *slog.Logger
	// Now is the clock of the readiness cache; nil means time.Now.
	Now func() time.Time
}

// Check is one readiness probe: Name appears in /readyz's answer, Probe
// returns nil when the dependency answers.
type Check struct {
	Name  string
	Probe func(ctx context.Context) error
}

// Server is the HTTP listener. Create it with New, mount handlers with
// Handle, then Serve.
type Server struct {
	opt   Options
	log   *slog.Logger
	mux   *http.ServeMux
	https bool

	mu      sync.Mutex // guards addr
	addr    net.Addr   // the listener's address once Serve runs
	readyMu sync.Mutex // one readiness computation at a time
	ready   readyResult
}

// Timeouts of the listener. A browser or an IdP's SCIM client needs far
// less; the bounds keep slow clients from holding connections.
const (
	readHeaderTimeout = 10 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 2 * time.Minute
	maxHeaderBytes    = 64 << 10
	shutdownGrace     = 10 * time.Second
)

// New returns a Server with /healthz and /readyz mounted.
func New(opt Options) *Server {
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	s := &Server{opt: opt, log: opt.Logger, mux: http.NewServeMux(), https: opt.CertFile != "" && opt.KeyFile != ""}
	s.mux.HandleFunc("GET /healthz", s.healthz)
	s.mux.HandleFunc("GET /readyz", s.readyz)
	return s
}

// Handle mounts h on pattern (net/http ServeMux syntax, e.g.
// "/oidc/callback" or "POST /oidc/start"). Call it before Serve.
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, h) }

// Serve answers requests on l until ctx is done, then shuts down
// gracefully: new connections are refused and requests in flight get up
// to ten seconds to finish. It returns nil after a shutdown that ctx asked
// for.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	s.mu.Lock()
	s.addr = l.Addr()
	s.mu.Unlock()
	srv := &http.Server{
		Handler:           securityHeaders(s.mux),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	if s.https {
		cert, err := tls.LoadX509KeyPair(s.opt.CertFile, s.opt.KeyFile)
		if err != nil {
			return fmt.Errorf("web: load http_tls: %w", err)
		}
		srv.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
		l = tls.NewListener(l, srv.TLSConfig)
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("web: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("web: serve: %w", err)
	}
	return nil
}

// securityHeaders sets what every answer carries. Pages are plain HTML
// forms: no script, no framing, nothing from elsewhere. form-action also
// allows http(s) targets because browsers apply it to the redirect that
// follows a form, and the sign-in confirm form redirects to the IdP,
// whose address this package does not know. no-referrer keeps
// the sign-in page's URL (which names a pending sign-in) out of the
// Referer the IdP would see.
func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("Content-Security-Policy", "default-src 'self'; form-action 'self' https: http:; frame-ancestors 'none'; base-uri 'none'")
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Cache-Control", "no-store")
		h.ServeHTTP(w, r)
	})
}
