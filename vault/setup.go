package vault

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/vault/api"
	"golang.org/x/crypto/ssh"
)

// SetupOptions configures Setup. Token needs rights to mount engines and
// write roles (an admin token; Warden's own token needs far less).
type SetupOptions struct {
	// Address is Vault's URL (empty means VAULT_ADDR); Token an admin token.
	Address, Token string
	// Mount and Role name the SSH engine and the signing role (defaults
	// "ssh" and "warden").
	Mount, Role string
	// TTL and MaxTTL are the role's ttl and max_ttl: cert_ttl, normally.
	// Zero TTL means 2m; zero MaxTTL means TTL.
	TTL, MaxTTL time.Duration
}

// SetupResult reports what Setup found or changed.
type SetupResult struct {
	// CAPublicKey is the mount's CA public key.
	CAPublicKey ssh.PublicKey
	// TrustedUserCAKeysLine is the line for sshd's TrustedUserCAKeys file on
	// managed hosts.
	TrustedUserCAKeysLine string
	// Policy is the HCL policy Warden's token or AppRole needs.
	Policy string
	// Created lists each change made, in order; empty when Vault was
	// already set up as asked.
	Created []string
}

// defaultSetupTTL matches the default cert_ttl.
const defaultSetupTTL = 2 * time.Minute

// Setup is the idempotent bootstrap behind `warden vault setup`: it enables
// the SSH secrets engine at Mount, generates an ed25519 CA there unless one
// exists (an existing CA is never replaced: hosts already trust it), and
// writes the signing role unless it already has the wanted settings.
func Setup(ctx context.Context, opt SetupOptions) (*SetupResult, error) {
	if opt.Mount == "" {
		opt.Mount = DefaultMount
	}
	if opt.Role == "" {
		opt.Role = DefaultRole
	}
	if opt.TTL == 0 {
		opt.TTL = defaultSetupTTL
	}
	if opt.MaxTTL == 0 {
		opt.MaxTTL = opt.TTL
	}
	switch {
	case !mountPattern.MatchString(opt.Mount):
		return nil, fmt.Errorf("vault: setup: invalid mount %q", opt.Mount)
	case !rolePattern.MatchString(opt.Role):
		return nil, fmt.Errorf("vault: setup: invalid role %q", opt.Role)
	case opt.TTL < time.Second || opt.MaxTTL < opt.TTL:
		return nil, fmt.Errorf("vault: setup: need 1s <= ttl (%v) <= max_ttl (%v)", opt.TTL, opt.MaxTTL)
	case opt.Token == "":
		return nil, errors.New("vault: setup: no token (set VAULT_TOKEN)")
	}
	c, err := newClient(opt.Address, 0)
	if err != nil {
		return nil, err
	}
	c.SetToken(opt.Token)

	res := &SetupResult{Policy: fmt.Sprintf("path %q { capabilities = [\"create\", \"update\"] }\n", opt.Mount+"/sign/"+opt.Role)}
	steps := []func(context.Context, *api.Client, SetupOptions) (string, error){setupMount, setupCA, setupRole}
	for _, step := range steps {
		done, err := step(ctx, c, opt)
		if err != nil {
			return nil, fmt.Errorf("vault: setup: %w", err)
		}
		if done != "" {
			res.Created = append(res.Created, done)
		}
	}
	ca, err := fetchCAPublicKey(ctx, c, opt.Mount)
	if err != nil {
		return nil, fmt.Errorf("vault: setup: %w", err)
	}
	res.CAPublicKey = ca
	res.TrustedUserCAKeysLine = strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca)))
	return res, nil
}

