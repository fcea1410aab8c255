// Package keyfile loads and creates the gateway's own private keys (its SSH
// host key), atomically and with owner-only permissions.
package keyfile

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	gossh "golang.org/x/crypto/ssh"
)

// LoadOrCreateEd25519 returns the ed25519 key at path, creating it first if
// the file does not exist. The new key comes from crypto/rand and is written
// to a temporary file in the same directory, synced, then renamed, so a crash
// never leaves a truncated key that a restart would load. A key file that
// group or others may read is refused: that key would no longer be secret.
func LoadOrCreateEd25519(path string) (gossh.Signer, bool, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		st, err := os.Stat(path)
		if err != nil {
			return nil, false, fmt.Errorf("keyfile: %w", err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			return nil, false, fmt.Errorf("keyfile: %s is readable by group or others (mode %o); run: chmod 600 %s", path, st.Mode().Perm(), path)
		}
		s, err := gossh.ParsePrivateKey(b)
		if err != nil {
			return nil, false, fmt.Errorf("keyfile: parse %s: %w", path, err)
		}
		return s, false, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, false, fmt.Errorf("keyfile: %w", err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, false, fmt.Errorf("keyfile: generate: %w", err)
	}
	blk, err := gossh.MarshalPrivateKey(priv, "warden")
	if err != nil {
		return nil, false, fmt.Errorf("keyfile: marshal: %w", err)
	}
	if err := WriteAtomic(path, pem.EncodeToMemory(blk), 0o600); err != nil {
		return nil, false, err
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		return nil, false, fmt.Errorf("keyfile: %w", err)
	}
	return s, true, nil
}

// WriteAtomic writes data to path through a temporary file and a rename,
// creating the directory (0700) if needed.
func WriteAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("keyfile: %w", err)
	}
	f, err := os.CreateTemp(dir, ".tmp-"+filepath.Base(path)+"-*")
	if err != nil {
		return fmt.Errorf("keyfile: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("keyfile: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("keyfile: write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("keyfile: sync %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("keyfile: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("keyfile: %w", err)
	}
	return nil
}
