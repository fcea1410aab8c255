package cli

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/warden-gw/warden/console"
	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/sso"
	"github.com/warden-gw/warden/web"
)

// openHTTP prepares the HTTP listener (http_listen) and, with
// identity.oidc, single sign-on, which it hands to the gateway. Nothing
// listens until serveHTTP.
func (r *running) openHTTP(cfg *policy.Config, sig gatewaySigner, gopt *gateway.Options) error {
	if cfg.HTTPListen == "" {
		return nil
	}
	opt := web.Options{Listen: cfg.HTTPListen, PublicURL: cfg.HTTPPublicURL, Logger: r.log, Ready: []web.Check{
		{Name: "database", Probe: func(ctx context.Context) error { return r.store.DB().PingContext(ctx) }},
		{Name: "credentials", Probe: func(ctx context.Context) error { _, err := sig.CAPublicKey(ctx); return err }},
	}}
	if cfg.HTTPTLS != nil {
		opt.CertFile, opt.KeyFile = cfg.HTTPTLS.CertFile, cfg.HTTPTLS.KeyFile
	}
	r.web = web.New(opt)
	if err := r.openMetrics(cfg, gopt); err != nil { // serve_metrics.go
		return err
	}
	return r.openSSO(cfg, gopt)
}

// openConsole mounts the browser console (CONTRACT §7) on the HTTP
// listener and lets `ssh GATEWAY console` issue its sign-in links. Its
// cookies are Secure when people reach it over TLS: http_tls, or an https
// http_public_url in front of a TLS proxy.
func (r *running) openConsole(cfg *policy.Config, gopt *gateway.Options) error {
	if r.web == nil {
		return nil
	}
	d := console.Deps{Store: r.store, DataDir: cfg.DataDir, Recordings: r.recs, Logger: r.log, BaseURL: r.web.BaseURL, SSHAddr: r.sshAddr,
		Secure: cfg.HTTPTLS != nil || strings.HasPrefix(cfg.HTTPPublicURL, "https:"),
		Policy: func() *policy.Config {
			if r.srv != nil {
				return r.srv.Policy() // directory users merged in, as the gateway sees them
			}
			return cfg
		},
		Commands: serveCommands{r}, Live: serveLive{r}, LiveIDs: serveLive{r}.liveIDs}
	if r.sso != nil {
		d.SignOn, d.OIDC = r.sso, r.sso
	}
	c, err := console.New(d)
	if err != nil {
		return err
	}
	c.Mount(r.web)
	gopt.ConsoleLinks = c
	r.console = c
	return nil
}

// sshAddr is the SSH listener's address once serve runs, else listen as
// configured: what the console's sign-in page names.
func (r *running) sshAddr() string {
	if a := r.sshListen.Load(); a != nil {
		return *a
	}
	if r.cfg != nil {
		return r.cfg.Listen
	}
	return ""
}

// serveCommands runs the SSH command interface for the console through the
// gateway, when the gateway offers that (gateway.Server.RunCommand); a
// gateway without it refuses each command, so the console decides nothing
// the SSH interface would not.
type serveCommands struct{ r *running }

func (s serveCommands) RunCommand(ctx context.Context, user string, args []string) ([]byte, error) {
	if rc, ok := any(s.r.srv).(console.Commands); ok && s.r.srv != nil {
		return rc.RunCommand(ctx, user, args)
	}
	return nil, errors.New("warden: this gateway cannot run commands for the console")
}

// openSSO builds single sign-on (identity.oidc) on the HTTP listener.
func (r *running) openSSO(cfg *policy.Config, gopt *gateway.Options) error {
	if cfg.Identity.OIDC == nil {
		return nil
	}
	opt := sso.Options{OIDC: cfg.Identity.OIDC, Store: r.store, Logger: r.log, BaseURL: r.web.BaseURL,
		Users: sso.PolicyUsers(func() *policy.Config {
			// Directory users sign in too: the gateway's policy is the
			// YAML policy merged with them (gateway.Server.Policy).
			if r.srv != nil {
				return r.srv.Policy()
			}
			return cfg
		})}
	if cfg.Identity.OIDC.CreateUsers {
		opt.Create = signInCreator{r}
	}
	svc, err := sso.New(opt)
	if err != nil {
		return err
	}
	svc.Mount(r.web)
	r.sso = svc
	gopt.SignOn = svc
	return nil
}

// serveHTTP starts the HTTP listener and the sign-in sweeper under ctx.
// The returned wait blocks until both have stopped after ctx is done.
func (r *running) serveHTTP(ctx context.Context) (wait func(), err error) {
	if r.web == nil {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", r.cfg.HTTPListen)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", r.cfg.HTTPListen, err)
	}
	r.log.Info("warden HTTP listening", "addr", ln.Addr().String(), "tls", r.cfg.HTTPTLS != nil, "sso", r.sso != nil)
	done := make(chan struct{}, 3)
	n := 1
	go func() {
		if err := r.web.Serve(ctx, ln); err != nil {
			r.log.Error("HTTP listener stopped", "err", err)
		}
		done <- struct{}{}
	}()
	if r.sso != nil {
		n++
		go func() { _ = r.sso.Run(ctx); done <- struct{}{} }()
	}
	if r.console != nil { // records idle browser sessions as ended
		n++
		go func() { _ = r.console.Run(ctx); done <- struct{}{} }()
	}
	return func() {
		for range n {
			<-done
		}
	}, nil
}

// signInCreator creates sign-in users in the directory store, which
// openDirectory opens after openHTTP (the gateway must exist first). A
// sign-in before that is refused: fail closed.
type signInCreator struct{ r *running }

func (c signInCreator) CreateSignInUser(ctx context.Context, claim string, groups []string) (string, []string, []string, error) {
	if c.r.dir == nil {
		return "", nil, nil, errors.New("the identity store is not open")
	}
	return c.r.dir.CreateSignInUser(ctx, claim, groups)
}

func (c signInCreator) CreatedBySignIn(name string) bool {
	return c.r.dir != nil && c.r.dir.CreatedBySignIn(name)
}
