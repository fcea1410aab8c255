package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/policy"
)

// warden serve with identity.directories: the SCIM handler it builds
// provisions a user whom the gateway and the workflow then know (whoami,
// request), and deactivating her stops her key. A missing token file
// stops the start.
func TestServeWiresDirectory(t *testing.T) {
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "dana"), 0o700)
	dana := sshtest.NewClient(t, filepath.Join(dir, "dana"))
	pub := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(dana.PublicKey)))
	tok := filepath.Join(dir, "entra.token")
	cfgPath := filepath.Join(dir, "warden.yaml")
	src := `listen: "127.0.0.1:0"
http_listen: "127.0.0.1:0"
data_dir: data
tenants:
  - name: acme
    hosts:
      - {name: web01, address: 127.0.0.1:22, host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl", labels: {env: prod}}
groups: [{name: oncall}, {name: security}]
users: [{name: carol, groups: [security]}]
roles:
  - {name: prod-root, tenant: acme, hosts: {labels: {env: prod}}, logins: [root], privileged: true, eligible: [oncall], approvers: [security]}
identity:
  directories: [{name: entra, token_file: ` + tok + `}]
`
	os.WriteFile(cfgPath, []byte(src), 0o600)
	cfg, err := policy.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if _, err := openGateway(ctx, cfg, log); err == nil || !strings.Contains(err.Error(), "entra.token") {
		t.Fatalf("missing token file: %v", err)
	}
	os.WriteFile(tok, []byte("serve-test-token-0123456789\n"), 0o600)
	r, err := openGateway(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if r.scim == nil {
		t.Fatal("no SCIM handler")
	}
	web := httptest.NewServer(r.scim)
	defer web.Close()
	var lastID string
	scimReq := func(method, path, body string) int {
		req, _ := http.NewRequest(method, web.URL+"/scim/v2"+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer serve-test-token-0123456789")
		resp, err := web.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		if json.NewDecoder(resp.Body).Decode(&m) == nil {
			lastID, _ = m["id"].(string)
		}
		return resp.StatusCode
	}
	body := fmt.Sprintf(`{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:warden:2.0:User"],"id":"x","userName":"dana@contoso.com","urn:ietf:params:scim:schemas:extension:warden:2.0:User":{"sshPublicKeys":[%q]}}`, pub)
	if code := scimReq("POST", "/Users", body); code != 201 {
		t.Fatalf("create: %d", code)
	}
	danaID := lastID

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.serve(ctx, ln) }()
	hostKey, _ := os.ReadFile(cfg.HostKey)
	signer, err := gossh.ParsePrivateKey(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	dana.TrustHost(ln.Addr().String(), signer.PublicKey())
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	out, err := dana.SSH(ctx, port, "gw", "whoami").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "scim:entra") {
		t.Fatalf("whoami: %v %q", err, out)
	}
	// Not in oncall: the workflow, asked through the merged policy, refuses.
	out, _ = dana.SSH(ctx, port, "gw", "request", "prod-root", "--for", "1h", "--reason", "x").CombinedOutput()
	if !strings.Contains(string(out), `no role "prod-root" that you may request`) {
		t.Fatalf("request: %q", out)
	}
	if code := scimReq("POST", "/Groups", `{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"oncall","members":[{"value":"`+danaID+`"}]}`); code != 201 {
		t.Fatalf("group: %d", code)
	}
	out, err = dana.SSH(ctx, port, "gw", "request", "prod-root", "--for", "1h", "--reason", "x").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "request 1 opened") {
		t.Fatalf("request as a member of oncall: %v %q", err, out)
	}
	if code := scimReq("PATCH", "/Users/"+danaID, `{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"Replace","path":"active","value":"False"}]}`); code != 200 {
		t.Fatalf("deactivate: %d", code)
	}
	if out, err := dana.SSH(ctx, port, "gw", "whoami").CombinedOutput(); err == nil {
		t.Fatalf("leaver's key still works: %q", out)
	}
	var state string
	if err := r.store.DB().QueryRow(`SELECT state FROM requests WHERE id = 1`).Scan(&state); err != nil || state != "cancelled" {
		t.Fatalf("leaver's request: %q %v", state, err)
	}
	cancel()
	<-done
}
