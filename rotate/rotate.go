package rotate

import (
	"context"
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/policy"
)

// The steps of a rotation, in the order Rotate runs them. They appear in
// Result.Steps and StepError.Step.
const (
	StepFetch     = "fetch"      // read the current key and version from Vault
	StepGenerate  = "generate"   // make the new ed25519 key
	StepInstall   = "install"    // old key session: append the new public key
	StepVerifyNew = "verify-new" // new key session: run true
	StepStore     = "store"      // write the new key as a new KV version (cas)
	StepRemoveOld = "remove-old" // new key session: delete the old key's line
	StepSources   = "sources"    // no retired key in any file sshd reads, for any account
	StepCheck     = "check"      // old key refused, new key logs in
)

// DefaultDialTimeout bounds each SSH connect and handshake when
// Options.DialTimeout is zero.
const DefaultDialTimeout = 10 * time.Second

// undoTimeout bounds the removal of an installed new key after a failure.
// It runs even when the caller's context has ended: a half-done rotation is
// worth one more bounded attempt to tidy up.
const undoTimeout = 30 * time.Second

// loginPattern is the policy's alphabet for logins.
var loginPattern = regexp.MustCompile(`^[a-z_][a-zA-Z0-9._-]{0,63}$`)

// Options configures Rotate. The zero value of every field but Client is
// usable.
type Options struct {
	// Client talks to Vault and must already hold a token that may read
	// and write the KV path.
	Client *api.Client
	// Now dates the new key's comment; nil means time.Now.
	Now func() time.Time
	// Logger receives one line per step (public fingerprints, versions,
	// never a private key); nil discards.
	Logger *slog.Logger
	// DialTimeout bounds each SSH connect and handshake; zero means
	// DefaultDialTimeout.
	DialTimeout time.Duration
	// Rand is the entropy of the new key; nil means crypto/rand. Tests may
	// pass a deterministic reader.
	Rand io.Reader
}

// Target names the credential to rotate and where its public key lives.
type Target struct {
	// Host is the managed host whose login the key opens; its host key is
	// verified as the policy says.
	Host *policy.Host
	// Login is the account on Host.
	Login string
	// KVPath is the KV v2 API path of the secret, as in the policy's
	// credential.vault_kv ("secret/data/breakglass/acme").
	KVPath string
	// AuthorizedKeys is the authorized_keys file on Host that holds the
	// key; relative paths start at the login's home directory. Empty means
	// DefaultAuthorizedKeys.
	AuthorizedKeys string
	// SSHDConfig is the sshd configuration file on Host that `sshd -T`
	// reads in the sources step; empty means sshd's own default.
	SSHDConfig string
	// Retire lists more authorized_keys blobs (base64) that must be gone
	// from the host when the rotation ends: keys an earlier, interrupted
	// rotation of the same grant fetched. The key fetched now is always
	// retired.
	Retire []string
	// OnFetch, when set, is called with the key fetched from Vault before
	// the host is touched; an error stops the rotation. The caller records
	// the key there, so a later attempt still retires it even if this one
	// stores a new key in Vault and then dies.
	OnFetch func(ctx context.Context, old gossh.PublicKey) error
}

// Result describes a rotation, complete or not. Fingerprints are SHA256
// fingerprints of public keys; versions are KV versions, NewVersion zero
// while Vault still holds the old key.
type Result struct {
	OldFingerprint, NewFingerprint string
	OldVersion, NewVersion         int
	// Steps lists the steps that completed, in order.
	Steps []string
	// SourcesChecked counts the key files the sources step read or found
	// absent.
	SourcesChecked int
}

// StepError is the error of a failed rotation: the step that failed and
// why. Steps before StepStore leave Vault on the old key; from StepStore on
// (when Result.NewVersion is set) Vault holds the new, proven key.
type StepError struct {
	Step string // one of the Step constants
	Err  error  // the cause, including whether an installed new key was removed again
}

// Error returns "rotate: STEP: cause".
func (e *StepError) Error() string {
	return "rotate: " + e.Step + ": " + strings.TrimPrefix(e.Err.Error(), "rotate: ")
}

