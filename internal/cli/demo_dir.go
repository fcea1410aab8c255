package cli

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/internal/keyfile"
)

// The demo trusts what is in its --dir: the users' public keys, the CA key,
// the host keys, the policy. Someone else who can write there, or could
// have before, could plant a key and log in as alice (issue 13, finding 8).
// So, before it writes or reads anything, the demo checks:
//
//   - every existing parent of --dir belongs to the current user or root
//     and is writable by nobody else, unless it is sticky like /tmp (where
//     others cannot rename or remove what is ours);
//   - --dir itself, and everything already in it, belongs to the current
//     user, is writable by nobody else, and is no symlink (the demo makes
//     none);
//
// and it resolves symlinks in --dir once, then uses that path. A demo user's
// public key is always derived from its private key, never read from
// keys/NAME.pub.

// checkDemoDir makes dir (0700, with missing parents) after checking that
// only uid (and root) can change it, and returns its real path.
func checkDemoDir(dir string, uid int) (string, error) {
	existing := dir
	for {
		if _, err := os.Lstat(existing); err == nil {
			break
		} else if !errors.Is(err, fs.ErrNotExist) {
			return "", err
		}
		parent := filepath.Dir(existing)
		if parent == existing {
			break
		}
		existing = parent
	}
	real, err := filepath.EvalSymlinks(existing)
	if err != nil {
		return "", err
	}
	rest, err := filepath.Rel(existing, dir)
	if err != nil {
		return "", err
	}
	target := filepath.Join(real, rest)
	for p := real; ; p = filepath.Dir(p) {
		if p != target {
			if err := checkParent(p, uid); err != nil {
				return "", err
			}
		}
		if filepath.Dir(p) == p {
			break
		}
	}
	if err := os.MkdirAll(target, 0o700); err != nil {
		return "", err
	}
	// Whatever is already inside must be ours too: a key, a CA key or a
	// policy planted before would be trusted otherwise.
	err = filepath.WalkDir(target, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return checkOwn(p, uid)
	})
	if err != nil {
		return "", err
	}
	return target, nil
}

// owner returns the uid owning fi.
func owner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// checkParent checks a parent directory of --dir.
func checkParent(p string, uid int) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	o, ok := owner(fi)
	switch {
	case !ok:
		return fmt.Errorf("demo: cannot tell who owns %s", p)
	case o != uid && o != 0:
		return fmt.Errorf("demo: %s belongs to uid %d, who could replace the demo's directory; use a --dir under your own directories", p, o)
	case fi.Mode().Perm()&0o022 != 0 && fi.Mode()&fs.ModeSticky == 0:
		return fmt.Errorf("demo: %s is writable by others (mode %04o), who could replace the demo's directory; use a --dir under your own directories", p, fi.Mode().Perm())
	}
	return nil
}

// checkOwn checks --dir or something in it.
func checkOwn(p string, uid int) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	o, ok := owner(fi)
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		return fmt.Errorf("demo: %s is a symlink, which the demo never makes; use a new --dir", p)
	case !ok:
		return fmt.Errorf("demo: cannot tell who owns %s", p)
	case o != uid:
		return fmt.Errorf("demo: %s belongs to uid %d, not to you; use a new --dir", p, o)
	case fi.Mode().Perm()&0o022 != 0:
		return fmt.Errorf("demo: %s is writable by others (mode %04o); use a new --dir, or chmod go-w it", p, fi.Mode().Perm())
	}
	return nil
}

// demoUserKey returns the authorized_keys line of the demo key at path. The
// public key is derived from the private key, which is reused only when it
// is a private (0600) ed25519 key; otherwise a new pair replaces it. The
// .pub file is written for people and never read back.
func demoUserKey(path string) (string, error) {
	comment := filepath.Base(path) + "@warden-demo"
	pub, err := existingKey(path)
	if err != nil {
		var priv ed25519.PrivateKey
		if pub, priv, err = ed25519.GenerateKey(rand.Reader); err != nil {
			return "", err
		}
		blk, err := gossh.MarshalPrivateKey(priv, comment)
		if err != nil {
			return "", err
		}
		if err := keyfile.WriteAtomic(path, pem.EncodeToMemory(blk), 0o600); err != nil {
			return "", err
		}
	}
	sp, err := gossh.NewPublicKey(pub)
	if err != nil {
		return "", err
	}
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(sp))) + " " + comment
	return line, keyfile.WriteAtomic(path+".pub", []byte(line+"\n"), 0o644)
}

// existingKey reads the ed25519 public key of the private key at path, or
// fails when there is none fit to reuse.
func existingKey(path string) (ed25519.PublicKey, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() || fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("demo: %s is not a private key file", path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	raw, err := gossh.ParseRawPrivateKey(b)
	if err != nil {
		return nil, err
	}
	switch k := raw.(type) {
	case *ed25519.PrivateKey:
		return k.Public().(ed25519.PublicKey), nil
	case ed25519.PrivateKey:
		return k.Public().(ed25519.PublicKey), nil
	}
	return nil, fmt.Errorf("demo: %s is not an ed25519 key", path)
}
