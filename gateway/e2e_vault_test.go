package gateway_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/warden-gw/warden/internal/vaulttest"
	"github.com/warden-gw/warden/vault"
)

// The managed host trusts only Vault's CA: a session works only with a
// certificate that Vault signed for it.
func TestVaultSignedCertificateAcceptedBySSHD(t *testing.T) {
	v := vaulttest.Start(t)
	b := newTestbed(t, bedOptions{vault: v})
	out, _, code := b.run(b.alice, "root@web01", "echo via-vault")
	if code != 0 || out != "via-vault\n" {
		t.Fatalf("code %d out %q", code, out)
	}
	s := b.lastSession("alice")
	// sshd names the key ID and the serial Vault chose.
	b.host.WaitLog(t, `ID warden:`+s.ID+`:alice`, expectWait)
	var serial string
	if err := b.db().QueryRow(`SELECT cert_serial FROM sessions WHERE id = ?`, s.ID).Scan(&serial); err != nil || serial == "" {
		t.Fatalf("cert_serial %q %v", serial, err)
	}
	b.host.WaitLog(t, "(serial "+serial+")", expectWait)
}

// The certificate the host accepted, read from inside the session: Vault
// signed it for the login only, with the session's key ID, permit-pty only
// with a pty, and a lifetime of cert_ttl (plus Vault's 30s backdating).
func TestVaultCertificateFields(t *testing.T) {
	v := vaulttest.Start(t)
	b := newTestbed(t, bedOptions{vault: v})
	checkSessionCert(t, b)
}

func TestVaultOutageFailsClosedAndRecovers(t *testing.T) {
	v := vaulttest.Start(t)
	b := newTestbed(t, bedOptions{vault: v})

	// An open session before the outage.
	p := b.alice.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("echo before-$((1+1))\r")
	p.Expect(t, "before-2", expectWait)

	v.Pause() // Vault stops answering (SIGSTOP): its state survives
	_, errOut, code := b.run(b.alice, "root@web01", "echo must-not-run")
	if code != 1 || errOut != "warden: credential vault unavailable\n" {
		v.Resume()
		t.Fatalf("code %d stderr %q", code, errOut)
	}
	ev := b.waitEvent("credential.failed", "unavailable")
	if !strings.Contains(fmt.Sprint(ev.Data["cause"]), "deadline") {
		t.Errorf("audit cause %v does not say why", ev.Data["cause"])
	}
	// The open session goes on.
	p.Send("echo during-$((2+2))\r")
	p.Expect(t, "during-4", expectWait)

	v.Resume()
	out, _, code := b.run(b.alice, "root@web01", "echo after")
	if code != 0 || out != "after\n" {
		t.Fatalf("after resume: code %d out %q", code, out)
	}
	p.Send("exit\r")
	p.Wait(expectWait)
}

func TestVaultTokenWithoutSignPermissionIsRefused(t *testing.T) {
	v := vaulttest.Start(t)
	c := v.Client()
	ctx := context.Background()
	if err := c.Sys().PutPolicyWithContext(ctx, "read-only", `path "sys/*" { capabilities = ["read"] }`); err != nil {
		t.Fatal(err)
	}
	sec, err := c.Auth().Token().CreateWithContext(ctx, &api.TokenCreateRequest{Policies: []string{"read-only"}, TTL: "1h"})
	if err != nil {
		t.Fatal(err)
	}
	b := newTestbed(t, bedOptions{vault: v, vaultToken: sec.Auth.ClientToken})
	_, errOut, code := b.run(b.alice, "root@web01", "true")
	if code != 1 || errOut != "warden: credential vault unavailable\n" {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
	ev := b.waitEvent("credential.failed", "permission denied")
	if strings.Contains(fmt.Sprint(ev.Data), sec.Auth.ClientToken) {
		t.Fatal("the audit event holds the token")
	}
}

// AppRole login with a 5-second token TTL: renewal and re-login keep
// sessions working across 20 seconds.
func TestVaultAppRoleRenewedAcrossSessions(t *testing.T) {
	v := vaulttest.Start(t)
	root := v.Client()
	if err := root.Sys().PutPolicy("warden", `path "ssh/sign/warden" { capabilities = ["create", "update"] }`); err != nil {
		t.Fatal(err)
	}
	if err := root.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		t.Fatal(err)
	}
	if _, err := root.Logical().Write("auth/approle/role/warden", map[string]any{
		"token_policies": "warden", "token_ttl": "5s", "token_max_ttl": "10s",
	}); err != nil {
		t.Fatal(err)
	}
	rid, err := root.Logical().Read("auth/approle/role/warden/role-id")
	if err != nil {
		t.Fatal(err)
	}
	sid, err := root.Logical().Write("auth/approle/role/warden/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	secretFile := filepath.Join(t.TempDir(), "secret_id")
	if err := os.WriteFile(secretFile, []byte(sid.Data["secret_id"].(string)), 0o600); err != nil {
		t.Fatal(err)
	}
	b := newTestbed(t, bedOptions{vault: v, vaultAuth: &vault.AuthConfig{
		Method: "approle", RoleID: rid.Data["role_id"].(string), SecretIDFile: secretFile,
	}})
	start := time.Now()
	n := 0
	for time.Since(start) < 20*time.Second {
		out, errOut, code := b.run(b.alice, "root@web01", "echo ok")
		if code != 0 || out != "ok\n" {
			t.Fatalf("session %d at %v: code %d stderr %q", n, time.Since(start).Round(time.Second), code, errOut)
		}
		n++
		time.Sleep(2 * time.Second)
	}
	if n < 5 {
		t.Fatalf("only %d sessions in 20s", n)
	}
}
