package evidence

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/internal/keyfile"
	"github.com/warden-gw/warden/policy"
)

// TenantKeyDir is the directory, in the data directory, of the per-tenant
// signing keys (evidence.key_per_tenant): TENANT_ed25519 each.
const TenantKeyDir = "evidence-keys"

// KeyFetcher reads a signing key from the private_key field of the Vault
// KV v2 secret at path. The gateway passes one backed by its Vault client.
type KeyFetcher func(ctx context.Context, path string) (ssh.Signer, error)

// Keys finds the key that signs a tenant's packets. The zero value with a
// DataDir is the default: one ed25519 key, DATA/evidence_ed25519.
type Keys struct {
	DataDir string
	// PerTenant gives every tenant its own key: DATA/evidence-keys/
	// TENANT_ed25519, or VaultKV/TENANT. A packet of one tenant then does
	// not verify against another tenant's pinned key.
	PerTenant bool
	// VaultKV is the KV v2 path of the key in Vault; empty keeps keys in
	// files. Warden never creates a key in Vault: the operator puts one
	// there, so that the key need not touch the gateway's disk.
	VaultKV string
	Fetch   KeyFetcher // required with VaultKV
}

// KeysFor returns the keys the policy's evidence section configures.
func KeysFor(cfg *policy.Config, dataDir string, fetch KeyFetcher) *Keys {
	k := &Keys{DataDir: dataDir, Fetch: fetch}
	if cfg != nil {
		k.PerTenant, k.VaultKV = cfg.Evidence.KeyPerTenant, cfg.Evidence.SigningKeyVaultKV
	}
	return k
}

// Where names where tenant's key lives, for messages.
func (k *Keys) Where(tenant string) string {
	switch {
	case k.VaultKV != "" && k.PerTenant:
		return "vault kv " + k.VaultKV + "/" + tenant
	case k.VaultKV != "":
		return "vault kv " + k.VaultKV
	case k.PerTenant:
		return filepath.Join(k.DataDir, TenantKeyDir, tenant+"_ed25519")
	}
	return filepath.Join(k.DataDir, KeyName)
}

// Signer returns the key that signs tenant's packets. A file key is
// created on first use (ed25519 from crypto/rand, mode 0600, published
// with a hard link so that two processes creating it at once agree on
// one key and never replace it); a Vault key must exist.
func (k *Keys) Signer(ctx context.Context, tenant string) (ssh.Signer, error) {
	if k.PerTenant && !tenantRE.MatchString(tenant) {
		return nil, fmt.Errorf("%w %q: not a valid tenant name", ErrUnknownTenant, tenant)
	}
	if k.VaultKV != "" {
		if k.Fetch == nil {
			return nil, errors.New("evidence: signing key is in Vault, but no Vault client was given")
		}
		path := k.VaultKV
		if k.PerTenant {
			path += "/" + tenant
		}
		s, err := k.Fetch(ctx, path)
		if err != nil {
			return nil, fmt.Errorf("evidence: signing key at vault kv %s: %w (put one there: ssh-keygen -t ed25519 -N '' -f k && "+
				"vault kv put %s private_key=@k)", path, err, kvCLIPath(path))
		}
		return s, nil
	}
	if !k.PerTenant {
		s, _, err := keyfile.LoadOrCreateEd25519(filepath.Join(k.DataDir, KeyName))
		if err != nil {
			return nil, fmt.Errorf("evidence: signing key: %w", err)
		}
		return s, nil
	}
	return loadOrCreateOnce(k.Where(tenant))
}

// kvCLIPath turns the API path MOUNT/data/P into the vault kv CLI's MOUNT/P.
func kvCLIPath(p string) string {
	if m, rest, ok := strings.Cut(p, "/data/"); ok {
		return m + "/" + rest
	}
	return p
}

// loadOrCreateOnce loads the key at path, or creates it: the new key is
// written to a temporary file and linked into place, which fails if the
// path exists, so a key already there (made meanwhile by another process)
// is never replaced; then the key at path is loaded.
func loadOrCreateOnce(path string) (ssh.Signer, error) {
	if _, err := os.Lstat(path); errors.Is(err, fs.ErrNotExist) {
		if err := createKey(path); err != nil {
			return nil, fmt.Errorf("evidence: create signing key %s: %w", path, err)
		}
	}
	s, _, err := keyfile.LoadOrCreateEd25519(path)
	if err != nil {
		return nil, fmt.Errorf("evidence: signing key: %w", err)
	}
	return s, nil
}

func createKey(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return err
	}
	blk, err := ssh.MarshalPrivateKey(priv, "warden-evidence")
	if err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, ".key-*") // mode 0600
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(pem.EncodeToMemory(blk)); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// AllowedSigners is the allowed_signers line for pub, restricted to the
// evidence namespace: the line an auditor puts in the file given to
// ssh-keygen -Y verify -f.
func AllowedSigners(pub ssh.PublicKey) string {
	return strings.TrimSuffix(string(allowedSigners(pub)), "\n")
}

// FingerprintLine is what "ssh-keygen -lf" prints for pub without a
// comment, as in the allowed_signers line: bits, SHA256 fingerprint, "no
// comment" and the key type, e.g. "256 SHA256:... no comment (ED25519)".
// An auditor who saved the pinned line compares it with the output of
// cut -d' ' -f3- pinned_signers | ssh-keygen -lf -.
func FingerprintLine(pub ssh.PublicKey) string {
	bits, kind := 0, strings.ToUpper(strings.TrimPrefix(pub.Type(), "ssh-"))
	if ck, ok := pub.(ssh.CryptoPublicKey); ok {
		switch k := ck.CryptoPublicKey().(type) {
		case ed25519.PublicKey:
			bits, kind = 256, "ED25519"
		case *rsa.PublicKey:
			bits, kind = k.N.BitLen(), "RSA"
		case *ecdsa.PublicKey:
			bits, kind = k.Curve.Params().BitSize, "ECDSA"
		}
	}
	return fmt.Sprintf("%d %s no comment (%s)", bits, ssh.FingerprintSHA256(pub), kind)
}
