package cli

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/cluster"
	"github.com/warden-gw/warden/console"
	"github.com/warden-gw/warden/evidence"
	"github.com/warden-gw/warden/exceptions"
	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/identity"
	"github.com/warden-gw/warden/internal/keyfile"
	"github.com/warden-gw/warden/jit"
	"github.com/warden-gw/warden/metrics"
	"github.com/warden-gw/warden/notify"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/recstore"
	"github.com/warden-gw/warden/rotate"
	"github.com/warden-gw/warden/scim"
	"github.com/warden-gw/warden/sso"
	"github.com/warden-gw/warden/vault"
	"github.com/warden-gw/warden/web"
	gossh "golang.org/x/crypto/ssh"
)

func runServe(e *env, args []string) error {
	fs := newFlags(e, "serve", "serve -c warden.yaml")
	cfgPath := fs.String("c", "warden.yaml", "policy and configuration file")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("serve takes no arguments (got %q)", pos[0])
	}
	cfg, err := policy.Load(*cfgPath)
	if err != nil {
		return err
	}
	// SIGTERM (and Ctrl-C) drains: see running.serve. SIGHUP reloads the
	// policy from the same file (warden reload sends it).
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts the drain; a second one is the operator
	// insisting, and gets the default: the process ends at once, and the
	// next start ends its open rows as interrupted.
	go func() { <-ctx.Done(); stop() }()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	log := slog.New(slog.NewTextHandler(e.stderr, nil))
	gw, err := openGateway(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer gw.close()
	gw.hup, gw.cfgPath = hup, *cfgPath
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	removePID, err := writePIDFile(cfg.DataDir)
	if err != nil {
		ln.Close()
		return err
	}
	defer removePID()
	log.Info("warden listening", "addr", ln.Addr().String(), "backend", cfg.Credentials.Backend, "data_dir", cfg.DataDir)
	return gw.serve(ctx, ln)
}

// running is a gateway with the store, signer, workflow and notifier it
// owns.
type running struct {
	srv   *gateway.Server
	store *audit.Store
	jit   *jit.Service
	hook  *notify.Webhook     // nil without notify.webhook_url
	web   *web.Server         // nil without http_listen (serve_http.go)
	sso   *sso.Service        // nil without identity.oidc
	dir   *identity.Directory // directory and sign-in created users; nil without either (openDirectory)
	cfg   *policy.Config      // as loaded at start: the settings a reload cannot change
	// scim serves /scim/v2 (scim.Prefix) when identity.directories is set;
	// serve_http.go mounts it on the HTTP listener.
	scim    http.Handler
	metrics *metrics.Metrics // nil without http_listen (serve_metrics.go)
	closer  func()
	log     *slog.Logger
	recs    recstore.Store // recordings.store s3; nil: local files (serve_recordings.go)
	self    *audit.Self    // this process in the nodes table (serve_nodes.go)

	// bus and leader join the gateways sharing the store (serve_cluster.go):
	// on PostgreSQL both are the *cluster.Postgres on the store's database;
	// on SQLite an in-process bus and cluster.Alone.
	bus    cluster.Bus
	leader cluster.Leader

	// backend is the store's database (store.driver), for what reads it
	// apart from store: the evidence schedule builds its packets from it.
	backend audit.Backend

	// console is the browser console; nil without http_listen (serve_http.go).
	console *console.Console
	// sshListen is the SSH listener's address once serve runs (the
	// console's sign-in page names it).
	sshListen atomic.Pointer[string]

	// pol is the policy in force, replaced by a reload (reload.go).
	pol atomic.Pointer[policy.Config]
	// hup delivers SIGHUP, and cfgPath is the file a reload reads; nil
	// hup: no reloads (tests that build a gateway in-process).
	hup     <-chan os.Signal
	cfgPath string
}

