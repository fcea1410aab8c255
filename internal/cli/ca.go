package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/policy"
)

func runCA(e *env, args []string) error {
	fs := newFlags(e, "ca", "ca -c warden.yaml")
	cfgPath := fs.String("c", "warden.yaml", "policy and configuration file")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("ca takes no arguments (got %q)", pos[0])
	}
	cfg, err := policy.Load(*cfgPath)
	if err != nil {
		return err
	}
	ctx := context.Background()
	sig, closeSigner, err := openSigner(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		return err
	}
	defer closeSigner()
	key, err := sig.CAPublicKey(ctx)
	if err != nil {
		return err
	}
	// The authorized_keys form is exactly what sshd's TrustedUserCAKeys
	// file holds, one CA per line.
	fmt.Fprint(e.stdout, string(gossh.MarshalAuthorizedKey(key)))
	return nil
}
