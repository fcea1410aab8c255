package vault

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
)

func TestVaultSignCertificateFields(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t)
	v := e.openWithToken(t, 10*time.Second)
	ca, err := v.CAPublicKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ca.Marshal(), e.setup.CAPublicKey.Marshal()) {
		t.Fatalf("CAPublicKey differs from the key Setup reported")
	}
	seen := map[string]bool{}
	for _, pty := range []bool{false, true} {
		r := req()
		r.PTY = pty
		r.TTL = 90 * time.Second
		before := time.Now()
		cred, err := v.Sign(context.Background(), r)
		after := time.Now()
		if err != nil {
			t.Fatalf("pty=%v: %v", pty, err)
		}
		cert := cred.Cert
		checkUserCert(t, cert, r)
		if !bytes.Equal(cert.SignatureKey.Marshal(), ca.Marshal()) {
			t.Errorf("certificate not signed by the mount's CA")
		}
		if got := cert.ValidBefore - cert.ValidAfter; got != 90+30 {
			t.Errorf("lifetime = %ds, want ttl 90s + 30s backdating", got)
		}
		// Vault's clock is this machine's; allow a second of rounding.
		lo, hi := uint64(before.Add(r.TTL).Unix())-1, uint64(after.Add(r.TTL).Unix())+1
		if cert.ValidBefore < lo || cert.ValidBefore > hi {
			t.Errorf("valid before %d, want within [%d, %d] (now+ttl)", cert.ValidBefore, lo, hi)
		}
		if cred.Serial != cert.Serial || cred.KeyID != r.keyID() {
			t.Errorf("credential serial/key id = %d/%q", cred.Serial, cred.KeyID)
		}
		k := string(cert.Key.Marshal())
		if seen[k] {
			t.Errorf("session key reused")
		}
		seen[k] = true
	}
}

func TestVaultSignWithoutPermissionIsUnavailable(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t)
	// The default policy lets the token look itself up and renew, not sign.
	v := e.open(t, VaultOptions{Auth: AuthConfig{Token: e.token(t, "1h", "default")}})
	_, err := v.Sign(context.Background(), req())
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Sign = %v, want ErrUnavailable", err)
	}
	var re *api.ResponseError
	if !errors.As(err, &re) || re.StatusCode != http.StatusForbidden || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("Sign = %v, want Vault's 403 permission denied in the chain", err)
	}
}

func TestVaultSignFailsClosedWhileVaultHangsAndRecovers(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t)
	const timeout = 2 * time.Second
	v := e.openWithToken(t, timeout)
	if _, err := v.Sign(context.Background(), req()); err != nil {
		t.Fatal(err)
	}

	e.srv.Pause()
	start := time.Now()
	_, err := v.Sign(context.Background(), req())
	elapsed := time.Since(start)
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Sign against a hung Vault = %v, want ErrUnavailable wrapping the deadline", err)
	}
	// Generous: the point is that Sign gives up instead of hanging.
	if elapsed > timeout+20*time.Second {
		t.Fatalf("Sign took %v with a %v timeout", elapsed, timeout)
	}

	e.srv.Resume()
	if _, err := v.Sign(context.Background(), req()); err != nil {
		t.Fatalf("Sign after Vault resumed = %v, want success without reopening", err)
	}
}

func TestVaultSignFailsClosedWhenSealedAndRecovers(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t)
	v := e.openWithToken(t, 10*time.Second)
	if err := e.root.Sys().Seal(); err != nil {
		t.Fatal(err)
	}
	_, err := v.Sign(context.Background(), req())
	var re *api.ResponseError
	if !errors.Is(err, ErrUnavailable) || !errors.As(err, &re) || re.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("Sign against a sealed Vault = %v, want ErrUnavailable wrapping 503", err)
	}
	if !strings.Contains(err.Error(), "sealed") {
		t.Errorf("error %q does not say sealed", err)
	}
	e.srv.Unseal()
	if _, err := v.Sign(context.Background(), req()); err != nil {
		t.Fatalf("Sign after unseal = %v, want success", err)
	}
}

func TestVaultSignFailsClosedWhenVaultIsGone(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t)
	v := e.openWithToken(t, 10*time.Second)
	e.srv.Stop()
	cred, err := v.Sign(context.Background(), req())
	if !errors.Is(err, ErrUnavailable) || cred != nil {
		t.Fatalf("Sign with Vault stopped = %v, %v; want ErrUnavailable", cred, err)
	}
	if _, err := v.CAPublicKey(context.Background()); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("CAPublicKey with Vault stopped = %v, want ErrUnavailable", err)
	}
}

func TestVaultRefusesRoleThatAddsDefaultExtensions(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t)
	// A role written by hand per Vault's docs: permit-pty by default.
	if _, err := e.root.Logical().Write("ssh/roles/warden", map[string]any{
		"key_type": "ca", "allow_user_certificates": true, "allowed_users": "*", "allow_user_key_ids": true,
		"default_extensions": map[string]string{"permit-pty": ""}, "allowed_extensions": "permit-pty",
		"ttl": "2m", "max_ttl": "1h",
	}); err != nil {
		t.Fatal(err)
	}
	v := e.openWithToken(t, 10*time.Second)
	_, err := v.Sign(context.Background(), req()) // no pty asked
	if !errors.Is(err, ErrUnavailable) || !errors.Is(err, ErrCertMismatch) || !strings.Contains(err.Error(), "extensions") {
		t.Fatalf("Sign = %v, want ErrCertMismatch about extensions", err)
	}
}

func TestOpenVaultRefusesBadLogin(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t)
	for _, tc := range []struct {
		name string
		opt  VaultOptions
		want error
	}{
		{"unknown token", VaultOptions{Address: e.srv.Addr, Auth: AuthConfig{Token: "hvs.not-a-token"}}, ErrUnavailable},
		{"no token at all", VaultOptions{Address: e.srv.Addr}, nil},
		{"unknown method", VaultOptions{Address: e.srv.Addr, Auth: AuthConfig{Method: "ldap", Token: "x"}}, nil},
		{"approle without secret id file", VaultOptions{Address: e.srv.Addr, Auth: AuthConfig{Method: AuthAppRole, RoleID: "r"}}, nil},
		{"mount that climbs", VaultOptions{Address: e.srv.Addr, Mount: "ssh/../sys", Auth: AuthConfig{Token: "x"}}, nil},
		{"role with slash", VaultOptions{Address: e.srv.Addr, Role: "a/b", Auth: AuthConfig{Token: "x"}}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			v, err := OpenVault(context.Background(), tc.opt)
			if err == nil {
				v.Close()
				t.Fatal("OpenVault succeeded")
			}
			if tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("OpenVault = %v, want %v", err, tc.want)
			}
			if tc.want == nil && errors.Is(err, ErrUnavailable) {
				t.Fatalf("OpenVault = %v: a configuration error is not unavailability", err)
			}
		})
	}
}

func TestVaultTokenFileIsReadAgainAfterRevocation(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t)
	first := e.token(t, "1h", "warden")
	path := writeFile(t, "token", first+"\n")
	v := e.open(t, VaultOptions{Auth: AuthConfig{TokenFile: path}})
	if _, err := v.Sign(context.Background(), req()); err != nil {
		t.Fatal(err)
	}
	// An agent rotates the token: the old one is revoked, the file updated.
	if err := e.root.Auth().Token().RevokeTree(first); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(e.token(t, "1h", "warden")), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := v.Sign(context.Background(), req()); err != nil {
		t.Fatalf("Sign after token rotation = %v, want one re-login from the file", err)
	}
}