// openGateway opens the store, the credential backend and the host key for
// cfg and builds the gateway. Sessions a crash left open are closed first.
func openGateway(ctx context.Context, cfg *policy.Config, log *slog.Logger) (*running, error) {
	recs, err := openRecordingStore(ctx, cfg) // serve_recordings.go
	if err != nil {
		return nil, err
	}
	backend, err := storeBackend(cfg) // store.go
	if err != nil {
		return nil, err
	}
	st, err := audit.Open(ctx, cfg.DataDir, audit.Options{OutputIndex: true, Log: log, Recordings: recordingsOf(recs), Backend: backend,
		NodeID: cfg.NodeID})
	if err != nil {
		return nil, err
	}
	// This node's row in the nodes table, claimed first: a node_id a live
	// node on another host holds refuses the start before its sessions
	// are taken for orphans. The heartbeat (serve_nodes.go) keeps it fresh
	// so that other nodes on the store leave this node's sessions.
	self, err := nodeStart(ctx, st, nodeDeadAfter)
	if err != nil {
		st.Close()
		return nil, err
	}
	if n, err := st.CloseOrphans(ctx, audit.EndInterrupted); err != nil {
		st.Close()
		return nil, err
	} else if n > 0 {
		log.Warn("closed sessions left open by a previous run", "count", n, "node_id", cfg.NodeID)
	}
	// The policy in force is stored byte for byte with its SHA-256, and
	// sessions and grants name it, so that evidence is judged later by
	// this policy, not by whatever the file says then. A gateway that
	// cannot record it does not start. A reload must do the same before
	// it puts a new policy in force.
	if err := evidence.RecordPolicy(ctx, st, cfg, evidence.UseGateway, time.Time{}); err != nil {
		st.Close()
		return nil, err
	}
	log.Info("policy loaded", "sha256", cfg.Version())
	sig, closeSigner, err := openSigner(ctx, cfg, log)
	if err != nil {
		st.Close()
		return nil, err
	}
	hk, created, err := keyfile.LoadOrCreateEd25519(cfg.HostKey)
	if err != nil {
		closeSigner()
		st.Close()
		return nil, err
	}
	if created {
		log.Info("created gateway host key", "path", cfg.HostKey)
	}
	// One identity for the cluster: a node whose host key or CA differs
	// from a live node's does not serve (serve_nodes.go, audit NodeKeys).
	if err := nodeKeys(ctx, st, self, sig, hk.PublicKey(), log); err != nil {
		closeSigner()
		st.Close()
		return nil, err
	}
	bus, leader, closeBus, err := openCluster(ctx, backend, cfg.HostKey, log) // serve_cluster.go
	if err != nil {
		closeSigner()
		st.Close()
		return nil, err
	}
	uploads := startUploads(ctx, cfg, st, recs, log) // after CloseOrphans sealed what a crash left
	r := &running{store: st, backend: backend, self: self, cfg: cfg, log: log, recs: recordingsOf(recs), bus: bus, leader: leader, closer: func() {
		closeBus() // first: it waits for the led jobs, which use the store
		if uploads != nil {
			uploads.Close(time.Duration(cfg.ShutdownGrace))
		}
		closeSigner()
		st.Close()
	}}
	r.pol.Store(cfg)
	var notifier jit.Notifier
	if cfg.Notify.WebhookURL != "" {
		r.hook = notify.NewWebhook(cfg.Notify.WebhookURL, notify.WebhookOptions{Logger: log})
		notifier = r.hook
	}
	// The workflow decides by the gateway's policy: the YAML policy merged
	// with the directory users (gateway.Server.Policy). r.srv is set
	// below, before anything asks.
	r.jit, err = jit.New(jit.Options{Store: st, Policy: func() *policy.Config {
		if r.srv != nil {
			return r.srv.Policy()
		}
		return r.pol.Load()
	}, Notifier: notifier, Logger: log})
	if err != nil {
		r.closer()
		return nil, err
	}
	r.announceJIT() // serve_cluster.go
	gopt := gateway.Options{Policy: cfg, Store: st, Signer: sig, HostKey: hk, Logger: log, JIT: r.jit,
		Exceptions: &exceptions.Register{Store: st, DB: st.DB()}, Uploads: uploads}
	if r.hook != nil {
		gopt.Notifier = r.hook
	}
	gopt.Bus = r.bus // kills, ended grants and directory changes reach the other nodes (gateway/cluster.go)
	if needsKV(cfg) {
		v, ok := sig.(*vault.Vault)
		if !ok {
			if v, err = openKV(ctx, cfg, log); err != nil {
				r.closer()
				return nil, err
			}
			prev := r.closer
			r.closer = func() { v.Close(); prev() }
		}
		gopt.StaticKeys, gopt.Rotator = kvKeys{v}, kvRotator{v: v, log: log}
	}
	if err := r.openHTTP(cfg, sig, &gopt); err != nil { // serve_http.go
		r.closer()
		return nil, err
	}
	if err := r.openConsole(cfg, &gopt); err != nil { // serve_http.go, after openHTTP's single sign-on
		r.closer()
		return nil, err
	}
	r.srv, err = gateway.New(gopt)
	if err != nil {
		r.closer()
		return nil, err
	}
	// A grant that ends (expiry, revocation, deprovisioning) closes its
	// live sessions at once.
	r.jit.OnGrantEnd(r.srv.GrantEnded)
	if err := r.openDirectory(ctx); err != nil {
		r.closer()
		return nil, err
	}
	return r, nil
}

