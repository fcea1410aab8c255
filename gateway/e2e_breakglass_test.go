package gateway_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/internal/vaulttest"
)

// TestBreakGlassDualApprovalStaticKeyAndRotation: emergency root needs two
// distinct approvers; the session logs in with the static key from Vault
// KV (never shown to anyone); when the grant ends the key is rotated: the
// old key no longer logs in, the new one does, and the KV version went up.
func TestBreakGlassDualApprovalStaticKeyAndRotation(t *testing.T) {
	v := vaulttest.Start(t)
	c := v.Client()
	if err := c.Sys().Mount("vaultkv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	keysDir := t.TempDir()
	keysFile := filepath.Join(keysDir, "root_keys")
	oldPEM, oldPub := newKeyPair(t)
	if err := os.WriteFile(keysFile, []byte(oldPub+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("vaultkv").Put(context.Background(), "breakglass/acme", map[string]any{"private_key": string(oldPEM)}); err != nil {
		t.Fatal(err)
	}
	b := newTestbed(t, bedOptions{
		breakGlass: v, authorizedKeys: keysFile,
		hostExtra:   "Match all\n    AuthorizedKeysFile " + keysFile + "\n",
		extraPolicy: "", // roles are appended below
	}.withRoles(`  - name: break-glass
    tenant: acme
    hosts: {names: [web01]}
    logins: [root]
    break_glass: true
    eligible: [helpdesk]
    approvers: [security, management]
    credential: {vault_kv: vaultkv/data/breakglass/acme}
`, "credentials:\n  backend: builtin\n  cert_ttl: 2m\n  vault:\n    address: "+v.Addr+"\n"))

	out, errOut, code := b.run(b.bob, "gw", "request", "break-glass", "--for", "10m", "--reason", "'INC-1 total outage'")
	if code != 0 {
		t.Fatalf("request: %q", errOut)
	}
	id := regexp.MustCompile(`request (\d+) opened`).FindStringSubmatch(out)[1]
	out, _, code = b.run(b.carol, "gw", "approve", id)
	if code != 0 || !strings.Contains(out, "needs more approvals") {
		t.Fatalf("first approval: %d %q", code, out)
	}
	// The same approver twice does not count as two.
	if _, errOut, code := b.run(b.carol, "gw", "approve", id); code != 1 {
		t.Fatalf("second approval by carol: %d %q", code, errOut)
	}
	out, _, code = b.run(b.dave, "gw", "approve", id)
	gid := regexp.MustCompile(`grant (\d+) for bob`).FindStringSubmatch(out)
	if code != 0 || gid == nil {
		t.Fatalf("second approver: %d %q", code, out)
	}

	out, errOut, code = b.run(b.bob, "root@web01", "echo emergency-$((40+2))")
	if code != 0 || out != "emergency-42\n" {
		t.Fatalf("break-glass session: %d %q %q", code, out, errOut)
	}
	oldSigner, _ := gossh.ParsePrivateKey(oldPEM)
	b.host.WaitLog(t, gossh.FingerprintSHA256(oldSigner.PublicKey()), expectWait)
	b.waitEvent("breakglass.used", "bob")

	// bob is done: relinquishing the grant ends it and triggers rotation.
	if _, errOut, code := b.run(b.bob, "gw", "revoke", gid[1]); code != 0 {
		t.Fatalf("relinquish: %q", errOut)
	}
	ev := b.waitEvent("rotation.result", "grant:"+gid[1])
	if ev.Data["ok"] != true {
		t.Fatalf("rotation failed: %v", ev.Data)
	}
	meta, err := c.KVv2("vaultkv").GetMetadata(context.Background(), "breakglass/acme")
	if err != nil || meta.CurrentVersion != 2 {
		t.Fatalf("kv version %v %v, want 2", meta, err)
	}
	sec, err := c.KVv2("vaultkv").Get(context.Background(), "breakglass/acme")
	if err != nil {
		t.Fatal(err)
	}
	newPEM := []byte(fmt.Sprint(sec.Data["private_key"]))
	if err := directLogin(t, b, oldPEM); err == nil {
		t.Fatal("the old break-glass key still logs in")
	}
	if err := directLogin(t, b, newPEM); err != nil {
		t.Fatalf("the new key does not log in: %v", err)
	}
	// Nobody saw the key: it is in no command output, log or event.
	evs := fmt.Sprint(b.events("rotation.result"), b.events("session.start"))
	if strings.Contains(evs, "PRIVATE KEY") {
		t.Fatal("a private key reached the audit log")
	}
}

// withRoles appends roles to the testbed's policy and replaces its
// credentials block.
func (o bedOptions) withRoles(roles, creds string) bedOptions {
	o.extraRoles, o.credsOverride = roles, creds
	return o
}

func newKeyPair(t *testing.T) ([]byte, string) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blk, err := gossh.MarshalPrivateKey(priv, "breakglass")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := gossh.NewSignerFromKey(priv)
	return pem.EncodeToMemory(blk), strings.TrimSpace(string(gossh.MarshalAuthorizedKey(s.PublicKey())))
}

// directLogin logs in to the managed host with a private key and the real
// ssh client, bypassing the gateway.
func directLogin(t *testing.T, b *testbed, keyPEM []byte) error {
	t.Helper()
	kf := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(kf, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	kh := filepath.Join(t.TempDir(), "kh")
	os.WriteFile(kh, []byte("[127.0.0.1]:"+b.host.Port+" "+authorizedKey(b.host.HostKey)+"\n"), 0o600)
	cmd := exec.Command("ssh", "-F", "/dev/null", "-i", kf, "-o", "IdentitiesOnly=yes", "-o", "IdentityAgent=none",
		"-o", "BatchMode=yes", "-o", "UserKnownHostsFile="+kh, "-o", "StrictHostKeyChecking=yes",
		"-p", b.host.Port, "root@127.0.0.1", "true")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%v: %s", err, out)
	}
	return nil
}

// TestBreakGlassPlantedKeyLeavesTheRotationOwed: during the grant, root on
// the host plants the old key in authorized_keys2, hidden from the
// gateway's address. The rotation after the grant refuses to call that a
// success: the result is a failure, and `ssh gw grants` shows the owed
// rotation to its owner, the approvers and auditors, not to others.
func TestBreakGlassPlantedKeyLeavesTheRotationOwed(t *testing.T) {
	v := vaulttest.Start(t)
	c := v.Client()
	if err := c.Sys().Mount("vaultkv", &api.MountInput{Type: "kv", Options: map[string]string{"version": "2"}}); err != nil {
		t.Fatal(err)
	}
	keysDir := t.TempDir()
	keysFile := filepath.Join(keysDir, "root_keys")
	planted := filepath.Join(keysDir, "homes", "root", "authorized_keys2")
	if err := os.MkdirAll(filepath.Dir(planted), 0o700); err != nil {
		t.Fatal(err)
	}
	oldPEM, oldPub := newKeyPair(t)
	if err := os.WriteFile(keysFile, []byte(oldPub+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := c.KVv2("vaultkv").Put(context.Background(), "breakglass/acme", map[string]any{"private_key": string(oldPEM)}); err != nil {
		t.Fatal(err)
	}
	b := newTestbed(t, bedOptions{
		breakGlass: v, authorizedKeys: keysFile,
		hostExtra: "Match all\n    AuthorizedKeysFile " + keysFile + " " + filepath.Join(keysDir, "homes", "%u", "authorized_keys2") + "\n",
	}.withRoles(`  - name: break-glass
    tenant: acme
    hosts: {names: [web01]}
    logins: [root]
    break_glass: true
    eligible: [helpdesk]
    approvers: [security, management]
    credential: {vault_kv: vaultkv/data/breakglass/acme}
`, "credentials:\n  backend: builtin\n  cert_ttl: 2m\n  vault:\n    address: "+v.Addr+"\n"))

	out, errOut, code := b.run(b.bob, "gw", "request", "break-glass", "--for", "10m", "--reason", "'INC-2 outage'")
	if code != 0 {
		t.Fatalf("request: %q", errOut)
	}
	id := regexp.MustCompile(`request (\d+) opened`).FindStringSubmatch(out)[1]
	b.run(b.carol, "gw", "approve", id)
	out, _, _ = b.run(b.dave, "gw", "approve", id)
	gid := regexp.MustCompile(`grant (\d+) for bob`).FindStringSubmatch(out)
	if gid == nil {
		t.Fatalf("no grant: %q", out)
	}
	// Root, during the emergency: the old key again, from anywhere but
	// the gateway.
	script := fmt.Sprintf(`printf '%%s\n' 'from="!127.0.0.1,*" %s' > %s`, oldPub, planted)
	if _, errOut, code := b.run(b.bob, "root@web01", script); code != 0 {
		t.Fatalf("plant: %q", errOut)
	}
	if _, errOut, code := b.run(b.bob, "gw", "revoke", gid[1]); code != 0 {
		t.Fatalf("relinquish: %q", errOut)
	}
	ev := b.waitEvent("rotation.result", "grant:"+gid[1])
	if ev.Data["ok"] != false || !strings.Contains(fmt.Sprint(ev.Data["error"]), planted) {
		t.Fatalf("rotation result %v, want a failure naming %s", ev.Data, planted)
	}
	for _, who := range []struct {
		c    *sshtest.Client
		name string
		sees bool
	}{{b.bob, "bob (owner)", true}, {b.carol, "carol (approver)", true}, {b.erin, "erin (auditor)", true}, {b.alice, "alice", false}} {
		out, errOut, code := b.run(who.c, "gw", "grants")
		if code != 0 {
			t.Fatalf("%s: grants: %q", who.name, errOut)
		}
		if got := strings.Contains(out, "rotation owed: grant "+gid[1]) && strings.Contains(out, "root@web01"); got != who.sees {
			t.Errorf("%s sees the owed rotation: %v, want %v:\n%s", who.name, got, who.sees, out)
		}
	}
}
