package sso

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/policy"
)

// Users decides which Warden user a sign-in names. PolicyUsers answers
// from the YAML users; once directory (SCIM) users exist, package identity
// satisfies it with both, so that a provisioned user can sign in too.
type Users interface {
	// SignInUser returns the name of the Warden user that the IdP's
	// username claim names, or ok false when no user may sign in under
	// it.
	SignInUser(claim string) (name string, ok bool)
}

// Creator creates the user a sign-in names when its username claim matches
// no user and identity.oidc.create_users is on; package identity's
// Directory satisfies it (Directory.SignInUser).
type Creator interface {
	// CreateSignInUser makes sure claim is a user of source oidc in the
	// policy groups among groups, and returns its name, the groups it
	// is in and the claim groups the policy does not define. A name that
	// may not be created (it collides with a user of another source, or
	// fails the SCIM userName rules) or any store error is an error:
	// the sign-in is refused.
	CreateSignInUser(ctx context.Context, claim string, groups []string) (name string, in, ignored []string, err error)
	// CreatedBySignIn reports whether the user named name is one a
	// sign-in created (source oidc), whose groups a sign-in refreshes.
	CreatedBySignIn(name string) bool
}

// PolicyUsers matches the claim against the policy's users: exactly, or
// else case-insensitively when exactly one user matches that way (IdPs
// often capitalise what an admin typed in lower case).
func PolicyUsers(cfg func() *policy.Config) Users { return policyUsers(cfg) }

type policyUsers func() *policy.Config

func (p policyUsers) SignInUser(claim string) (string, bool) {
	c := p()
	if u := c.User(claim); u != nil {
		return u.Name, true
	}
	match := ""
	for _, u := range c.Users {
		if u.Name == claim {
			return u.Name, true
		}
	}
	for _, u := range c.Users {
		if strings.EqualFold(u.Name, claim) {
			if match != "" {
				return "", false // ambiguous: refuse rather than guess
			}
			match = u.Name
		}
	}
	return match, match != ""
}

// Options configures a Service.
type Options struct {
	OIDC  *policy.OIDC // identity.oidc; required
	Store *audit.Store // writer and read pool; required
	Users Users        // who may sign in; required
	// Create creates unknown sign-ins' users; required when
	// OIDC.CreateUsers is set, unused otherwise.
	Create Creator
	// BaseURL returns the base of the links printed for a sign-in begun
	// on an SSH connection that reached Warden at host (web.Server's
	// BaseURL); required.
	BaseURL func(host string) string
	// HTTPClient talks to the IdP; nil means one with the IdP timeout.
	HTTPClient *http.Client
	// PendingTTL is how long a printed link works; zero means 10m.
	PendingTTL time.Duration
	Now        func() time.Time // nil means time.Now
	Rand       io.Reader        // nil means crypto/rand
	Logger     *slog.Logger     // nil means slog.Default()
}

// Service is single sign-on for SSH keys: pending sign-ins, the browser
// flow, and the bindings they produce.
type Service struct {
	opt  Options
	log  *slog.Logger
	idp  *provider
	b    *bindings
	hmac [32]byte // keys the CSRF tokens; fresh each start

	mu       sync.Mutex
	byID     map[string]*pending
	byState  map[string]*pending
	used     map[string]time.Time // states already redeemed, until their sign-in's expiry
	bySource map[string]int
	// Browser sign-ins (browser.go), by state, and per source.
	browserFlows map[string]*browserFlow
	browserBySrc map[string]int
	// Connections of unknown keys admitted to sign in (AdmitConn).
	conns      int
	connsBySrc map[string]int
	// refusals bounds the sign-in pages' sso.refused events (refusals.go).
	refusals refusalBudget
}

// Bounds on pending sign-ins. Each one is an SSH connection that proved a
// key nobody knows; the bounds keep strangers from holding many.
const (
	defaultPendingTTL = 10 * time.Minute
	maxPending        = 256
	maxPendingPerSrc  = 8
)