// serve runs the gateway and its background work (the workflow's
// deadlines, webhook delivery) until ctx is done, reloading the policy on
// every SIGHUP. When ctx is done (SIGTERM) it drains: the listener closes,
// live sessions are told "warden: gateway restarting" and given
// shutdown_grace to end by themselves, the rest are closed, and serve
// returns once every session row is ended. The gateway's own work runs
// under a context of its own until then, so that the grants' deadlines
// still apply while it drains.
func (r *running) serve(ctx context.Context, ln net.Listener) error {
	addr := ln.Addr().String()
	r.sshListen.Store(&addr)
	sctx, stopServe := context.WithCancel(context.WithoutCancel(ctx))
	defer stopServe()
	bg, stopBG := context.WithCancel(sctx)
	defer stopBG()
	// The workflow's deadlines and the evidence schedule run once per
	// cluster, on the leader of each (serve_cluster.go); a node alone
	// always leads.
	var leadingJIT atomic.Bool
	r.bus.OnResync(func() {
		if leadingJIT.Load() {
			r.resyncJIT(bg)
		}
	})
	go r.leader.Lead(bg, "jit", func(ctx context.Context) { r.leadJIT(ctx, &leadingJIT) })
	if r.hook != nil {
		go r.hook.Run(bg)
		defer r.hook.Close()
	}
	if r.cfg.Evidence.Schedule != "" {
		go r.leader.Lead(bg, "evidence", func(ctx context.Context) {
			var n evidence.Notifier
			if r.hook != nil {
				n = evidenceNotifier{r.hook}
			}
			err := evidence.RunMonthly(ctx, evidence.ScheduleOptions{
				Schedule: r.cfg.Evidence.Schedule, DataDir: r.cfg.DataDir, Backend: r.backend, Policy: r.cfg, Notifier: n, Store: r.store, Recordings: r.recs,
				Keys: evidence.KeysFor(r.cfg, r.cfg.DataDir, serveKeyFetcher(r.cfg, r.log)),
				Logf: func(format string, args ...any) { r.log.Error(fmt.Sprintf(format, args...)) },
			})
			if err != nil {
				r.log.Error("evidence schedule stopped", "err", err)
			}
		})
	}
	waitHTTP, err := r.serveHTTP(bg) // serve_http.go
	if err != nil {
		return err
	}
	defer waitHTTP()
	defer stopBG()
	// The heartbeat runs through the drain: a node still ending its
	// sessions is alive.
	// On a shared store (PostgreSQL) a node cut off from it ends its own
	// sessions before the others end their rows (serve_nodes.go); a node
	// alone on SQLite has nobody to be taken for dead by.
	var lost func() int
	if r.cfg.Store.Driver == policy.StorePostgres {
		lost = r.srv.StoreLost
	}
	stopNode := startNode(sctx, r.store, r.self, sealerOf(r.recs), r.log, nodeHeartbeat, lost) // serve_nodes.go
	defer stopNode()
	errc := make(chan error, 1)
	go func() { errc <- r.srv.Serve(sctx, ln) }()
	for ctx.Err() == nil {
		select {
		case err := <-errc:
			return err
		case <-r.hup:
			r.reload(sctx, r.cfgPath)
		case <-ctx.Done():
		}
	}
	grace := r.pol.Load().ShutdownGrace.Std()
	r.log.Info("draining: no new connections; live sessions told the gateway is restarting", "shutdown_grace", grace.String())
	r.srv.Drain(grace)
	stopServe()
	err = <-errc
	stopNode()
	// A clean stop: stopped_at tells the other nodes this one left with
	// its sessions ended, not that it died.
	if serr := r.store.NodeStopped(context.WithoutCancel(ctx)); serr != nil {
		r.log.Error("node stop not recorded", "err", serr)
	}
	// A store that failed or hung through the drain did not take every
	// session's end: say so, rather than claim the rows are closed.
	if n := r.srv.UnclosedRows(); n > 0 {
		r.log.Warn("gateway stopped; session rows left open because the store did not take their ends: the next start closes them as interrupted", "sessions", n)
	} else {
		r.log.Info("gateway stopped; every session row ended")
	}
	return err
}

