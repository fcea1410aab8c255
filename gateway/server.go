package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/cluster"
	"github.com/warden-gw/warden/exceptions"
	dirs "github.com/warden-gw/warden/identity"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/recstore"
	"github.com/warden-gw/warden/vault"
)

// store is the part of audit.Store the gateway writes to. Every call blocks
// until the row is committed, so a failing database refuses sessions instead
// of letting them run unrecorded.
type store interface {
	StartSession(ctx context.Context, s audit.Session) error
	EndSession(ctx context.Context, id string, e audit.SessionEnd) error
	SetSessionCert(ctx context.Context, id, serial string) error
	LogCommand(ctx context.Context, c audit.Command) error
	Append(ctx context.Context, e audit.Event) error
	Sessions(ctx context.Context, f audit.SessionFilter) ([]audit.Session, error)
}

// signer issues the per-session certificate. Both vault.Builtin and
// vault.Vault satisfy it.
type signer interface {
	Sign(ctx context.Context, r vault.SignRequest) (*vault.Credential, error)
}

// staticKeys reads a break-glass role's static SSH key from Vault KV. The
// key is used to log in and never shown to anyone.
type staticKeys interface {
	Fetch(ctx context.Context, path string) (gossh.Signer, error)
}

// Options configures a Server. Policy, Store, Signer and HostKey are required.
type Options struct {
	Policy  *policy.Config
	Store   store
	Signer  signer
	HostKey gossh.Signer
	// JIT is the just-in-time workflow: requests, approvals and the grants
	// that admit privileged sessions. Nil admits no privileged session and
	// answers elevation commands with a refusal.
	JIT elevation
	// Exceptions is the exception register; nil refuses its commands.
	Exceptions *exceptions.Register
	// StaticKeys fetches a break-glass role's static credential (Vault
	// KV); nil refuses sessions of roles that name one.
	StaticKeys staticKeys
	// Rotator replaces that credential when its grant ends; nil records a
	// failed rotation (an open item in the evidence packet).
	Rotator rotator
	// Notifier receives alerts (rotation results); nil sends none.
	Notifier notifier
	// SignOn is single sign-on for SSH keys (authenticate.go,
	// commands_sso.go); nil admits policy keys only.
	SignOn signOn
	// ConsoleLinks issues the one-time links of `ssh GATEWAY console`
	// (console.Console, commands_console.go); nil refuses the command.
	ConsoleLinks consoleLinks
	// Rotations is the table of rotations owed by break-glass grants; nil
	// means JIT when it is one (*jit.Service), else no rotation worker.
	Rotations rotationLedger
	// Metrics counts sessions, refusals, signing and recording failures
	// (package metrics); nil counts nothing.
	Metrics observer
	// Uploads moves recordings to the object store while sessions live
	// (recordings.store: s3, record_upload.go); nil keeps them local.
	Uploads *recstore.Uploader
	// Bus reaches the other gateways sharing the store (package cluster):
	// a live view of a session another node holds streams over it
	// (cluster_watch.go); a kill of such a session, an ended grant and a
	// directory change reach the other nodes (cluster.go). Nil: this node
	// is alone, and sees and acts on its own sessions only.
	Bus cluster.Bus
	// NodeID names this node on the bus; "" means the store's node ID
	// (audit.Options.NodeID).
	NodeID string
	// NodeDeadAfter is the heartbeat age after which another node is taken
	// for dead and its open sessions are no longer listed as live; zero
	// means 30s.
	NodeDeadAfter time.Duration

	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Until returns a channel that fires once Now reaches t (the rotation
	// worker's timer); nil means time.After(t.Sub(Now())). Set it with Now.
	Until func(t time.Time) <-chan time.Time
	// Rand is the source of session IDs; nil means crypto/rand.
	Rand io.Reader
	// Logger receives operational logs; nil means slog.Default().
	Logger *slog.Logger
	// DialTimeout bounds connecting to a managed host; zero means 10s.
	DialTimeout time.Duration
	// RequestTimeout bounds how long a session channel may wait for its
	// shell, exec or subsystem request; zero means 30s.
	RequestTimeout time.Duration

	// hooks, nil outside tests, run at the moments of a session channel's
	// opening that a policy reload can race (export_test.go).
	hooks *sessionHooks
	// auditRetry, nil outside tests, replaces the first and the longest
	// interval between retries of held audit events (export_test.go).
	auditRetry *[2]time.Duration
}

// Server is a running gateway. Create it with New and run it with Serve.
type Server struct {
	opt  Options
	log  *slog.Logger
	srv  *gliderssh.Server
	live *registry
	// node is this node's ID ("" without one), busNode its name on the
	// cluster bus (cluster.go).
	node, busNode string
	rot           *rotationQueue // break-glass rotations due (breakglass.go)
	ends          *endRetrier    // session ends waiting for the store (end_retry.go)
	held          *auditHold     // audit events waiting for the store (audit_hold.go)
	// gate admits connections before their handshake and closes those that
	// do not authenticate in time; report aggregates what they did.
	gate   *gate
	report *preauthReport
	// refusals budgets the audit events of refusals after
	// authentication (postauth_report.go).
	refusals *refusalReport
	// users counts authenticated connections per user (conn.go).
	users *userConns
	// running counts session and command channels in flight, so that Serve
	// returns only after each has written its last row.
	running sync.WaitGroup

	// draining is set by Drain: new channels are refused.
	draining atomic.Bool
	// watches streams live views between nodes (cluster_watch.go).
	watches *clusterWatch
	// resyncs retries a resync the store did not answer (cluster.go).
	resyncs resyncState

	mu     sync.Mutex
	policy *policy.Config
	dir    *dirs.Directory // identity directories; nil without (directory.go)
}

// New validates opt and returns a Server ready to Serve.
func New(opt Options) (*Server, error) {
	switch {
	case opt.Policy == nil:
		return nil, errors.New("gateway: no policy")
	case opt.Store == nil:
		return nil, errors.New("gateway: no store")
	case opt.Signer == nil:
		return nil, errors.New("gateway: no credential signer")
	case opt.HostKey == nil:
		return nil, errors.New("gateway: no host key")
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Until == nil {
		now := opt.Now
		opt.Until = func(t time.Time) <-chan time.Time { return time.After(t.Sub(now())) }
	}
	if opt.Rotations == nil {
		opt.Rotations, _ = opt.JIT.(rotationLedger)
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	if opt.Metrics == nil {
		opt.Metrics = noMetrics{}
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.DialTimeout == 0 {
		opt.DialTimeout = 10 * time.Second
	}
	if opt.RequestTimeout == 0 {
		opt.RequestTimeout = 30 * time.Second
	}
	s := &Server{opt: opt, log: opt.Logger, policy: opt.Policy, live: newRegistry(), rot: newRotationQueue(),
		node: nodeName(opt)}
	s.ends = newEndRetrier(opt.Store.EndSession, opt.Logger)
	s.held = newAuditHold(opt.Store.Append, opt.Logger, s.now)
	if r := opt.auditRetry; r != nil {
		s.held.first, s.held.most = r[0], r[1]
	}
	if opt.Uploads != nil {
		// An upload that fails while the database is away too (one
		// outage behind another) is reported once the database is back,
		// not logged and lost.
		opt.Uploads.ReportTo(func(ctx context.Context, typ, subject string, data map[string]any) {
			s.audit(ctx, typ, "warden", subject, data)
		})
	}
	s.busNode = busName(s.node)
	s.report = newPreauthReport(s.now)
	s.report.refused = func(reason string) { opt.Metrics.Refused("auth.failed", reason) }
	s.refusals = newRefusalReport(s.now)
	s.users = newUserConns(maxConnsPerUser, maxSessionsPerUser)
	s.gate = newGate(opt.Policy.Limits, s.report, s.now)
	s.watches = newClusterWatch(s)
	s.srv = &gliderssh.Server{
		HostSigners:          []gliderssh.Signer{opt.HostKey},
		Version:              "Warden",
		PublicKeyHandler:     s.knownKey,
		ServerConfigCallback: s.serverConfig,
		ChannelHandlers: map[string]gliderssh.ChannelHandler{
			"session": s.trackChannel(s.handleSession),
			"default": s.refuseChannel,
		},
		RequestHandlers: map[string]gliderssh.RequestHandler{
			"default": s.refuseGlobalRequest,
		},
		ConnCallback: s.admitted,
		ConnectionFailedCallback: func(c net.Conn, err error) {
			s.log.Debug("handshake failed", "client", c.RemoteAddr().String(), "err", err)
		},
	}
	return s, nil
}

// Policy returns the policy in force: the YAML policy, merged with the
// directory users when a directory is in use (UseDirectory).
func (s *Server) Policy() *policy.Config {
	s.mu.Lock()
	p, d := s.policy, s.dir
	s.mu.Unlock()
	if d != nil {
		return d.Merge(p)
	}
	return p
}

// BasePolicy returns the YAML policy in force, without directory users.
func (s *Server) BasePolicy() *policy.Config {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.policy
}

// SetPolicy replaces the policy for new sessions; running sessions keep the
// decision they were admitted under.
func (s *Server) SetPolicy(p *policy.Config) {
	s.mu.Lock()
	s.policy = p
	s.mu.Unlock()
}

// Serve accepts connections on l until ctx is done or Shutdown is called.
// Live sessions are ended when ctx is done. Connections pass the
// pre-authentication limits (preauth.go) as they are accepted.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	stop := context.AfterFunc(ctx, func() {
		s.live.cancelAll(errShutdown)
		_ = s.srv.Close()
	})
	defer stop()
	// Audit events the store could not take are retried while the
	// gateway serves; their last try comes after everything below,
	// the reports' final windows included, has written its events.
	defer s.held.start()()
	defer s.watches.serve(ctx)()
	// The cluster's messages reach this node while it serves.
	defer s.joinCluster()()
	stopReports := s.reportLoop()
	defer func() {
		// gliderlabs closes only connections that finished their
		// handshake; the others are ours to close. Then the last,
		// partial windows of the report are written.
		s.gate.closeAll()
		stopReports()
		s.flushPreAuth(true)
		s.flushRefusals(true)
	}()
	// The rotation worker lives as long as the listener.
	wctx, stopWorker := context.WithCancel(ctx)
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		s.runRotations(wctx)
	}()
	s.running.Add(1)
	go func() {
		defer s.running.Done()
		s.ends.run(wctx)
	}()
	err := s.srv.Serve(gateListener{Listener: l, gate: s.gate})
	stopWorker()
	if errors.Is(err, gliderssh.ErrServerClosed) {
		s.running.Wait()
		return nil
	}
	if err != nil {
		return fmt.Errorf("gateway: serve: %w", err)
	}
	return nil
}