// Unwrap returns the cause, so errors.Is finds ErrConflict,
// hostkey.ErrMismatch and the like.
func (e *StepError) Unwrap() error { return e.Err }

// Rotate replaces the SSH key stored at t.KVPath with a new one, on the host
// and in Vault, in the order the package documentation explains so that
// Vault never holds a key the host refuses. A failure returns a *StepError
// and the Result so far. Rotations of the same KV path in this process wait
// for each other.
func Rotate(ctx context.Context, opt Options, t Target) (Result, error) {
	r, err := newRotation(opt, t)
	if err != nil {
		return Result{}, err
	}
	unlock, err := pathLocks.lock(ctx, t.KVPath)
	if err != nil {
		return Result{}, fmt.Errorf("rotate: wait for another rotation of %s: %w", t.KVPath, err)
	}
	defer unlock()

	steps := []struct {
		name string
		run  func(context.Context) error
	}{
		{StepFetch, r.fetch}, {StepGenerate, r.generate}, {StepInstall, r.install},
		{StepVerifyNew, r.verifyNew}, {StepStore, r.store}, {StepRemoveOld, r.removeOld},
		{StepSources, r.checkSources}, {StepCheck, r.check},
	}
	for _, s := range steps {
		if err := s.run(ctx); err != nil {
			if s.name == StepInstall || s.name == StepVerifyNew {
				err = r.undo(ctx, err)
			}
			r.log.Warn("rotate: failed", "step", s.name, "err", err)
			return r.res, &StepError{Step: s.name, Err: err}
		}
		r.res.Steps = append(r.res.Steps, s.name)
		r.log.Info("rotate: step done", "step", s.name)
	}
	r.log.Info("rotate: rotated", "old_key", r.res.OldFingerprint, "new_key", r.res.NewFingerprint,
		"old_version", r.res.OldVersion, "new_version", r.res.NewVersion)
	return r.res, nil
}

// rotation is the state of one Rotate call.
type rotation struct {
	opt     Options
	t       Target
	log     *slog.Logger
	res     Result
	old     *kvKey
	newKey  gossh.Signer
	newPEM  string // OpenSSH private key, for Vault only
	newPub  string // "ssh-ed25519 AAAA... comment"
	comment string
	// appended is set once the append command ran, from when the host may
	// hold the new line and a failure must remove it again.
	appended bool
	// retire holds the blobs of every key that must be gone at the end:
	// Target.Retire and the fetched key.
	retire []string
}

func newRotation(opt Options, t Target) (*rotation, error) {
	switch {
	case opt.Client == nil:
		return nil, errors.New("rotate: no vault client")
	case t.Host == nil || t.Host.Address == "":
		return nil, errors.New("rotate: target has no host address")
	case !loginPattern.MatchString(t.Login):
		return nil, fmt.Errorf("rotate: invalid login %q", t.Login)
	}
	if _, _, err := splitKVPath(t.KVPath); err != nil {
		return nil, err
	}
	if t.AuthorizedKeys == "" {
		t.AuthorizedKeys = DefaultAuthorizedKeys
	}
	if err := checkRemotePath(t.AuthorizedKeys); err != nil {
		return nil, err
	}
	if t.SSHDConfig != "" {
		if err := checkRemotePath(t.SSHDConfig); err != nil {
			return nil, err
		}
	}
	if _, err := keyBlobs(t.Retire); err != nil {
		return nil, fmt.Errorf("rotate: %w", err)
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	if opt.DialTimeout <= 0 {
		opt.DialTimeout = DefaultDialTimeout
	}
	log := opt.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("host", t.Host.Name, "login", t.Login, "kv_path", t.KVPath)
	return &rotation{opt: opt, t: t, log: log}, nil
}

func (r *rotation) fetch(ctx context.Context) error {
	k, err := readKey(ctx, r.opt.Client, r.t.KVPath)
	if err != nil {
		return err
	}
	r.old = k
	r.res.OldVersion = k.version
	r.res.OldFingerprint = gossh.FingerprintSHA256(k.signer.PublicKey())
	for _, b := range append(slices.Clone(r.t.Retire), blobOf(k.signer.PublicKey())) {
		if !slices.Contains(r.retire, b) {
			r.retire = append(r.retire, b)
		}
	}
	if r.t.OnFetch != nil {
		if err := r.t.OnFetch(ctx, k.signer.PublicKey()); err != nil {
			return fmt.Errorf("rotate: record the fetched key: %w", err)
		}
	}
	return nil
}

func (r *rotation) generate(context.Context) error {
	// A nil Rand makes ed25519 use the system's secure source.
	_, priv, err := ed25519.GenerateKey(r.opt.Rand)
	if err != nil {
		return fmt.Errorf("rotate: generate key: %w", err)
	}
	signer, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		return fmt.Errorf("rotate: generate key: %w", err)
	}
	// The comment is built from a fixed alphabet, never from policy or user
	// input, because it travels into a shell command and a file sshd reads.
	r.comment = "warden-rotate-" + r.opt.Now().UTC().Format("20060102T150405Z")
	blk, err := gossh.MarshalPrivateKey(priv, r.comment)
	if err != nil {
		return fmt.Errorf("rotate: marshal key: %w", err)
	}
	r.newKey = signer
	r.newPEM = string(pem.EncodeToMemory(blk))
	r.newPub = keyLine(signer.PublicKey(), r.comment)
	r.res.NewFingerprint = gossh.FingerprintSHA256(signer.PublicKey())
	return nil
}

