package cli

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/jit"
	"github.com/warden-gw/warden/policy"
)

func TestRequestsAndGrantsListTheStore(t *testing.T) {
	data := t.TempDir()
	ctx := context.Background()
	cfg, err := policy.Parse([]byte(`tenants:
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
    groups: [oncall]
  - name: carol
    groups: [security]
roles:
  - name: prod-root
    tenant: acme
    hosts: {labels: {env: prod}}
    logins: [root]
    privileged: true
    eligible: [oncall]
    approvers: [security]
`), "w.yaml")
	if err != nil {
		t.Fatal(err)
	}
	st, err := audit.Open(ctx, data, audit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := jit.New(jit.Options{Store: st, Policy: func() *policy.Config { return cfg }})
	if err != nil {
		t.Fatal(err)
	}
	r, err := svc.Request(ctx, cfg.User("bob"), "prod-root", time.Hour, "INC-7", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Approve(ctx, cfg.User("carol"), r.ID, "ok"); err != nil {
		t.Fatal(err)
	}
	st.Close()

	out, errOut, code := run("requests", "--data", data, "--json")
	var reqs []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &reqs) != nil || len(reqs) != 1 || reqs[0]["state"] != "approved" || reqs[0]["user"] != "bob" {
		t.Fatalf("requests: %d %q %q", code, out, errOut)
	}
	out, _, code = run("grants", "--data", data, "--json")
	var grants []map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &grants) != nil || len(grants) != 1 || grants[0]["role"] != "prod-root" {
		t.Fatalf("grants: %d %q", code, out)
	}
	out, _, code = run("grants", "--data", data)
	if code != 0 || !strings.Contains(out, "active") || !strings.Contains(out, "prod-root") {
		t.Fatalf("grants table: %q", out)
	}
}
