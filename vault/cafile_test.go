package vault

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

func TestOpenBuiltinCreatesPrivateCAAndReusesIt(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	b1, err := OpenBuiltin(dir, BuiltinOptions{Rand: seeded(2)})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca_ed25519")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("CA file mode = %#o, want 0600", fi.Mode().Perm())
	}
	di, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if di.Mode().Perm() != 0o700 {
		t.Errorf("data dir mode = %#o, want 0700", di.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Errorf("data dir holds %d entries, want only ca_ed25519 (temp file left behind?)", len(entries))
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if blk, _ := pem.Decode(data); blk == nil || blk.Type != "OPENSSH PRIVATE KEY" {
		t.Errorf("CA file is not a PEM OpenSSH private key")
	}

	// A different random stream proves the key is loaded, not regenerated.
	b2, err := OpenBuiltin(dir, BuiltinOptions{Rand: seeded(3)})
	if err != nil {
		t.Fatal(err)
	}
	k1, _ := b1.CAPublicKey(context.Background())
	k2, _ := b2.CAPublicKey(context.Background())
	if !bytes.Equal(k1.Marshal(), k2.Marshal()) {
		t.Errorf("reopened CA has another key")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(data, after) {
		t.Errorf("reopening rewrote the CA file")
	}
}

func TestOpenBuiltinConcurrentFirstStartAgreesOnOneCA(t *testing.T) {
	dir := t.TempDir()
	const n = 8
	keys := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			b, err := OpenBuiltin(dir, BuiltinOptions{Rand: seeded(byte(10 + i))})
			if err != nil {
				errs[i] = err
				return
			}
			k, _ := b.CAPublicKey(context.Background())
			keys[i] = k.Marshal()
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("open %d: %v", i, errs[i])
		}
		if !bytes.Equal(keys[i], keys[0]) {
			t.Fatalf("open %d uses another CA than open 0", i)
		}
	}
}

func TestOpenBuiltinRefusesInsecureCAFile(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(t *testing.T, path string)
	}{
		{"group readable", func(t *testing.T, path string) { chmod(t, path, 0o640) }},
		{"world readable", func(t *testing.T, path string) { chmod(t, path, 0o604) }},
		{"group writable", func(t *testing.T, path string) { chmod(t, path, 0o620) }},
		{"symlink to the key", func(t *testing.T, path string) {
			real := path + ".real"
			if err := os.Rename(path, real); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(real, path); err != nil {
				t.Fatal(err)
			}
		}},
		{"directory in its place", func(t *testing.T, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if err := os.Mkdir(path, 0o700); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := OpenBuiltin(dir, BuiltinOptions{}); err != nil {
				t.Fatal(err)
			}
			tc.setup(t, filepath.Join(dir, caFileName))
			_, err := OpenBuiltin(dir, BuiltinOptions{})
			if !errors.Is(err, ErrInsecureCAFile) {
				t.Fatalf("OpenBuiltin = %v, want ErrInsecureCAFile", err)
			}
		})
	}
}

func TestOpenBuiltinRefusesWrongKey(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(seeded(4), 2048)
	if err != nil {
		t.Fatal(err)
	}
	rsaPEM, err := ssh.MarshalPrivateKey(rsaKey, "")
	if err != nil {
		t.Fatal(err)
	}
	_, edKey, _ := ed25519.GenerateKey(seeded(5))
	encPEM, err := ssh.MarshalPrivateKeyWithPassphrase(edKey, "", []byte("secret"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"rsa key", pem.EncodeToMemory(rsaPEM)},
		{"passphrase-protected key", pem.EncodeToMemory(encPEM)},
		{"garbage", []byte("not a key\n")},
		{"empty file", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, caFileName), tc.data, 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := OpenBuiltin(dir, BuiltinOptions{}); err == nil {
				t.Fatal("OpenBuiltin accepted a bad CA file")
			}
		})
	}
}

func chmod(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.Chmod(path, mode); err != nil {
		t.Fatal(err)
	}
}

// FuzzParseCAKey feeds arbitrary bytes to the CA key parser: it must never
// panic, and whatever it accepts must be a usable ed25519 signer.
func FuzzParseCAKey(f *testing.F) {
	_, k, _ := ed25519.GenerateKey(seeded(6))
	blk, err := ssh.MarshalPrivateKey(k, "warden CA")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(pem.EncodeToMemory(blk))
	f.Add([]byte("-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := parseCAKey(data)
		if err != nil {
			return
		}
		if s.PublicKey().Type() != ssh.KeyAlgoED25519 {
			t.Fatalf("accepted a %s key", s.PublicKey().Type())
		}
		sig, err := s.Sign(seeded(7), []byte("probe"))
		if err != nil || s.PublicKey().Verify([]byte("probe"), sig) != nil {
			t.Fatalf("accepted key cannot sign: %v", err)
		}
	})
}