// Shutdown stops accepting connections and waits, until ctx is done, for
// open connections to finish.
func (s *Server) Shutdown(ctx context.Context) error {
	return s.srv.Shutdown(ctx)
}

func (s *Server) now() time.Time { return s.opt.Now().UTC() }

// reportTick is how often the pre-authentication report is looked at; a
// source's window is written between reportWindow and reportWindow +
// reportTick after it opened.
const reportTick = 10 * time.Second

// reportLoop writes the pre-authentication report's finished windows until
// the returned stop is called.
func (s *Server) reportLoop() (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(reportTick)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.flushPreAuth(false)
				s.flushRefusals(false)
			case <-done:
				return
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}

// flushPreAuth appends the report's finished windows (all of them when all
// is set) to the audit chain, one auth.failed event per source.
func (s *Server) flushPreAuth(all bool) {
	for _, e := range s.report.flush(all) {
		s.held.write(context.Background(), e)
		s.log.Info("unauthenticated connections", "client_addr", e.Subject, "reason", e.Data["reason"],
			"attempts", e.Data["attempts"], "timed_out", e.Data["timed_out"], "dropped", e.Data["dropped"], "evicted", e.Data["evicted"])
	}
}

// audit appends an audit event. It does not fail: the event is about
// something that was already refused or ended, and one the store cannot
// take now is held and appended, with its time, once it can (audit_hold.go).
func (s *Server) audit(ctx context.Context, typ, actor, subject string, data map[string]any) {
	s.held.write(ctx, audit.Event{TS: s.now(), Type: typ, Actor: actor, Subject: subject, Data: data})
}

