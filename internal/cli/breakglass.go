package cli

import (
	"context"
	"log/slog"
	"os"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/rotate"
	"github.com/warden-gw/warden/vault"
)

// kvKeys reads break-glass static keys from Vault KV with Warden's own
// Vault identity.
type kvKeys struct{ v *vault.Vault }

func (k kvKeys) Fetch(ctx context.Context, path string) (gossh.Signer, error) {
	s, _, err := rotate.Fetch(ctx, k.v.API(), path)
	return s, err
}

// kvRotator rotates them when their grant ends.
type kvRotator struct {
	v              *vault.Vault
	log            *slog.Logger
	authorizedKeys string // "" means rotate.DefaultAuthorizedKeys
}

func (r kvRotator) Rotate(ctx context.Context, t rotate.Target) (rotate.Result, error) {
	t.AuthorizedKeys = r.authorizedKeys
	return rotate.Rotate(ctx, rotate.Options{Client: r.v.API(), Logger: r.log}, t)
}

// needsKV reports whether a role names a static credential in Vault KV.
func needsKV(cfg *policy.Config) bool {
	for _, r := range cfg.Roles {
		if r.Credential.VaultKV != "" {
			return true
		}
	}
	return false
}

// openKV opens Warden's Vault identity for KV when the signer is not
// already Vault (built-in CA with break-glass static credentials).
func openKV(ctx context.Context, cfg *policy.Config, log *slog.Logger) (*vault.Vault, error) {
	vc := cfg.Credentials.Vault
	return vault.OpenVault(ctx, vault.VaultOptions{
		Address: vc.Address, Mount: vc.Mount, Role: vc.Role, Timeout: time.Duration(vc.Timeout), Logger: log,
		Auth: vault.AuthConfig{
			Method: vc.Auth.Method, Token: os.Getenv("VAULT_TOKEN"), TokenFile: vc.Auth.TokenFile,
			RoleID: vc.Auth.RoleID, SecretIDFile: vc.Auth.SecretIDFile,
		},
	})
}
