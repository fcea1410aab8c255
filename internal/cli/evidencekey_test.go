package cli

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/internal/vaulttest"
)

// withTenants amends a govPolicy file: a second tenant, beta, and extra
// top-level lines (an evidence or credentials section).
func withTenants(t *testing.T, cfg, extra string) string {
	t.Helper()
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	host := strings.SplitN(strings.SplitN(string(b), `host_key: "`, 2)[1], `"`, 2)[0]
	src := strings.Replace(string(b), "groups:", "  - name: beta\n    hosts:\n      - {name: db01, address: \"127.0.0.2:22\", host_key: \""+
		host+"\"}\ngroups:", 1) + extra
	if err := os.WriteFile(cfg, []byte(src), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// pinned writes the allowed_signers line of `warden evidence key` output to
// a file, as the auditor does with the line the MSP gave them.
func pinned(t *testing.T, keyOut string) string {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(keyOut, "\n"), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[1], `warden namespaces="warden-evidence" ssh-ed25519 `) {
		t.Fatalf("evidence key output: %q", keyOut)
	}
	p := filepath.Join(t.TempDir(), "pinned_signers")
	if err := os.WriteFile(p, []byte(lines[1]+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// The first line is what ssh-keygen -lf prints for the pinned key
	// (the allowed_signers line without its principal and options).
	got, err := exec.Command("sh", "-c", "cut -d' ' -f3- \"$1\" | ssh-keygen -lf -", "sh", p).CombinedOutput()
	if err != nil || string(got) != lines[0]+"\n" {
		t.Fatalf("ssh-keygen -lf %s = %q (%v), warden evidence key says %q", p, got, err, lines[0])
	}
	return p
}

// verifyWith runs the auditor's check of the packet in dir against the
// pinned allowed_signers file.
func verifyWith(t *testing.T, dir, signers string) error {
	t.Helper()
	cmd := exec.Command("sh", "-c", "ssh-keygen -Y verify -f \"$1\" -I warden -n warden-evidence -s MANIFEST.sha256.sig < MANIFEST.sha256", "sh", signers)
	cmd.Dir = dir
	return cmd.Run()
}

func TestEvidenceKeyMatchesSSHKeygenAndThePacket(t *testing.T) {
	data, cfg, month := govData(t)
	keyOut, errOut, code := run("evidence", "key", "--data", data)
	if code != 0 {
		t.Fatalf("evidence key: %d %q", code, errOut)
	}
	signers := pinned(t, keyOut)
	out := filepath.Join(t.TempDir(), "p")
	stdout, errOut, code := run("evidence", "-c", cfg, "--tenant", "acme", "--month", month, "--out", out)
	if code != 0 {
		t.Fatalf("evidence: %d %q", code, errOut)
	}
	fp := strings.Fields(keyOut)[1]
	if !strings.Contains(stdout, "evidence key "+fp) {
		t.Errorf("packet key differs from the printed one: %q vs %q", stdout, fp)
	}
	if err := verifyWith(t, out, signers); err != nil {
		t.Errorf("packet does not verify against the pinned key: %v", err)
	}
	again, _, _ := run("evidence", "key", "-c", cfg)
	if again != keyOut {
		t.Errorf("evidence key with -c: %q, with --data: %q", again, keyOut)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--data", filepath.Join(data, "typo")}, 1, "does not exist"},
		{[]string{"-c", cfg, "--tenant", "gamma"}, 1, `unknown tenant "gamma"`},
		{[]string{"--data", data, "extra"}, 2, "no arguments"},
	} {
		_, errOut, code := run(append([]string{"evidence", "key"}, tc.args...)...)
		if code != tc.code || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
			t.Errorf("evidence key %q: %d %q, want %d %q", tc.args, code, errOut, tc.code, tc.want)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "typo")); err == nil {
		t.Error("a mistyped --data got a key")
	}
}

func TestPerTenantKeysDoNotVerifyEachOther(t *testing.T) {
	data, cfg, month := govData(t)
	withTenants(t, cfg, "evidence: {key_per_tenant: true}\n")
	if _, errOut, code := run("evidence", "key", "-c", cfg); code != 2 || !strings.Contains(errOut, "--tenant is required") {
		t.Fatalf("per-tenant key without --tenant: %d %q", code, errOut)
	}
	acmeOut, errOut, code := run("evidence", "key", "-c", cfg, "--tenant", "acme")
	if code != 0 {
		t.Fatal(errOut)
	}
	betaOut, errOut, code := run("evidence", "key", "-c", cfg, "--tenant", "beta")
	if code != 0 {
		t.Fatal(errOut)
	}
	if acmeOut == betaOut {
		t.Fatal("both tenants have the same key")
	}
	for _, tenant := range []string{"acme", "beta"} {
		st, err := os.Stat(filepath.Join(data, "evidence-keys", tenant+"_ed25519"))
		if err != nil || st.Mode().Perm() != 0o600 {
			t.Fatalf("%s key file: %v %v", tenant, st, err)
		}
	}
	if _, err := os.Stat(filepath.Join(data, "evidence_ed25519")); err == nil {
		t.Error("a shared key was created although keys are per tenant")
	}
	acme, beta := pinned(t, acmeOut), pinned(t, betaOut)
	out := filepath.Join(t.TempDir(), "acme")
	if _, errOut, code := run("evidence", "-c", cfg, "--tenant", "acme", "--month", month, "--out", out); code != 0 {
		t.Fatal(errOut)
	}
	if err := verifyWith(t, out, acme); err != nil {
		t.Errorf("acme's packet does not verify with acme's pinned key: %v", err)
	}
	if err := verifyWith(t, out, beta); err == nil {
		t.Error("acme's packet verifies with beta's pinned key")
	}
	// The packet's own allowed_signers would verify anything it came
	// with; the pinned key is what counts, and it is the same after a
	// second run (the key is kept, not replaced).
	again, _, _ := run("evidence", "key", "-c", cfg, "--tenant", "acme")
	if again != acmeOut {
		t.Error("acme's key changed between runs")
	}
}

func TestEvidenceSigningKeyInVaultKV(t *testing.T) {
	srv := vaulttest.Start(t)
	c := srv.Client()
	if err := c.Sys().Unmount("secret"); err != nil {
		t.Fatal(err)
	}
	if err := c.Sys().Mount("secret", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := ssh.MarshalPrivateKey(priv, "")
	if err != nil {
		t.Fatal(err)
	}
	want, err := ssh.NewPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err := c.KVv2("secret").Put(context.Background(), "warden/evidence/acme",
			map[string]any{"private_key": string(pem.EncodeToMemory(blk))})
		if err == nil {
			break
		}
		if !strings.Contains(err.Error(), "Upgrading") || time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Setenv("VAULT_TOKEN", srv.RootToken)

	data, cfg, month := govData(t)
	withTenants(t, cfg, "credentials: {vault: {address: "+srv.Addr+"}}\n"+
		"evidence: {key_per_tenant: true, signing_key: {vault_kv: secret/data/warden/evidence}}\n")
	keyOut, errOut, code := run("evidence", "key", "-c", cfg, "--tenant", "acme")
	if code != 0 {
		t.Fatalf("evidence key: %d %q", code, errOut)
	}
	if !strings.Contains(keyOut, ssh.FingerprintSHA256(want)) {
		t.Fatalf("evidence key printed %q, the key in Vault is %s", keyOut, ssh.FingerprintSHA256(want))
	}
	signers := pinned(t, keyOut)
	out := filepath.Join(t.TempDir(), "p")
	if _, errOut, code := run("evidence", "-c", cfg, "--tenant", "acme", "--month", month, "--out", out); code != 0 {
		t.Fatalf("evidence: %q", errOut)
	}
	if err := verifyWith(t, out, signers); err != nil {
		t.Errorf("packet does not verify against the key in Vault: %v", err)
	}
	for _, p := range []string{"evidence_ed25519", "evidence-keys"} {
		if _, err := os.Stat(filepath.Join(data, p)); err == nil {
			t.Errorf("%s was created although the key is in Vault", p)
		}
	}
	// beta has no key in Vault: refused, with the command that makes one.
	_, errOut, code = run("evidence", "key", "-c", cfg, "--tenant", "beta")
	if code != 1 || !strings.Contains(errOut, "vault kv put secret/warden/evidence/beta private_key=@k") {
		t.Errorf("missing Vault key: %d %q", code, errOut)
	}
}