// setupMount enables the SSH secrets engine unless it is mounted already.
// A different engine at that path is an error, not something to replace.
func setupMount(ctx context.Context, c *api.Client, opt SetupOptions) (string, error) {
	mounts, err := c.Sys().ListMountsWithContext(ctx)
	if err != nil {
		return "", fmt.Errorf("list mounts: %w", err)
	}
	if m, ok := mounts[opt.Mount+"/"]; ok {
		if m.Type != "ssh" {
			return "", fmt.Errorf("mount %s/ is a %q engine, not ssh", opt.Mount, m.Type)
		}
		return "", nil
	}
	err = c.Sys().MountWithContext(ctx, opt.Mount, &api.MountInput{
		Type: "ssh", Description: "Warden per-session SSH user certificates",
	})
	if err != nil {
		return "", fmt.Errorf("enable ssh engine at %s/: %w", opt.Mount, err)
	}
	return fmt.Sprintf("enabled the ssh secrets engine at %s/", opt.Mount), nil
}

// setupCA generates an ed25519 CA unless the mount has one.
func setupCA(ctx context.Context, c *api.Client, opt SetupOptions) (string, error) {
	path := opt.Mount + "/config/ca"
	_, err := c.Logical().ReadWithContext(ctx, path)
	var re *api.ResponseError
	switch {
	case err == nil:
		return "", nil
	// Vault answers 400 "keys haven't been configured yet" for a new mount.
	case errors.As(err, &re) && re.StatusCode == http.StatusBadRequest:
	default:
		return "", fmt.Errorf("read %s: %w", path, err)
	}
	_, err = c.Logical().WriteWithContext(ctx, path, map[string]any{
		"generate_signing_key": true, "key_type": "ed25519",
	})
	if err != nil {
		return "", fmt.Errorf("generate CA at %s: %w", path, err)
	}
	return fmt.Sprintf("generated an ed25519 CA at %s", path), nil
}

// roleSettings is the signing role Warden needs. It differs from Vault's
// defaults in three security-relevant ways: every principal is allowed
// because Warden's policy decides who may log in where; key IDs come from
// the request so sshd logs name the session; and default_extensions is
// empty with permit-pty the only allowed extension, because Vault fills an
// empty extensions request with the defaults, which would grant a pty (or
// forwarding) to sessions that never asked for one.
func roleSettings(opt SetupOptions) map[string]any {
	return map[string]any{
		"key_type":                 "ca",
		"allow_user_certificates":  true,
		"allow_host_certificates":  false,
		"allowed_users":            "*",
		"default_user":             "",
		"allow_user_key_ids":       true,
		"default_extensions":       map[string]string{},
		"allowed_extensions":       permitPTY,
		"default_critical_options": map[string]string{},
		"allowed_critical_options": "",
		"ttl":                      int64(opt.TTL / time.Second),
		"max_ttl":                  int64(opt.MaxTTL / time.Second),
		"not_before_duration":      int64(clockSkew / time.Second),
	}
}

// setupRole writes the role unless every wanted setting is already in place,
// and names the settings it changed.
func setupRole(ctx context.Context, c *api.Client, opt SetupOptions) (string, error) {
	path := opt.Mount + "/roles/" + opt.Role
	want := roleSettings(opt)
	cur, err := c.Logical().ReadWithContext(ctx, path)
	if err != nil {
		return "", fmt.Errorf("read role %s: %w", path, err)
	}
	var changed []string
	for _, k := range slices.Sorted(maps.Keys(want)) {
		// Vault returns numbers as json.Number and maps as
		// map[string]any; their printed forms compare equal to ours.
		if cur == nil || fmt.Sprint(cur.Data[k]) != fmt.Sprint(want[k]) {
			changed = append(changed, k)
		}
	}
	if len(changed) == 0 {
		return "", nil
	}
	if _, err := c.Logical().WriteWithContext(ctx, path, want); err != nil {
		return "", fmt.Errorf("write role %s: %w", path, err)
	}
	if cur == nil {
		return fmt.Sprintf("created role %s", path), nil
	}
	return fmt.Sprintf("updated role %s (%s)", path, strings.Join(changed, ", ")), nil
}
