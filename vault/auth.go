package vault

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"

	"github.com/hashicorp/vault/api"
)

// Auth methods accepted in AuthConfig.Method.
const (
	// AuthToken uses a Vault token from AuthConfig.Token or TokenFile.
	AuthToken = "token"
	// AuthAppRole logs in at auth/approle/login with a role ID and the
	// secret ID read from SecretIDFile.
	AuthAppRole = "approle"
)

// AuthConfig says how Warden logs in to Vault. Secrets are read from files
// or the environment, never from warden.yaml, and are never logged.
type AuthConfig struct {
	// Method is AuthToken (the default when empty) or AuthAppRole.
	Method string
	// Token is the token for AuthToken, normally taken from VAULT_TOKEN.
	Token string
	// TokenFile, when set, holds the token instead of Token; it is read
	// again on each login, so an agent may rotate it.
	TokenFile string
	// RoleID is the AppRole role ID.
	RoleID string
	// SecretIDFile holds the AppRole secret ID, or a response-wrapping
	// token that wraps one; a wrapping token is unwrapped once.
	SecretIDFile string
}

// ErrBadWrapping means SecretIDFile held a wrapping token that did not come
// from an AppRole secret-id endpoint. A token wrapped elsewhere may have
// been substituted by an attacker who intercepted the real one.
var ErrBadWrapping = errors.New("vault: wrapping token does not wrap an approle secret id")

// maxSecretFile bounds what is read from a token or secret ID file.
const maxSecretFile = 16 << 10

// uuidPattern matches the secret IDs Vault generates. A UUID is never a
// wrapping token, so it is used as is without asking Vault.
var uuidPattern = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// authenticator performs logins. Its state is guarded by Vault.loginMu.
type authenticator struct {
	cfg AuthConfig
	// fileText and secretID remember the last secret_id_file content and
	// the secret ID it stands for: a wrapping token can be unwrapped only
	// once, so later logins reuse the unwrapped ID until the file changes.
	fileText, secretID string
}

// check validates the configuration before anything is sent to Vault.
func (a *authenticator) check() error {
	switch a.cfg.Method {
	case AuthToken:
		if a.cfg.Token == "" && a.cfg.TokenFile == "" {
			return errors.New("vault: token auth needs VAULT_TOKEN or a token_file")
		}
	case AuthAppRole:
		if a.cfg.RoleID == "" || a.cfg.SecretIDFile == "" {
			return errors.New("vault: approle auth needs role_id and secret_id_file")
		}
	default:
		return fmt.Errorf("vault: unknown auth method %q (want %s or %s)", a.cfg.Method, AuthToken, AuthAppRole)
	}
	return nil
}

// login returns a secret whose Auth holds the client token, its lease and
// renewability. c is a client without a token.
func (a *authenticator) login(ctx context.Context, c *api.Client) (*api.Secret, error) {
	if a.cfg.Method == AuthAppRole {
		return a.loginAppRole(ctx, c)
	}
	return a.loginToken(ctx, c)
}

// loginToken looks the token up, which proves it is valid and tells the
// renewal how long it lives.
func (a *authenticator) loginToken(ctx context.Context, c *api.Client) (*api.Secret, error) {
	token := a.cfg.Token
	if a.cfg.TokenFile != "" {
		t, err := readSecretFile(a.cfg.TokenFile)
		if err != nil {
			return nil, err
		}
		token = t
	}
	c.SetToken(token)
	self, err := c.Auth().Token().LookupSelfWithContext(ctx)
	if err != nil {
		return nil, fmt.Errorf("vault: look up token: %w", err)
	}
	ttl, err := self.TokenTTL()
	if err != nil {
		return nil, fmt.Errorf("vault: look up token: %w", err)
	}
	renewable, err := self.TokenIsRenewable()
	if err != nil {
		return nil, fmt.Errorf("vault: look up token: %w", err)
	}
	return &api.Secret{Auth: &api.SecretAuth{
		ClientToken: token, Renewable: renewable, LeaseDuration: int(ttl.Seconds()),
	}}, nil
}

