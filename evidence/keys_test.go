package evidence

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestPerTenantKeyCreatedOnceUnderRace: processes building packets at
// once (the schedule and an operator) must agree on one key; a key that
// is replaced would leave a packet nobody can verify.
func TestPerTenantKeyCreatedOnceUnderRace(t *testing.T) {
	dir := t.TempDir()
	k := &Keys{DataDir: dir, PerTenant: true}
	const n = 8
	fps := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := k.Signer(context.Background(), "acme")
			if err != nil {
				t.Error(err)
				return
			}
			fps[i] = ssh.FingerprintSHA256(s.PublicKey())
		}()
	}
	wg.Wait()
	for _, fp := range fps {
		if fp != fps[0] {
			t.Fatalf("racing creators got different keys: %v", fps)
		}
	}
	st, err := os.Stat(filepath.Join(dir, TenantKeyDir, "acme_ed25519"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key file %v %v", st, err)
	}
	if d, _ := os.Stat(filepath.Join(dir, TenantKeyDir)); d.Mode().Perm() != 0o700 {
		t.Errorf("key directory mode %o", d.Mode().Perm())
	}
	entries, _ := os.ReadDir(filepath.Join(dir, TenantKeyDir))
	if len(entries) != 1 {
		t.Errorf("temporary files left: %v", entries)
	}
	if _, err := k.Signer(context.Background(), "../acme"); err == nil {
		t.Error("a tenant name with a path got a key")
	}
	beta, err := k.Signer(context.Background(), "beta")
	if err != nil || ssh.FingerprintSHA256(beta.PublicKey()) == fps[0] {
		t.Errorf("beta's key: %v, same as acme's: %v", err, err == nil && ssh.FingerprintSHA256(beta.PublicKey()) == fps[0])
	}
}

// TestFingerprintLineIsSSHKeygens compares with ssh-keygen -lf for the key
// types a signing key in Vault may have.
func TestFingerprintLineIsSSHKeygens(t *testing.T) {
	rk, err := rsa.GenerateKey(rand.Reader, 3072)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := ssh.NewSignerFromKey(rk)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []ssh.Signer{newSigner(t), rs} {
		line := AllowedSigners(s.PublicKey())
		p := filepath.Join(t.TempDir(), "k.pub")
		writeFile(t, p, []byte(strings.SplitN(line, " ", 3)[2]+"\n"))
		if got := string(runTool(t, "ssh-keygen", "-lf", p)); got != FingerprintLine(s.PublicKey())+"\n" {
			t.Errorf("ssh-keygen -lf: %q, FingerprintLine: %q", got, FingerprintLine(s.PublicKey()))
		}
	}
}
