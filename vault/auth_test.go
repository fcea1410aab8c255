package vault

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/hashicorp/vault/api"
)

// wrapped returns a client that response-wraps every answer for 5 minutes.
func wrapped(t *testing.T, c *api.Client) *api.Client {
	t.Helper()
	w, err := c.Clone()
	if err != nil {
		t.Fatal(err)
	}
	w.SetToken(c.Token())
	w.SetWrappingLookupFunc(func(string, string) string { return "5m" })
	return w
}

func TestAppRoleLoginWithPlainAndWrappedSecretID(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t)
	roleID, secretID := e.appRole(t, "warden", "1h", "1h")
	s, err := wrapped(t, e.root).Logical().Write("auth/approle/role/warden/secret-id", nil)
	if err != nil || s.WrapInfo == nil {
		t.Fatalf("wrap a secret id: %v", err)
	}
	for _, tc := range []struct{ name, file string }{
		{"plain secret id", secretID + "\n"},
		{"response-wrapped secret id", s.WrapInfo.Token},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "secret_id", tc.file)
			v := e.open(t, VaultOptions{Auth: AuthConfig{Method: AuthAppRole, RoleID: roleID, SecretIDFile: path}})
			if _, err := v.Sign(context.Background(), req()); err != nil {
				t.Fatal(err)
			}
			// Revoking the token forces a re-login on the next Sign; a
			// wrapping token cannot be unwrapped twice, so this also proves
			// the unwrapped secret ID is reused.
			if err := e.root.Auth().Token().RevokeTree(v.client.Token()); err != nil {
				t.Fatal(err)
			}
			if _, err := v.Sign(context.Background(), req()); err != nil {
				t.Fatalf("Sign after the token was revoked = %v, want a re-login", err)
			}
		})
	}
}

func TestAppRoleRefusesBadSecretIDFile(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t)
	roleID, _ := e.appRole(t, "warden", "1h", "1h")
	w := wrapped(t, e.root)
	foreign, err := w.Logical().Write("sys/wrapping/wrap", map[string]any{"secret_id": "planted"})
	if err != nil {
		t.Fatal(err)
	}
	used, err := w.Logical().Write("auth/approle/role/warden/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.root.Logical().Unwrap(used.WrapInfo.Token); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, file string
		want       func(error) bool
	}{
		{"wrapping token from elsewhere", foreign.WrapInfo.Token, func(err error) bool { return errors.Is(err, ErrBadWrapping) }},
		{"wrapping token already unwrapped", used.WrapInfo.Token, func(err error) bool {
			return strings.Contains(err.Error(), "already unwrapped")
		}},
		{"wrong secret id", "00000000-0000-0000-0000-000000000000", func(err error) bool {
			return errors.Is(err, ErrUnavailable) && strings.Contains(err.Error(), "invalid")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "secret_id", tc.file)
			v, err := OpenVault(context.Background(), VaultOptions{Address: e.srv.Addr, Auth: AuthConfig{Method: AuthAppRole, RoleID: roleID, SecretIDFile: path}})
			if err == nil {
				v.Close()
				t.Fatal("OpenVault succeeded")
			}
			if !tc.want(err) {
				t.Fatalf("OpenVault = %v", err)
			}
			if strings.Contains(err.Error(), tc.file) {
				t.Fatalf("error reveals the secret: %v", err)
			}
		})
	}
}

func TestReadSecretFile(t *testing.T) {
	for _, tc := range []struct {
		name, content, want string
		ok                  bool
	}{
		{"trims newline", "s3cret\n", "s3cret", true},
		{"trims spaces", "  s3cret \r\n", "s3cret", true},
		{"empty", "", "", false},
		{"only whitespace", " \n\t", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readSecretFile(writeFile(t, "f", tc.content))
			if (err == nil) != tc.ok || got != tc.want {
				t.Fatalf("readSecretFile = %q, %v; want %q ok=%v", got, err, tc.want, tc.ok)
			}
		})
	}
	if _, err := readSecretFile(t.TempDir() + "/missing"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestLooksLikeToken(t *testing.T) {
	for text, want := range map[string]bool{
		"hvs.CAESIabc": true, "hvb.AAAA": true, "s.abcdef": true, "b.abc": true,
		"6f1b5c1e-0000-4000-8000-000000000000": false, "custom-secret": false, "": false,
	} {
		if got := looksLikeToken(text); got != want {
			t.Errorf("looksLikeToken(%q) = %v, want %v", text, got, want)
		}
	}
}