// loginAppRole logs in with the role ID and the (unwrapped) secret ID.
func (a *authenticator) loginAppRole(ctx context.Context, c *api.Client) (*api.Secret, error) {
	secretID, err := a.approleSecretID(ctx, c)
	if err != nil {
		return nil, err
	}
	s, err := c.Logical().WriteWithContext(ctx, "auth/approle/login", map[string]any{
		"role_id": a.cfg.RoleID, "secret_id": secretID,
	})
	if err != nil {
		return nil, fmt.Errorf("vault: approle login: %w", err)
	}
	if s == nil || s.Auth == nil || s.Auth.ClientToken == "" {
		return nil, errors.New("vault: approle login: response has no token")
	}
	return s, nil
}

// approleSecretID reads secret_id_file and unwraps it when it holds a
// response-wrapping token.
func (a *authenticator) approleSecretID(ctx context.Context, c *api.Client) (string, error) {
	text, err := readSecretFile(a.cfg.SecretIDFile)
	if err != nil {
		return "", err
	}
	if text == a.fileText && a.secretID != "" {
		return a.secretID, nil
	}
	secretID := text
	if !uuidPattern.MatchString(text) {
		wrapped, err := isAppRoleWrapping(ctx, c, text)
		if err != nil {
			return "", err
		}
		if wrapped {
			if secretID, err = unwrapSecretID(ctx, c, text); err != nil {
				return "", err
			}
		}
	}
	a.fileText, a.secretID = text, secretID
	return secretID, nil
}

// isAppRoleWrapping asks Vault whether text is a live wrapping token, and
// checks that it wraps an AppRole secret ID. Vault answers 400 for anything
// that is not a wrapping token, such as a custom secret ID.
func isAppRoleWrapping(ctx context.Context, c *api.Client, text string) (bool, error) {
	info, err := c.Logical().WriteWithContext(ctx, "sys/wrapping/lookup", map[string]any{"token": text})
	var re *api.ResponseError
	if errors.As(err, &re) && re.StatusCode == http.StatusBadRequest {
		if looksLikeToken(text) {
			// Most likely unwrapped already (by Warden before a restart,
			// or by someone else): a new secret ID must be delivered.
			return false, errors.New("vault: secret_id_file holds a wrapping token that is invalid, expired or already unwrapped")
		}
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("vault: look up wrapping token: %w", err)
	}
	if info == nil || info.Data == nil {
		return false, nil
	}
	path, _ := info.Data["creation_path"].(string)
	if !strings.HasPrefix(path, "auth/approle/role/") || !strings.HasSuffix(path, "/secret-id") {
		return false, fmt.Errorf("%w (created at %q)", ErrBadWrapping, path)
	}
	return true, nil
}

// unwrapSecretID exchanges a wrapping token for the secret ID inside it.
func unwrapSecretID(ctx context.Context, c *api.Client, token string) (string, error) {
	// Unwrap puts the wrapping token on a client that has none; it is
	// spent after this call, so it must not ride along on the login.
	defer c.ClearToken()
	s, err := c.Logical().UnwrapWithContext(ctx, token)
	if err != nil {
		return "", fmt.Errorf("vault: unwrap secret id: %w", err)
	}
	if s == nil || s.Data == nil {
		return "", errors.New("vault: unwrap secret id: empty response")
	}
	id, _ := s.Data["secret_id"].(string)
	if id == "" {
		return "", errors.New("vault: unwrap secret id: no secret_id in the wrapped response")
	}
	return id, nil
}

// looksLikeToken reports whether text has the prefix of a Vault token
// (service or batch, current or legacy format).
func looksLikeToken(text string) bool {
	for _, p := range []string{"hvs.", "hvb.", "s.", "b."} {
		if strings.HasPrefix(text, p) {
			return true
		}
	}
	return false
}

// readSecretFile reads a token or secret ID file, trimmed of whitespace.
// Its content never appears in an error.
func readSecretFile(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("vault: open secret file: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile))
	if err != nil {
		return "", fmt.Errorf("vault: read secret file %s: %w", path, err)
	}
	s := strings.TrimSpace(string(b))
	if s == "" {
		return "", fmt.Errorf("vault: secret file %s is empty", path)
	}
	return s, nil
}