func (r *running) close() { r.closer() }

// gatewaySigner is what both credential backends offer.
type gatewaySigner interface {
	Sign(ctx context.Context, r vault.SignRequest) (*vault.Credential, error)
	CAPublicKey(ctx context.Context) (gossh.PublicKey, error)
}

// openSigner opens the configured credential backend. There is no fallback
// from Vault to the built-in CA: a gateway configured for Vault that cannot
// reach it refuses sessions rather than issuing credentials hosts should not
// trust.
func openSigner(ctx context.Context, cfg *policy.Config, log *slog.Logger) (gatewaySigner, func(), error) {
	switch cfg.Credentials.Backend {
	case "", "builtin":
		b, err := vault.OpenBuiltin(cfg.DataDir, vault.BuiltinOptions{})
		if err != nil {
			return nil, nil, err
		}
		return b, func() {}, nil
	case "vault":
		vc := cfg.Credentials.Vault
		v, err := vault.OpenVault(ctx, vault.VaultOptions{
			Address: vc.Address, Mount: vc.Mount, Role: vc.Role, Timeout: time.Duration(vc.Timeout), Logger: log,
			Auth: vault.AuthConfig{
				Method: vc.Auth.Method, Token: os.Getenv("VAULT_TOKEN"), TokenFile: vc.Auth.TokenFile,
				RoleID: vc.Auth.RoleID, SecretIDFile: vc.Auth.SecretIDFile,
			},
		})
		if err != nil {
			return nil, nil, err
		}
		return v, v.Close, nil
	}
	return nil, nil, errors.New("unknown credentials.backend " + cfg.Credentials.Backend)
}

// serveKeyFetcher reads the evidence signing key from Vault KV when the
// policy keeps it there, with a fresh login each month.
func serveKeyFetcher(cfg *policy.Config, log *slog.Logger) evidence.KeyFetcher {
	if cfg.Evidence.SigningKeyVaultKV == "" {
		return nil
	}
	return func(ctx context.Context, path string) (gossh.Signer, error) {
		v, err := openKV(ctx, cfg, log)
		if err != nil {
			return nil, err
		}
		defer v.Close()
		s, _, err := rotate.Fetch(ctx, v.API(), path)
		return s, err
	}
}

// evidenceNotifier adapts the webhook to the evidence schedule.
type evidenceNotifier struct{ w *notify.Webhook }

func (n evidenceNotifier) Notify(ctx context.Context, ev evidence.Event) error {
	n.w.Notify(ctx, notify.Event{Type: ev.Type, Text: ev.Text, Fields: ev.Fields})
	return nil
}

// openDirectory, with identity.directories set or identity.oidc.create_users
// on, loads the directory users (and those sign-in created), makes the
// gateway consult them, and builds the SCIM handler. A token file
// that cannot be read stops the start: a directory nobody can reach, or
// anybody can impersonate, is a misconfiguration to fix, not to run with.
func (r *running) openDirectory(ctx context.Context) error {
	creates := r.cfg.Identity.OIDC != nil && r.cfg.Identity.OIDC.CreateUsers
	if len(r.cfg.Identity.Directories) == 0 && !creates {
		return nil
	}
	d, err := identity.Open(ctx, identity.Options{Store: r.store, Policy: r.srv.BasePolicy, Logger: r.log})
	if err != nil {
		return err
	}
	r.srv.UseDirectory(d)
	r.dir = d
	if len(r.cfg.Identity.Directories) == 0 {
		return nil
	}
	h, err := scim.NewHandler(d, scim.Options{Policy: r.srv.BasePolicy, Store: r.store, Logger: r.log})
	if err != nil {
		return err
	}
	r.scim = h
	if r.web != nil { // identity.directories requires http_listen
		r.web.Handle(scim.Prefix+"/", r.metrics.SCIM(h)) // counted; nil metrics: h itself
	}
	return nil
}
