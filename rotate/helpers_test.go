package rotate

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/internal/vaulttest"
	"github.com/warden-gw/warden/policy"
)

// kvMount and kvSecret are where the tests keep the break-glass key.
const (
	kvMount  = "secret"
	kvSecret = "breakglass/acme"
	kvPath   = kvMount + "/data/" + kvSecret
)

// startVault runs a real Vault with a KV v2 engine at secret/ and returns a
// root client. The core comes with a KV v1 engine at secret/, which is
// replaced: a v1 mount has no versions and no check-and-set.
func startVault(t *testing.T) *api.Client {
	t.Helper()
	_, c := startVaultServer(t)
	return c
}

// startVaultServer is startVault for tests that also pause the server.
func startVaultServer(t *testing.T) (*vaulttest.Server, *api.Client) {
	t.Helper()
	srv := vaulttest.Start(t)
	c := srv.Client()
	if err := c.Sys().Unmount(kvMount); err != nil {
		t.Fatalf("unmount kv v1: %v", err)
	}
	err := c.Sys().Mount(kvMount, &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}})
	if err != nil {
		t.Fatalf("mount kv v2: %v", err)
	}
	return srv, c
}

// putKV writes data as the next version of secret. A fresh KV v2 mount
// refuses writes while it sets itself up, so the first write is retried
// for a bounded while.
func putKV(t *testing.T, c *api.Client, secret string, data map[string]any) int {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := c.KVv2(kvMount).Put(context.Background(), secret, data)
		if err == nil {
			return s.VersionMetadata.Version
		}
		if !strings.Contains(err.Error(), "Upgrading") || time.Now().After(deadline) {
			t.Fatalf("kv put %s: %v", secret, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kvVersion returns the secret's current version from its metadata.
func kvVersion(t *testing.T, c *api.Client, secret string) int {
	t.Helper()
	m, err := c.KVv2(kvMount).GetMetadata(context.Background(), secret)
	if err != nil {
		t.Fatalf("kv metadata %s: %v", secret, err)
	}
	return m.CurrentVersion
}

// kvKeyPEM returns the private_key field of the secret's latest version.
func kvKeyPEM(t *testing.T, c *api.Client, secret string) []byte {
	t.Helper()
	s, err := c.KVv2(kvMount).Get(context.Background(), secret)
	if err != nil {
		t.Fatalf("kv get %s: %v", secret, err)
	}
	pem, ok := s.Data[FieldPrivateKey].(string)
	if !ok {
		t.Fatalf("kv %s has no string %s", secret, FieldPrivateKey)
	}
	return []byte(pem)
}

// fixture is a real sshd that reads authorized keys from keysFile, a real
// Vault whose KV holds the key (made by the real ssh-keygen) that
// keysFile authorizes, and the Target for them.
type fixture struct {
	host     *sshtest.Host
	vault    *api.Client
	target   Target
	keysFile string
	oldPEM   []byte
	oldLine  string // keysFile's content
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return newFixtureWith(t, startVault(t), "")
}

// newFixtureWith starts a host whose keysFile holds options+" "+key and
// seeds kvPath with that key, on the given Vault. sshd also reads
// moreKeyFiles.
func newFixtureWith(t *testing.T, vc *api.Client, options string, moreKeyFiles ...string) *fixture {
	t.Helper()
	return newFixtureExtra(t, vc, options, "", moreKeyFiles...)
}

// newFixtureExtra is newFixtureWith with more sshd_config lines before
// the "Match all" block (sshd keeps the first value it reads).
func newFixtureExtra(t *testing.T, vc *api.Client, options, extra string, moreKeyFiles ...string) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{vault: vc, keysFile: filepath.Join(dir, "root_keys")}
	f.host = sshtest.StartHost(t, sshtest.HostOptions{
		// sshtest's base config says AuthorizedKeysFile none and sshd
		// keeps the first value, so override it for every connection.
		ExtraConfig: extra + "Match all\n    AuthorizedKeysFile " + strings.Join(append([]string{f.keysFile}, moreKeyFiles...), " ") + "\n",
	})
	keygen := sshtest.NewClient(t, "")
	var err error
	if f.oldPEM, err = os.ReadFile(keygen.KeyPath); err != nil {
		t.Fatal(err)
	}
	f.oldLine = strings.TrimSpace(string(gossh.MarshalAuthorizedKey(keygen.PublicKey))) + " old@test\n"
	if options != "" {
		f.oldLine = options + " " + f.oldLine
	}
	writeFile(t, f.keysFile, f.oldLine)
	putKV(t, vc, kvSecret, map[string]any{FieldPrivateKey: string(f.oldPEM), "note": "acme break-glass root"})
	f.target = Target{
		Host:           &policy.Host{Name: "web01", Tenant: "acme", Address: f.host.Addr, HostKey: f.host.HostKey},
		Login:          "root",
		KVPath:         kvPath,
		AuthorizedKeys: f.keysFile,
		SSHDConfig:     f.host.ConfigPath,
	}
	return f
}

func (f *fixture) options() Options {
	return Options{Client: f.vault, DialTimeout: 30 * time.Second}
}

// keysContent returns the authorized keys file as the host sees it.
func (f *fixture) keysContent(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(f.keysFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sshLogin runs the real ssh client with keyPEM as its only identity and
// the host's pinned key as its only known host, and returns nil when
// `true` ran as root.
func sshLogin(t *testing.T, h *sshtest.Host, keyPEM []byte) error {
	t.Helper()
	dir := t.TempDir()
	c := sshtest.NewClient(t, dir)
	c.KeyPath = filepath.Join(dir, "key_under_test")
	writeFileMode(t, c.KeyPath, string(keyPEM), 0o600)
	c.TrustHost(h.Addr, h.HostKey)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := c.SSH(ctx, h.Port, "root", "true").CombinedOutput()
	if err != nil {
		return fmt.Errorf("ssh: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// assertIntact checks the invariant every failed rotation must keep: the
// host's file is as it was, the old key still logs in with the real ssh,
// and whatever key Vault holds logs in too.
func (f *fixture) assertIntact(t *testing.T) {
	t.Helper()
	if got := f.keysContent(t); got != f.oldLine {
		t.Errorf("authorized keys = %q, want the original %q", got, f.oldLine)
	}
	if err := sshLogin(t, f.host, f.oldPEM); err != nil {
		t.Errorf("old key no longer logs in: %v", err)
	}
	if err := sshLogin(t, f.host, kvKeyPEM(t, f.vault, kvSecret)); err != nil {
		t.Errorf("the key in Vault does not log in: %v", err)
	}
}

func writeFile(t *testing.T, path, content string) { writeFileMode(t, path, content, 0o600) }

func writeFileMode(t *testing.T, path, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}