func (r *rotation) install(ctx context.Context) error {
	c, err := dial(ctx, r.t.Host, r.t.Login, r.old.signer, r.opt.DialTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	file := r.t.AuthorizedKeys
	content, err := run(ctx, c, readScript(file))
	if err != nil {
		return fmt.Errorf("rotate: read %s on %s: %w", file, r.t.Host.Name, err)
	}
	_, found := findKey(content, blobOf(r.old.signer.PublicKey()))
	if !found {
		// The old key logs in through some other file or command; a new
		// key installed here could never take its place.
		return fmt.Errorf("rotate: the old key %s is not in %s on %s, so it could not be removed; nothing changed",
			r.res.OldFingerprint, file, r.t.Host.Name)
	}
	r.appended = true
	// The new line carries no options: options on the old line may have
	// been planted (command="..." running a backdoor at every login), and
	// copying them would make them survive every rotation.
	if _, err := run(ctx, c, appendScript(file, keyLine(r.newKey.PublicKey(), r.comment))); err != nil {
		return fmt.Errorf("rotate: append to %s on %s: %w", file, r.t.Host.Name, err)
	}
	return nil
}

func (r *rotation) verifyNew(ctx context.Context) error {
	err := probe(ctx, r.t.Host, r.t.Login, r.newKey, r.opt.DialTimeout)
	if errors.Is(err, errRefused) {
		return fmt.Errorf("rotate: the new key does not log in (does sshd read %s?): %w", r.t.AuthorizedKeys, err)
	}
	return err
}

func (r *rotation) store(ctx context.Context) error {
	v, werr := writeKey(ctx, r.opt.Client, r.t.KVPath, r.old, r.newPEM, r.newPub)
	if werr == nil {
		r.res.NewVersion = v
	}
	// Read back either way: after a success to prove what Vault serves,
	// after a failure to learn whether the write landed all the same (a
	// lost response) before the host is touched.
	cur, rerr := readKey(ctx, r.opt.Client, r.t.KVPath)
	switch {
	case rerr == nil && gossh.FingerprintSHA256(cur.signer.PublicKey()) == r.res.NewFingerprint:
		if werr != nil {
			r.log.Warn("rotate: kv write reported an error but landed", "err", werr)
		}
		r.res.NewVersion = cur.version
		return nil
	case werr == nil && rerr != nil:
		return fmt.Errorf("rotate: wrote %s version %d but cannot read it back: %w", r.t.KVPath, v, rerr)
	case werr == nil:
		// Someone wrote after us, perhaps a rotation that started from
		// our key; the host stays as it is.
		return fmt.Errorf("rotate: wrote %s version %d but it now holds %s (version %d)",
			r.t.KVPath, v, gossh.FingerprintSHA256(cur.signer.PublicKey()), cur.version)
	case rerr != nil:
		// Vault may hold either key; both stay authorized so that whichever
		// it holds still logs in.
		return fmt.Errorf("%w; cannot read %s back (%v), so both keys stay authorized", werr, r.t.KVPath, rerr)
	case cur.version != r.old.version:
		werr = fmt.Errorf("rotate: %s is at version %d, fetched %d: %w (%v)", r.t.KVPath, cur.version, r.old.version, ErrConflict, werr)
	}
	// Vault holds a key other than the new one, so the new line is dead
	// weight on the host: no one will ever have its private half.
	return r.undo(ctx, werr)
}

func (r *rotation) removeOld(ctx context.Context) error {
	c, err := dial(ctx, r.t.Host, r.t.Login, r.newKey, r.opt.DialTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	file := r.t.AuthorizedKeys
	for _, blob := range r.retire {
		if _, err := run(ctx, c, removeScript(file, blob)); err != nil {
			return fmt.Errorf("rotate: remove the old key from %s on %s: %w", file, r.t.Host.Name, err)
		}
	}
	content, err := run(ctx, c, readScript(file))
	if err != nil {
		return fmt.Errorf("rotate: read %s on %s: %w", file, r.t.Host.Name, err)
	}
	for _, blob := range r.retire {
		if hasBlob(content, blob) {
			return fmt.Errorf("rotate: the old key is still in %s on %s after removal", file, r.t.Host.Name)
		}
	}
	if _, ok := findKey(content, blobOf(r.newKey.PublicKey())); !ok {
		return fmt.Errorf("rotate: the new key vanished from %s on %s", file, r.t.Host.Name)
	}
	return nil
}

// checkSources runs the sources step (sources.go) over a new-key session.
func (r *rotation) checkSources(ctx context.Context) error {
	c, err := dial(ctx, r.t.Host, r.t.Login, r.newKey, r.opt.DialTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	return r.sources(ctx, c)
}

func (r *rotation) check(ctx context.Context) error {
	err := probe(ctx, r.t.Host, r.t.Login, r.old.signer, r.opt.DialTimeout)
	switch {
	case err == nil:
		return fmt.Errorf("rotate: the old key %s still logs in to %s (is it authorized elsewhere?)", r.res.OldFingerprint, r.t.Host.Name)
	case !errors.Is(err, errRefused):
		return fmt.Errorf("rotate: cannot confirm that the old key is refused: %w", err)
	}
	if err := probe(ctx, r.t.Host, r.t.Login, r.newKey, r.opt.DialTimeout); err != nil {
		return fmt.Errorf("rotate: the new key does not log in after the old one was removed: %w", err)
	}
	return nil
}

// undo removes the new key's line again, over an old-key session, after a
// failure that left Vault on the old key. It returns cause with the
// outcome appended, so the caller learns whether the host is back as it
// was.
func (r *rotation) undo(ctx context.Context, cause error) error {
	if !r.appended {
		return cause
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), undoTimeout)
	defer cancel()
	err := r.removeNew(ctx)
	if err != nil {
		r.log.Warn("rotate: new key left on host", "new_key", r.res.NewFingerprint, "err", err)
		return fmt.Errorf("%w; the new key is still in %s: %v", cause, r.t.AuthorizedKeys, err)
	}
	return fmt.Errorf("%w; the new key was removed again", cause)
}

func (r *rotation) removeNew(ctx context.Context) error {
	c, err := dial(ctx, r.t.Host, r.t.Login, r.old.signer, r.opt.DialTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	newBlob := blobOf(r.newKey.PublicKey())
	if _, err := run(ctx, c, removeScript(r.t.AuthorizedKeys, newBlob)); err != nil {
		return err
	}
	content, err := run(ctx, c, readScript(r.t.AuthorizedKeys))
	if err != nil {
		return err
	}
	if hasBlob(content, newBlob) {
		return errors.New("still present after removal")
	}
	return nil
}
