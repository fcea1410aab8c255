package cli

import (
	"context"
	"fmt"
	"os"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/vault"
)

func runVault(e *env, args []string) error {
	if len(args) == 0 || args[0] != "setup" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
			fmt.Fprintln(e.stdout, "Usage: warden vault setup --address A --mount ssh --role warden [--ttl 2m] [--max-ttl 1h]")
			return nil
		}
		return usageError("usage: warden vault setup --address A --mount ssh --role warden")
	}
	fs := newFlags(e, "vault setup", "vault setup --address A --mount ssh --role warden (token from VAULT_TOKEN)")
	addr := fs.String("address", os.Getenv("VAULT_ADDR"), "Vault address (default $VAULT_ADDR)")
	mount := fs.String("mount", "ssh", "SSH secrets engine mount path")
	role := fs.String("role", "warden", "signing role name")
	ttl := fs.Duration("ttl", 2*time.Minute, "default certificate TTL (cert_ttl)")
	maxTTL := fs.Duration("max-ttl", time.Hour, "maximum certificate TTL")
	pos, err := parseFlags(fs, args[1:])
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("vault setup takes no arguments (got %q)", pos[0])
	}
	if *addr == "" {
		return usageError("--address is required (or set VAULT_ADDR)")
	}
	token := os.Getenv("VAULT_TOKEN")
	if token == "" {
		return usageError("set VAULT_TOKEN to a token that may manage mounts and policies")
	}
	res, err := vault.Setup(context.Background(), vault.SetupOptions{
		Address: *addr, Token: token, Mount: *mount, Role: *role, TTL: *ttl, MaxTTL: *maxTTL,
	})
	if err != nil {
		return err
	}
	if len(res.Created) == 0 {
		fmt.Fprintln(e.stdout, "# Vault already set up for Warden; nothing changed.")
	}
	for _, c := range res.Created {
		fmt.Fprintln(e.stdout, "# "+c)
	}
	fmt.Fprintln(e.stdout, "\n# On each managed host, put this line in the file named by sshd's TrustedUserCAKeys:")
	fmt.Fprint(e.stdout, string(gossh.MarshalAuthorizedKey(res.CAPublicKey)))
	fmt.Fprintln(e.stdout, "\n# Vault policy Warden's token or AppRole needs:")
	fmt.Fprintln(e.stdout, res.Policy)
	return nil
}
