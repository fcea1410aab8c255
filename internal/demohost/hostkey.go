package demohost

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"golang.org/x/crypto/ssh"
)

// ErrHostKeyExposed is returned when the host key file is readable or
// writable by other users. Like sshd, the demo host refuses such a key: it
// may be known to others, so clients could be impersonated against it.
var ErrHostKeyExposed = errors.New("demohost: host key file is accessible by other users")

// loadOrCreateHostKey returns the ed25519 host key stored at path, creating
// it (mode 0600) when missing. An empty path gives a key that lives only in
// memory, so clients must re-learn it on every start.
func loadOrCreateHostKey(path string) (ssh.Signer, error) {
	if path == "" {
		return newHostKey()
	}
	info, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return createHostKey(path)
	case err != nil:
		return nil, fmt.Errorf("demohost: host key: %w", err)
	case info.Mode().Perm()&0o077 != 0:
		return nil, fmt.Errorf("%w: %s has mode %04o, want 0600", ErrHostKeyExposed, path, info.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("demohost: host key: %w", err)
	}
	signer, err := ssh.ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("demohost: parse host key %s: %w", path, err)
	}
	return signer, nil
}

func newHostKey() (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("demohost: generate host key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("demohost: host key signer: %w", err)
	}
	return signer, nil
}

// createHostKey generates a key and stores it atomically: written to a
// temporary file in the same directory (created 0600 by os.CreateTemp), then
// renamed, so a crash never leaves a truncated key that a restart would
// refuse or, worse, a key file that was briefly readable by others.
func createHostKey(path string) (ssh.Signer, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("demohost: generate host key: %w", err)
	}
	block, err := ssh.MarshalPrivateKey(priv, "warden demo host")
	if err != nil {
		return nil, fmt.Errorf("demohost: marshal host key: %w", err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("demohost: host key directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".host-key-*")
	if err != nil {
		return nil, fmt.Errorf("demohost: write host key: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(pem.EncodeToMemory(block)); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("demohost: write host key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return nil, fmt.Errorf("demohost: write host key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("demohost: write host key: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return nil, fmt.Errorf("demohost: write host key: %w", err)
	}
	signer, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		return nil, fmt.Errorf("demohost: host key signer: %w", err)
	}
	return signer, nil
}
