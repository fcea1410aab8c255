package vault

import (
	"crypto/ed25519"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/crypto/ssh"
)

// caFileName is the built-in CA's private key inside the data directory.
const caFileName = "ca_ed25519"

// ErrInsecureCAFile means the CA key file is readable or writable by group
// or others, or is not a regular file. Warden refuses to use it: anyone who
// could read it could sign certificates for every managed host.
var ErrInsecureCAFile = errors.New("vault: insecure CA key file")

// loadOrCreateCA returns the CA signer stored at dir/ca_ed25519, creating the
// key from rand when the file does not exist yet.
func loadOrCreateCA(dir string, rand io.Reader) (ssh.Signer, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("vault: create data dir: %w", err)
	}
	path := filepath.Join(dir, caFileName)
	s, err := loadCA(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	if err := createCA(dir, path, rand); err != nil {
		return nil, err
	}
	return loadCA(path)
}

// loadCA reads and parses an existing CA key file after checking that only
// its owner can access it.
func loadCA(path string) (ssh.Signer, error) {
	// O_NOFOLLOW: a symlink planted at the key's path must not redirect
	// Warden to a key file it does not own.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, syscall.ELOOP) {
			return nil, fmt.Errorf("%w: %s is a symlink", ErrInsecureCAFile, path)
		}
		return nil, fmt.Errorf("vault: open CA key: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("vault: stat CA key: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrInsecureCAFile, path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %#o, want 0600 (chmod 600 it)", ErrInsecureCAFile, path, perm)
	}
	data, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return nil, fmt.Errorf("vault: read CA key: %w", err)
	}
	return parseCAKey(data)
}

// parseCAKey parses the PEM OpenSSH private key of the built-in CA. Only an
// unencrypted ed25519 key is accepted.
func parseCAKey(data []byte) (ssh.Signer, error) {
	raw, err := ssh.ParseRawPrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("vault: parse CA key: %w", err)
	}
	var key ed25519.PrivateKey
	switch k := raw.(type) {
	case ed25519.PrivateKey:
		key = k
	case *ed25519.PrivateKey:
		key = *k
	default:
		return nil, fmt.Errorf("vault: parse CA key: %T is not an ed25519 key", raw)
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("vault: parse CA key: bad ed25519 key length %d", len(key))
	}
	// The file stores the public half next to the seed, and the parser
	// trusts it. A corrupted file whose halves disagree would sign
	// certificates that no host can verify, so derive and compare.
	if !key.Equal(ed25519.NewKeyFromSeed(key.Seed())) {
		return nil, errors.New("vault: parse CA key: public key does not match the private key (corrupt file)")
	}
	s, err := ssh.NewSignerFromKey(key)
	if err != nil {
		return nil, fmt.Errorf("vault: CA signer: %w", err)
	}
	return s, nil
}

// createCA writes a new CA key so that the file at path is either absent or
// complete: the key goes to a temporary file in the same directory, is
// synced, and is then linked into place. A link, unlike a rename, never
// replaces an existing file, so two gateways starting at once on the same
// data directory cannot end up trusting different CAs: the loser keeps the
// winner's key.
func createCA(dir, path string, rand io.Reader) error {
	_, priv, err := ed25519.GenerateKey(rand)
	if err != nil {
		return fmt.Errorf("vault: generate CA key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "warden CA")
	if err != nil {
		return fmt.Errorf("vault: marshal CA key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+caFileName+"-*") // created 0600
	if err != nil {
		return fmt.Errorf("vault: create CA key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(pem.EncodeToMemory(block)); err != nil {
		tmp.Close()
		return fmt.Errorf("vault: write CA key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("vault: sync CA key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("vault: close CA key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("vault: install CA key: %w", err)
	}
	return syncDir(dir)
}

// syncDir makes the new directory entry durable, so a crash right after
// first start cannot lose the CA that hosts were already told to trust.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("vault: open data dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("vault: sync data dir: %w", err)
	}
	return nil
}
