package vault

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/crypto/ssh"
)

// Defaults for VaultOptions and SetupOptions fields left empty.
const (
	// DefaultMount is the SSH secrets engine's mount path.
	DefaultMount = "ssh"
	// DefaultRole is the signing role.
	DefaultRole = "warden"
	// DefaultTimeout bounds each Sign, matching credentials.vault.timeout.
	DefaultTimeout = 5 * time.Second
)

var (
	// mountPattern allows nested mounts ("team/ssh") but no segment that
	// starts with '.', so no ".." can climb out of the mount.
	mountPattern = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}(/[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}){0,7}$`)
	rolePattern  = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)
)

// VaultOptions configures the Vault backend.
type VaultOptions struct {
	// Address is Vault's URL; empty means VAULT_ADDR. Mount and Role name
	// the SSH secrets engine and its signing role (default "ssh", "warden").
	Address, Mount, Role string
	// Timeout bounds every call, including a login and its retry; Vault
	// slower than this counts as unavailable. Zero means DefaultTimeout.
	Timeout time.Duration
	// Auth says how to log in.
	Auth AuthConfig
	// Now is the clock a returned certificate is checked against; nil
	// means time.Now.
	Now func() time.Time
	// Logger receives renewal and re-login events; nil discards them.
	Logger *slog.Logger
}

// Vault signs session certificates with HashiCorp Vault's SSH secrets
// engine. It is safe for concurrent use.
type Vault struct {
	client   *api.Client
	timeout  time.Duration
	mount    string
	signPath string
	now      func() time.Time
	log      *slog.Logger

	// loginMu serializes logins and guards auth. gen counts logins, so a
	// burst of Sign calls refused with the same stale token logs in once.
	loginMu sync.Mutex
	auth    authenticator
	gen     atomic.Uint64
	// renewed carries the newest login to the renewal goroutine; only the
	// latest matters, so a send replaces an unread one.
	renewed chan *api.Secret

	caMu sync.Mutex
	ca   ssh.PublicKey // the mount's CA, cached after the first fetch

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// OpenVault checks the options, logs in, and starts the goroutine that
// renews the token and logs in again when renewal ends. That goroutine runs
// until ctx is done or Close is called. A failed login wraps ErrUnavailable.
func OpenVault(ctx context.Context, opt VaultOptions) (*Vault, error) {
	if opt.Mount == "" {
		opt.Mount = DefaultMount
	}
	if opt.Role == "" {
		opt.Role = DefaultRole
	}
	if opt.Timeout <= 0 {
		opt.Timeout = DefaultTimeout
	}
	if opt.Auth.Method == "" {
		opt.Auth.Method = AuthToken
	}
	if !mountPattern.MatchString(opt.Mount) {
		return nil, fmt.Errorf("vault: invalid mount %q", opt.Mount)
	}
	if !rolePattern.MatchString(opt.Role) {
		return nil, fmt.Errorf("vault: invalid role %q", opt.Role)
	}
	v := &Vault{
		timeout:  opt.Timeout,
		mount:    opt.Mount,
		signPath: opt.Mount + "/sign/" + opt.Role,
		now:      opt.Now,
		log:      opt.Logger,
		auth:     authenticator{cfg: opt.Auth},
		renewed:  make(chan *api.Secret, 1),
	}
	if v.now == nil {
		v.now = time.Now
	}
	if v.log == nil {
		v.log = slog.New(slog.DiscardHandler)
	}
	if err := v.auth.check(); err != nil {
		return nil, err
	}
	client, err := newClient(opt.Address, opt.Timeout)
	if err != nil {
		return nil, err
	}
	v.client = client

	lctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	if err := v.relogin(lctx, 0); err != nil {
		return nil, fmt.Errorf("%w: log in to %s: %w", ErrUnavailable, client.Address(), err)
	}
	wctx, stop := context.WithCancel(ctx)
	v.cancel = stop
	v.wg.Add(1)
	go v.watch(wctx)
	return v, nil
}

// newClient builds an api client that fails fast: no retries, so a sealed
// or overloaded Vault is reported at once instead of after backoff.
func newClient(address string, timeout time.Duration) (*api.Client, error) {
	cfg := api.DefaultConfig()
	if cfg.Error != nil {
		return nil, fmt.Errorf("vault: client config: %w", cfg.Error)
	}
	if address != "" {
		cfg.Address = address
	}
	cfg.Timeout = timeout
	cfg.MaxRetries = 0
	c, err := api.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("vault: client: %w", err)
	}
	// api.NewClient picks up VAULT_TOKEN; Warden uses only the token its
	// configured auth method produced.
	c.ClearToken()
	return c, nil
}

// Close stops the renewal goroutine and waits for it. The token is left to
// expire.
func (v *Vault) Close() {
	v.cancel()
	v.wg.Wait()
}

// Sign generates a session key and has Vault sign it. The whole call,
// including one re-login after an authentication failure, is bounded by
// the timeout. Every Vault failure wraps ErrUnavailable.
func (v *Vault) Sign(ctx context.Context, r SignRequest) (*Credential, error) {
	if err := r.validate(); err != nil {
		return nil, err
	}
	key, err := newSessionKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()

	gen := v.gen.Load()
	cred, err := v.sign(ctx, r, key)
	if isAuthFailure(err) {
		// The token may have expired or been revoked since the last
		// renewal; one fresh login decides whether it was only that.
		v.log.Warn("vault: sign refused; logging in again", "err", err)
		if lerr := v.relogin(ctx, gen); lerr != nil {
			err = fmt.Errorf("%w; log in again: %w", err, lerr)
		} else {
			cred, err = v.sign(ctx, r, key)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("%w: sign %s for %s: %w", ErrUnavailable, r.Login, r.User, err)
	}
	return cred, nil
}

// sign is one POST to MOUNT/sign/ROLE and the check of its answer.
func (v *Vault) sign(ctx context.Context, r SignRequest, key ssh.Signer) (*Credential, error) {
	ca, err := v.caKey(ctx, false)
	if err != nil {
		return nil, err
	}
	s, err := v.client.Logical().WriteWithContext(ctx, v.signPath, map[string]any{
		"public_key":       string(ssh.MarshalAuthorizedKey(key.PublicKey())),
		"cert_type":        "user",
		"valid_principals": r.Login,
		"key_id":           r.keyID(),
		"ttl":              fmt.Sprintf("%ds", r.TTL/time.Second),
		// Vault replaces an empty map (no pty) with the role's
		// default_extensions, so Setup writes a role without any, and
		// checkCert refuses a certificate from a role that has them.
		"extensions": r.extensions(),
	})
	if err != nil {
		return nil, err
	}
	if s == nil || s.Data == nil {
		return nil, errors.New("vault: sign: empty response")
	}
	text, _ := s.Data["signed_key"].(string)
	cert, err := parseSignedKey(text)
	if err != nil {
		return nil, err
	}
	if cert.SignatureKey != nil && !bytes.Equal(cert.SignatureKey.Marshal(), ca.Marshal()) {
		// The mount's CA may have been rotated since it was cached.
		if ca, err = v.caKey(ctx, true); err != nil {
			return nil, err
		}
	}
	if err := checkCert(cert, r, key.PublicKey(), ca, v.now()); err != nil {
		return nil, err
	}
	return newCredential(cert, key)
}

// isAuthFailure reports Vault's answer to a missing, expired, revoked or
// insufficient token: 403 permission denied.
func isAuthFailure(err error) bool {
	var re *api.ResponseError
	return errors.As(err, &re) && re.StatusCode == http.StatusForbidden
}

// CAPublicKey fetches the mount's CA public key (GET /v1/MOUNT/public_key),
// the value for sshd's TrustedUserCAKeys on managed hosts.
func (v *Vault) CAPublicKey(ctx context.Context) (ssh.PublicKey, error) {
	ctx, cancel := context.WithTimeout(ctx, v.timeout)
	defer cancel()
	ca, err := v.caKey(ctx, true)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return ca, nil
}

// caKey returns the cached CA key, fetching it first when there is none or
// refresh is set.
func (v *Vault) caKey(ctx context.Context, refresh bool) (ssh.PublicKey, error) {
	v.caMu.Lock()
	defer v.caMu.Unlock()
	if v.ca != nil && !refresh {
		return v.ca, nil
	}
	ca, err := fetchCAPublicKey(ctx, v.client, v.mount)
	if err != nil {
		return nil, err
	}
	v.ca = ca
	return ca, nil
}

// fetchCAPublicKey reads MOUNT/public_key, which Vault serves as plain text
// without authentication.
func fetchCAPublicKey(ctx context.Context, c *api.Client, mount string) (ssh.PublicKey, error) {
	resp, err := c.Logical().ReadRawWithContext(ctx, mount+"/public_key")
	if err != nil {
		return nil, fmt.Errorf("vault: read %s/public_key: %w", mount, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("vault: read %s/public_key: %w", mount, err)
	}
	pub, _, _, _, err := ssh.ParseAuthorizedKey(b)
	if err != nil {
		return nil, fmt.Errorf("vault: parse %s/public_key (is a CA configured? run warden vault setup): %w", mount, err)
	}
	return pub, nil
}

// API returns the Vault client, logged in and kept renewed, for other
// secrets Warden reads with the same identity (a break-glass role's KV
// credential). Its token changes on re-login; take it again for each use.
func (v *Vault) API() *api.Client { return v.client }