// trackChannel counts a channel handler's run in s.running.
func (s *Server) trackChannel(h gliderssh.ChannelHandler) gliderssh.ChannelHandler {
	return func(srv *gliderssh.Server, conn *gossh.ServerConn, nc gossh.NewChannel, ctx gliderssh.Context) {
		if s.draining.Load() {
			_ = nc.Reject(gossh.ResourceShortage, "warden: gateway restarting; try again in a moment")
			return
		}
		s.running.Add(1)
		defer s.running.Done()
		h(srv, conn, nc, ctx)
	}
}

// DefaultAlgorithms is what the gateway offers its clients when the policy's
// ssh_algorithms leaves a list out: what OpenSSH offers by default, less what
// x/crypto does not implement (sntrup761, umac) and SHA-1. Every client that
// admins use finds one it speaks: paramiko 2.12 has no AES-GCM and no
// chacha20, PuTTY before 0.76 no AES-GCM, and a user's ssh_config may pin
// any of them.
//
// In SSH the client's order decides (RFC 4253 §7.1: its first choice that
// the server also offers), so this order is only the gateway's own
// preference, by cost per byte of the bridge: AES-GCM (AES-NI and
// carry-less multiplication in assembly, one pass) before
// chacha20-poly1305 (amd64 assembly only through the patched x/crypto in
// third_party/xcrypto, plus a pass for the AEAD tag it throws away) before
// AES-CTR with an HMAC (two passes over every byte). OpenSSH's client
// lists chacha20 first and gets it; `make bench` measures each cipher.
func DefaultAlgorithms() policy.SSHAlgorithms {
	return policy.SSHAlgorithms{
		Ciphers: []string{
			gossh.CipherAES128GCM, gossh.CipherAES256GCM, gossh.CipherChaCha20Poly1305,
			gossh.CipherAES128CTR, gossh.CipherAES192CTR, gossh.CipherAES256CTR,
		},
		// x/crypto adds curve25519-sha256@libssh.org after
		// curve25519-sha256 by itself. The post-quantum hybrid comes
		// first, as in OpenSSH 9.9 and later; finite-field groups last
		// (slowest, and 2048 bits for group14).
		KeyExchanges: []string{
			gossh.KeyExchangeMLKEM768X25519, gossh.KeyExchangeCurve25519,
			gossh.KeyExchangeECDHP256, gossh.KeyExchangeECDHP384, gossh.KeyExchangeECDHP521,
			gossh.KeyExchangeDH16SHA512, gossh.KeyExchangeDH14SHA256,
		},
		// Used only with AES-CTR; encrypt-then-MAC first.
		MACs: []string{gossh.HMACSHA256ETM, gossh.HMACSHA512ETM, gossh.HMACSHA256, gossh.HMACSHA512},
	}
}

// clientAlgorithms is the handshake configuration for a client connection:
// each of the policy's lists, or the default where it gives none.
func clientAlgorithms(p policy.SSHAlgorithms) gossh.Config {
	d := DefaultAlgorithms()
	pick := func(set, def []string) []string {
		if len(set) > 0 {
			return slices.Clone(set)
		}
		return def
	}
	return gossh.Config{
		Ciphers:      pick(p.Ciphers, d.Ciphers),
		KeyExchanges: pick(p.KeyExchanges, d.KeyExchanges),
		MACs:         pick(p.MACs, d.MACs),
	}
}
