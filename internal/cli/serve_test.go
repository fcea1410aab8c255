package cli

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/policy"
)

// TestServeWiresWorkflowAndWebhook runs the gateway as `warden serve`
// builds it and checks, through the real ssh client, that a request reaches
// the workflow and its alert reaches the webhook as Slack-compatible JSON.
func TestServeWiresWorkflowAndWebhook(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := json.NewDecoder(r.Body).Decode(&body); err == nil {
			mu.Lock()
			got = append(got, body)
			mu.Unlock()
		}
	}))
	defer hook.Close()

	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "bob"), 0o700)
	bob := sshtest.NewClient(t, filepath.Join(dir, "bob"))
	pub := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(bob.PublicKey)))
	cfgPath := filepath.Join(dir, "warden.yaml")
	os.WriteFile(cfgPath, []byte(`listen: "127.0.0.1:0"
data_dir: data
notify: {webhook_url: "`+hook.URL+`/hook"}
tenants:
  - name: acme
    hosts:
      - name: web01
        address: 127.0.0.1:22
        host_key: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"
        labels: {env: prod}
groups:
  - name: oncall
  - name: security
users:
  - name: bob
    keys: ["`+pub+`"]
    groups: [oncall]
roles:
  - name: prod-root
    tenant: acme
    hosts: {labels: {env: prod}}
    logins: [root]
    privileged: true
    eligible: [oncall]
    approvers: [security]
`), 0o600)
	cfg, err := policy.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r, err := openGateway(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.serve(ctx, ln) }()
	hostKey, err := os.ReadFile(cfg.HostKey)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(hostKey)
	if err != nil {
		t.Fatal(err)
	}
	bob.TrustHost(ln.Addr().String(), signer.PublicKey())
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	out, err := bob.SSH(ctx, port, "gw", "request", "prod-root", "--for", "1h", "--reason", "'INC-9 outage'").CombinedOutput()
	if err != nil || !strings.HasPrefix(string(out), "request 1 opened") {
		t.Fatalf("request: %v %q", err, out)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		var first map[string]any
		if n > 0 {
			first = got[0]
		}
		mu.Unlock()
		if n > 0 {
			text, _ := first["text"].(string)
			if first["type"] != "request.created" || !strings.Contains(text, "prod-root") || first["fields"] == nil {
				t.Fatalf("webhook body %v", first)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("webhook never received the request alert")
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve: %v", err)
	}
}