// New reads the client secret and returns a Service. The IdP is not
// contacted until the first sign-in.
func New(opt Options) (*Service, error) {
	switch {
	case opt.OIDC == nil:
		return nil, errors.New("sso: no identity.oidc")
	case opt.Store == nil || opt.Users == nil || opt.BaseURL == nil:
		return nil, errors.New("sso: store, users and base URL are required")
	case opt.OIDC.CreateUsers && opt.Create == nil:
		return nil, errors.New("sso: identity.oidc.create_users needs a user creator")
	}
	if opt.PendingTTL == 0 {
		opt.PendingTTL = defaultPendingTTL
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.Rand == nil {
		opt.Rand = rand.Reader
	}
	if opt.Logger == nil {
		opt.Logger = slog.Default()
	}
	if opt.HTTPClient == nil {
		opt.HTTPClient = &http.Client{Timeout: idpTimeout}
	}
	raw, err := os.ReadFile(opt.OIDC.ClientSecretFile)
	if err != nil {
		return nil, fmt.Errorf("sso: read client_secret_file: %w", err)
	}
	secret := strings.TrimSpace(string(raw))
	if secret == "" {
		return nil, fmt.Errorf("sso: client_secret_file %s is empty", opt.OIDC.ClientSecretFile)
	}
	s := &Service{opt: opt, log: opt.Logger,
		idp: &provider{issuer: opt.OIDC.Issuer, clientID: opt.OIDC.ClientID, secret: secret,
			usernameClaim: opt.OIDC.UsernameClaim, groupsClaim: opt.OIDC.GroupsClaim, httpc: opt.HTTPClient},
		b:    &bindings{w: opt.Store, db: opt.Store.DB(), now: func() time.Time { return opt.Now().UTC() }},
		byID: map[string]*pending{}, byState: map[string]*pending{}, used: map[string]time.Time{}, bySource: map[string]int{}, connsBySrc: map[string]int{},
		browserFlows: map[string]*browserFlow{}, browserBySrc: map[string]int{}}
	if _, err := io.ReadFull(opt.Rand, s.hmac[:]); err != nil {
		return nil, fmt.Errorf("sso: random key: %w", err)
	}
	return s, nil
}

func (s *Service) now() time.Time { return s.opt.Now().UTC() }

// KeyTTL is how long a sign-in binds a key.
func (s *Service) KeyTTL() time.Duration { return s.opt.OIDC.KeyTTL.Std() }

// BoundUser returns the user the key with SHA-256 fingerprint fp is bound
// to now. A database error is logged and answers "not bound": the gateway
// then refuses the key, failing closed.
func (s *Service) BoundUser(ctx context.Context, fp string) (string, bool) {
	b, ok, err := s.b.lookup(ctx, fp)
	if err != nil {
		s.log.Error("sign-in binding lookup failed", "fingerprint", fp, "err", err)
		return "", false
	}
	return b.User, ok
}

// Bindings returns user's live bindings.
func (s *Service) Bindings(ctx context.Context, user string) ([]Binding, error) {
	return s.b.live(ctx, user)
}

// Logout ends the binding of the key fp, which must be user's; it returns
// ErrNotBound when there is none.
func (s *Service) Logout(ctx context.Context, fp, user string) error {
	return s.b.endKey(ctx, fp, user, EndLogout)
}

// EndUser ends every binding of user, for deprovisioning (reason
// EndDeprovisioned, actor the directory) or an administrator. It returns
// how many bindings it ended. The lead's identity code calls it when a
// directory deactivates or deletes a user.
func (s *Service) EndUser(ctx context.Context, user, reason, actor string) (int, error) {
	return s.b.endUser(ctx, user, reason, actor)
}

// sweepEvery is how often expired bindings are ended in the table (they
// stop authenticating at their expiry either way; the sweep writes the
// record) and expired pending sign-ins are dropped.
const sweepEvery = 30 * time.Second

// Run ends expired bindings and drops expired sign-ins until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	for {
		s.Sweep(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Sweep does one round of Run's work.
func (s *Service) Sweep(ctx context.Context) {
	if n, err := s.b.sweep(ctx); err != nil {
		s.log.Error("sign-in bindings not swept", "err", err)
	} else if n > 0 {
		s.log.Info("sign-in bindings expired", "count", n)
	}
	now := s.now()
	s.mu.Lock()
	var expired []*pending
	for _, p := range s.byID {
		if !now.Before(p.expires) {
			expired = append(expired, p)
		}
	}
	s.dropExpiredBrowserLocked()
	for st, until := range s.used {
		if !now.Before(until) {
			delete(s.used, st)
		}
	}
	s.mu.Unlock()
	for _, p := range expired {
		s.finish(p, Result{Err: refusal("the sign-in link expired; run login again")})
	}
}

// Begin starts a sign-in for key, proven by the SSH connection that ctx
// belongs to: the sign-in ends when ctx does. clientAddr is the SSH
// client's address (shown on the page, so a person can tell whose sign-in
// it is), localHost the address it reached Warden at (for the link).
func (s *Service) Begin(ctx context.Context, key gossh.PublicKey, clientAddr, localHost string) (*Pending, error) {
	base := s.opt.BaseURL(localHost)
	if base == "" {
		return nil, errors.New("sso: the HTTP listener is not running")
	}
	id, err := s.random(32)
	if err != nil {
		return nil, err
	}
	code, err := s.userCode()
	if err != nil {
		return nil, err
	}
	now := s.now()
	p := &pending{id: id, code: code, key: key, fp: gossh.FingerprintSHA256(key), clientAddr: clientAddr,
		src: sourceOf(clientAddr), base: base, created: now, expires: now.Add(s.opt.PendingTTL), done: make(chan Result, 1)}
	s.mu.Lock()
	switch {
	case len(s.byID) >= maxPending:
		s.mu.Unlock()
		return nil, refusal("too many sign-ins are waiting; try again in a few minutes")
	case s.bySource[p.src] >= maxPendingPerSrc:
		s.mu.Unlock()
		return nil, refusal("too many sign-ins are waiting from your address; finish or close them first")
	}
	s.byID[id] = p
	s.bySource[p.src]++
	s.mu.Unlock()
	stopCtx := context.AfterFunc(ctx, func() { s.finish(p, Result{Err: refusal("sign-in cancelled")}) })
	timer := time.AfterFunc(s.opt.PendingTTL, func() {
		s.finish(p, Result{Err: refusal("the sign-in link expired; run login again")})
	})
	p.stop = func() { stopCtx(); timer.Stop() }
	s.log.Info("sign-in started", "fingerprint", p.fp, "client_addr", clientAddr)
	return &Pending{URL: base + startPath + "?id=" + id, Code: formatCode(code), ExpiresAt: p.expires, Fingerprint: p.fp, p: p}, nil
}

// finish ends a pending sign-in once, with r for the waiting SSH client.
func (s *Service) finish(p *pending, r Result) {
	s.mu.Lock()
	if p.finished {
		s.mu.Unlock()
		return
	}
	p.finished = true
	delete(s.byID, p.id)
	if p.state != "" {
		delete(s.byState, p.state)
	}
	if s.bySource[p.src]--; s.bySource[p.src] <= 0 {
		delete(s.bySource, p.src)
	}
	s.mu.Unlock()
	if p.stop != nil {
		p.stop()
	}
	p.done <- r
}

func (s *Service) random(n int) (string, error) {
	b := make([]byte, n)
	if _, err := io.ReadFull(s.opt.Rand, b); err != nil {
		return "", fmt.Errorf("sso: random: %w", err)
	}
	return b64(b), nil
}

// audit appends an event; a failure is logged (the event is about a
// refusal that already happened).
func (s *Service) audit(ctx context.Context, typ, actor, subject string, data map[string]any) {
	err := s.opt.Store.Update(context.WithoutCancel(ctx), func(tx *audit.Tx) error {
		return tx.Append(audit.Event{TS: s.now(), Type: typ, Actor: actor, Subject: subject, Data: data})
	})
	if err != nil {
		s.log.Error("audit event not written", "type", typ, "subject", subject, "err", err)
	}
}

// PendingTTL is how long a printed link works.
func (s *Service) PendingTTL() time.Duration { return s.opt.PendingTTL }

// AdmitConn takes a slot for an SSH connection whose key nobody knows,
// admitted only to sign in: at most maxPendingPerSrc per source address
// and maxPending in all, since each is an authenticated connection a
// stranger holds. release gives the slot back (once).
func (s *Service) AdmitConn(clientAddr string) (release func(), ok bool) {
	src := sourceOf(clientAddr)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.conns >= maxPending || s.connsBySrc[src] >= maxPendingPerSrc {
		return nil, false
	}
	s.conns++
	s.connsBySrc[src]++
	var once sync.Once
	return func() {
		once.Do(func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.conns--
			if s.connsBySrc[src]--; s.connsBySrc[src] <= 0 {
				delete(s.connsBySrc, src)
			}
		})
	}, true
}
