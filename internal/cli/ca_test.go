package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/internal/vaulttest"
)

// minimalPolicy is a valid policy around a credentials block.
func minimalPolicy(t *testing.T, creds string) string {
	t.Helper()
	dir := t.TempDir()
	cfg := `data_dir: data
` + creds + `tenants:
  - name: acme
    hosts:
      - name: web01
        address: 127.0.0.1:22
        host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
`
	p := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func parseCALine(t *testing.T, out string) gossh.PublicKey {
	t.Helper()
	if strings.Count(out, "\n") != 1 {
		t.Fatalf("want one TrustedUserCAKeys line, got %q", out)
	}
	k, _, _, _, err := gossh.ParseAuthorizedKey([]byte(out))
	if err != nil {
		t.Fatalf("not an authorized_keys line: %q: %v", out, err)
	}
	return k
}

func TestCABuiltinPrintsTheSameKeyEveryTime(t *testing.T) {
	cfg := minimalPolicy(t, "")
	out1, errOut, code := run("ca", "-c", cfg)
	if code != 0 {
		t.Fatalf("ca: %d %q", code, errOut)
	}
	out2, _, _ := run("ca", "-c", cfg)
	k1, k2 := parseCALine(t, out1), parseCALine(t, out2)
	if string(k1.Marshal()) != string(k2.Marshal()) || k1.Type() != "ssh-ed25519" {
		t.Fatalf("CA changed between runs or wrong type: %s / %s", out1, out2)
	}
	st, err := os.Stat(filepath.Join(filepath.Dir(cfg), "data", "ca_ed25519"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("CA key file: %v %v", st, err)
	}
}

func TestVaultSetupAndCA(t *testing.T) {
	v := vaulttest.Start(t)
	t.Setenv("VAULT_TOKEN", v.RootToken)
	out, errOut, code := run("vault", "setup", "--address", v.Addr, "--mount", "ssh", "--role", "warden")
	if code != 0 {
		t.Fatalf("setup: %d %q", code, errOut)
	}
	if !strings.Contains(out, `path "ssh/sign/warden"`) || !strings.Contains(out, "TrustedUserCAKeys") {
		t.Fatalf("setup output lacks policy or CA line:\n%s", out)
	}
	again, _, code := run("vault", "setup", "--address", v.Addr, "--mount", "ssh", "--role", "warden")
	if code != 0 || !strings.Contains(again, "nothing changed") {
		t.Fatalf("second setup not idempotent:\n%s", again)
	}
	// warden ca with the vault backend prints Vault's CA, the same key.
	cfg := minimalPolicy(t, "credentials:\n  backend: vault\n  vault:\n    address: "+v.Addr+"\n")
	caOut, errOut, code := run("ca", "-c", cfg)
	if code != 0 {
		t.Fatalf("ca: %d %q", code, errOut)
	}
	k := parseCALine(t, caOut)
	if !strings.Contains(out, strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k)))) {
		t.Fatalf("warden ca and vault setup disagree:\n%s\n%s", caOut, out)
	}
	t.Setenv("VAULT_TOKEN", "")
	_, errOut, code = run("vault", "setup", "--address", v.Addr)
	if code != 2 || !strings.Contains(errOut, "VAULT_TOKEN") {
		t.Fatalf("missing token: %d %q", code, errOut)
	}
}
