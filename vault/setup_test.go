package vault

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/internal/vaulttest"
)

func TestSetupIsIdempotent(t *testing.T) {
	t.Parallel()
	srv := vaulttest.Start(t)
	opt := SetupOptions{Address: srv.Addr, Token: srv.RootToken, TTL: 2 * time.Minute, MaxTTL: 10 * time.Minute}
	first, err := Setup(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"enabled the ssh secrets engine at ssh/",
		"generated an ed25519 CA at ssh/config/ca",
		"created role ssh/roles/warden",
	}
	if fmt.Sprint(first.Created) != fmt.Sprint(want) {
		t.Errorf("first Setup created %q, want %q", first.Created, want)
	}
	if first.CAPublicKey.Type() != ssh.KeyAlgoED25519 {
		t.Errorf("CA type = %s, want ed25519", first.CAPublicKey.Type())
	}
	if line := mustAuthorizedKey(t, first.TrustedUserCAKeysLine); string(line.Marshal()) != string(first.CAPublicKey.Marshal()) {
		t.Errorf("TrustedUserCAKeys line %q is not the CA key", first.TrustedUserCAKeysLine)
	}
	if want := "path \"ssh/sign/warden\" { capabilities = [\"create\", \"update\"] }\n"; first.Policy != want {
		t.Errorf("policy = %q, want %q", first.Policy, want)
	}
	checkRole(t, srv.Client(), "ssh/roles/warden", 120, 600)

	second, err := Setup(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if len(second.Created) != 0 {
		t.Errorf("second Setup changed %q, want nothing", second.Created)
	}
	if second.TrustedUserCAKeysLine != first.TrustedUserCAKeysLine {
		t.Errorf("second Setup reports another CA")
	}
}

// checkRole asserts the role carries the settings the issue lists, plus
// the two Warden needs for exact extensions.
func checkRole(t *testing.T, c *api.Client, path string, ttl, maxTTL int) {
	t.Helper()
	r, err := c.Logical().Read(path)
	if err != nil || r == nil {
		t.Fatalf("read %s: %v", path, err)
	}
	for k, want := range map[string]string{
		"key_type":                 "ca",
		"allow_user_certificates":  "true",
		"allow_host_certificates":  "false",
		"allowed_users":            "*",
		"allow_user_key_ids":       "true",
		"default_extensions":       "map[]",
		"allowed_extensions":       "permit-pty",
		"allowed_critical_options": "",
		"ttl":                      fmt.Sprint(ttl),
		"max_ttl":                  fmt.Sprint(maxTTL),
		"not_before_duration":      "30",
	} {
		if got := fmt.Sprint(r.Data[k]); got != want {
			t.Errorf("role %s = %q, want %q", k, got, want)
		}
	}
}

func mustAuthorizedKey(t *testing.T, line string) ssh.PublicKey {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatalf("parse %q: %v", line, err)
	}
	return k
}

func TestSetupRepairsDriftAndKeepsExistingCA(t *testing.T) {
	t.Parallel()
	srv := vaulttest.Start(t)
	root := srv.Client()
	// An admin mounted the engine at a nested path and made a CA already.
	if err := root.Sys().Mount("team/ssh", &api.MountInput{Type: "ssh"}); err != nil {
		t.Fatal(err)
	}
	ca, err := root.Logical().Write("team/ssh/config/ca", map[string]any{"generate_signing_key": true, "key_type": "ed25519"})
	if err != nil {
		t.Fatal(err)
	}
	opt := SetupOptions{Address: srv.Addr, Token: srv.RootToken, Mount: "team/ssh", Role: "ops", TTL: time.Minute}
	res, err := Setup(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(res.Created) != "[created role team/ssh/roles/ops]" {
		t.Errorf("Setup created %q, want only the role", res.Created)
	}
	if strings.TrimSpace(ca.Data["public_key"].(string)) != res.TrustedUserCAKeysLine {
		t.Errorf("Setup replaced the existing CA")
	}
	if !strings.Contains(res.Policy, `"team/ssh/sign/ops"`) {
		t.Errorf("policy %q does not name team/ssh/sign/ops", res.Policy)
	}

	// Someone narrows the principals and adds forwarding by hand.
	if _, err := root.Logical().Write("team/ssh/roles/ops", map[string]any{
		"key_type": "ca", "allow_user_certificates": true, "allowed_users": "root", "allow_user_key_ids": true,
		"allowed_extensions": "permit-pty,permit-port-forwarding", "ttl": "1m", "max_ttl": "1m",
	}); err != nil {
		t.Fatal(err)
	}
	res, err = Setup(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	if want := "[updated role team/ssh/roles/ops (allowed_extensions, allowed_users)]"; fmt.Sprint(res.Created) != want {
		t.Errorf("Setup reported %q, want %q", res.Created, want)
	}
	checkRole(t, root, "team/ssh/roles/ops", 60, 60)
}

func TestSetupRefusesBadInput(t *testing.T) {
	t.Parallel()
	srv := vaulttest.Start(t)
	if err := srv.Client().Sys().Mount("kv1", &api.MountInput{Type: "kv"}); err != nil {
		t.Fatal(err)
	}
	base := SetupOptions{Address: srv.Addr, Token: srv.RootToken}
	for _, tc := range []struct {
		name string
		mod  func(*SetupOptions)
		want string
	}{
		{"another engine at the mount", func(o *SetupOptions) { o.Mount = "kv1" }, `"kv" engine`},
		{"no token", func(o *SetupOptions) { o.Token = "" }, "no token"},
		{"max ttl below ttl", func(o *SetupOptions) { o.TTL, o.MaxTTL = time.Hour, time.Minute }, "max_ttl"},
		{"mount with dot-dot", func(o *SetupOptions) { o.Mount = "../sys" }, "invalid mount"},
		{"role with slash", func(o *SetupOptions) { o.Role = "a/b" }, "invalid role"},
		{"token without rights", func(o *SetupOptions) { o.Token = "hvs.unknown" }, "permission denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := base
			tc.mod(&o)
			_, err := Setup(context.Background(), o)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Setup = %v, want error about %q", err, tc.want)
			}
		})
	}
}
