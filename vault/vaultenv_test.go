package vault

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/warden-gw/warden/internal/vaulttest"
)

// vaultEnv is a real Vault (vaultdev) set up by Setup, with a root client
// for arranging each test's situation.
type vaultEnv struct {
	srv   *vaulttest.Server
	root  *api.Client
	setup *SetupResult
}

// newVaultEnv starts a fresh Vault and runs Setup with a 2m role TTL and
// writes Warden's policy as "warden".
func newVaultEnv(t *testing.T) *vaultEnv {
	t.Helper()
	srv := vaulttest.Start(t)
	e := &vaultEnv{srv: srv, root: srv.Client()}
	res, err := Setup(context.Background(), SetupOptions{Address: srv.Addr, Token: srv.RootToken, TTL: 2 * time.Minute, MaxTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	e.setup = res
	if err := e.root.Sys().PutPolicy("warden", res.Policy); err != nil {
		t.Fatal(err)
	}
	return e
}

// token creates a token with the given policies and TTL.
func (e *vaultEnv) token(t *testing.T, ttl string, policies ...string) string {
	t.Helper()
	s, err := e.root.Auth().Token().Create(&api.TokenCreateRequest{Policies: policies, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return s.Auth.ClientToken
}

// open opens the Vault backend with opt completed by the server address,
// and closes it when the test ends.
func (e *vaultEnv) open(t *testing.T, opt VaultOptions) *Vault {
	t.Helper()
	opt.Address = e.srv.Addr
	v, err := OpenVault(context.Background(), opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// openWithToken opens the backend with a fresh token holding the warden
// policy.
func (e *vaultEnv) openWithToken(t *testing.T, timeout time.Duration) *Vault {
	t.Helper()
	return e.open(t, VaultOptions{Timeout: timeout, Auth: AuthConfig{Method: AuthToken, Token: e.token(t, "1h", "warden")}})
}

// appRole creates an AppRole role with the warden policy and returns its
// role ID and a new secret ID.
func (e *vaultEnv) appRole(t *testing.T, name string, tokenTTL, tokenMaxTTL string) (roleID, secretID string) {
	t.Helper()
	if err := e.root.Sys().EnableAuthWithOptions("approle", &api.EnableAuthOptions{Type: "approle"}); err != nil {
		if _, err2 := e.root.Logical().Read("auth/approle/role"); err2 != nil {
			t.Fatal(err)
		}
	}
	path := "auth/approle/role/" + name
	if _, err := e.root.Logical().Write(path, map[string]any{
		"token_policies": "warden", "token_ttl": tokenTTL, "token_max_ttl": tokenMaxTTL,
	}); err != nil {
		t.Fatal(err)
	}
	r, err := e.root.Logical().Read(path + "/role-id")
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.root.Logical().Write(path+"/secret-id", nil)
	if err != nil {
		t.Fatal(err)
	}
	return r.Data["role_id"].(string), s.Data["secret_id"].(string)
}

// writeFile writes a secret file for the test and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// logBuffer collects log output from the renewal goroutine and Sign.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}
