package vault

import (
	"context"
	"strings"
	"testing"
	"time"
)

// TestAppRoleRenewal signs for about 20 seconds with AppRole tokens that
// live 5 seconds and may be renewed up to 10: every token Warden holds must
// be replaced by renewal and re-login along the way, and no session may be
// refused. It takes ~20s; run it alone with -run TestAppRoleRenewal.
func TestAppRoleRenewal(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t)
	roleID, secretID := e.appRole(t, "warden", "5s", "10s")
	var logs logBuffer
	v := e.open(t, VaultOptions{
		Timeout: 5 * time.Second,
		Auth:    AuthConfig{Method: AuthAppRole, RoleID: roleID, SecretIDFile: writeFile(t, "secret_id", secretID)},
		Logger:  logs.logger(),
	})
	tokens := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for n := 0; time.Now().Before(deadline); n++ {
		tokens[v.client.Token()] = true
		r := req()
		r.PTY = n%2 == 0
		if _, err := v.Sign(context.Background(), r); err != nil {
			t.Fatalf("sign %d at %v: %v\nlog:\n%s", n, time.Until(deadline), err, logs.String())
		}
		time.Sleep(500 * time.Millisecond)
	}
	// A token lives at most 10s, so 20s of signing needs at least two.
	if logins := v.gen.Load(); logins < 2 {
		t.Errorf("%d logins in 20s with a 10s max TTL, want at least 2", logins)
	}
	text := logs.String()
	// The LifetimeWatcher renews as soon as it starts, so each login is
	// followed by at least one renewal.
	for _, want := range []string{"vault: logged in", "vault: token renewed"} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %q:\n%s", want, text)
		}
	}
	tokens[v.client.Token()] = true
	for tok := range tokens {
		if strings.Contains(text, tok) {
			t.Fatalf("log reveals a token")
		}
	}
	if strings.Contains(text, secretID) || strings.Contains(text, roleID) {
		t.Fatalf("log reveals the AppRole credentials")
	}
}

func TestCloseStopsRenewal(t *testing.T) {
	t.Parallel()
	e := newVaultEnv(t)
	roleID, secretID := e.appRole(t, "warden", "5s", "1h")
	ctx, cancel := context.WithCancel(context.Background())
	v, err := OpenVault(ctx, VaultOptions{Address: e.srv.Addr,
		Auth: AuthConfig{Method: AuthAppRole, RoleID: roleID, SecretIDFile: writeFile(t, "secret_id", secretID)}})
	if err != nil {
		t.Fatal(err)
	}
	cancel()  // the goroutine ends with ctx ...
	v.Close() // ... and Close waits for it, also when called twice
	v.Close()
}
