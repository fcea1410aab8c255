package gateway_test

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/internal/sshtest"
)

func TestNoRoleIsRefusedWithOneLine(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	// bob is eligible for prod-root but holds no grant and no standing role.
	out, errOut, code := b.run(b.bob, "root@web01", "id")
	if code != 1 || out != "" {
		t.Fatalf("code %d out %q", code, out)
	}
	want := "warden: no active grant for role prod-root on web01; run: ssh -p " + b.port + " gw request prod-root --for 1h --reason ...\n"
	if errOut != want {
		t.Fatalf("stderr %q\nwant   %q", errOut, want)
	}
	b.waitEvent("session.refused", "no active grant")

	// A login no role names is refused for alice too.
	_, errOut, code = b.run(b.alice, "postgres@web01", "id")
	if code != 1 || errOut != "warden: alice may not log in as postgres on web01: no role grants it\n" {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
	b.waitEvent("session.refused", "postgres@web01")
}

func TestUnknownKeyFailsAuthentication(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	_, errOut, code := b.run(b.stranger, "root@web01", "id")
	if code != 255 || !strings.Contains(errOut, "Permission denied (publickey)") {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
	gateway.FlushPreAuth(b.gw) // failures are aggregated per source per minute
	b.waitEvent("auth.failed", "unknown public key")
}

func TestUnknownAndAmbiguousHosts(t *testing.T) {
	b := newTestbed(t, bedOptions{extraPolicy: `  - name: beta
    hosts:
      - name: web01
        address: "127.0.0.1:1"
        host_key: "` + "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl" + `"
        labels: {tier: web}
      - name: web02
        address: "127.0.0.1:1"
        host_key: "` + "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl" + `"`})
	_, errOut, code := b.run(b.alice, "root@nosuch", "id")
	if code != 1 || errOut != "warden: unknown host nosuch\n" {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
	_, errOut, code = b.run(b.alice, "root@nosuch/web01", "id")
	if code != 1 || errOut != "warden: unknown host nosuch/web01\n" {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
	// alice holds no role in beta: web01 is her acme/web01, and beta's
	// hosts are unknown to her (TestAttackHostNamesOfOtherTenantsStayHidden).
	out, errOut, code := b.run(b.alice, "root@web01", "echo shared-name")
	if code != 0 || out != "shared-name\n" {
		t.Fatalf("shared name: code %d out %q stderr %q", code, out, errOut)
	}
	_, errOut, code = b.run(b.alice, "root@beta/web02", "id")
	if code != 1 || errOut != "warden: unknown host beta/web02\n" {
		t.Fatalf("another tenant's host: code %d stderr %q", code, errOut)
	}
	out, _, code = b.run(b.alice, "root@acme/web01", "echo via-tenant")
	if code != 0 || out != "via-tenant\n" {
		t.Fatalf("TENANT/HOST: code %d out %q", code, out)
	}
}

func TestHostKeyMismatchIsRefused(t *testing.T) {
	b := newTestbed(t, bedOptions{pinKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl"})
	_, errOut, code := b.run(b.alice, "root@web01", "id")
	if code != 1 || errOut != "warden: host key verification failed for web01; session refused\n" {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
	b.waitEvent("host_key.mismatch", "web01")
	s := b.lastSession("alice")
	if s.EndReason != "host_key_mismatch" {
		t.Fatalf("end reason %q", s.EndReason)
	}
}

func TestHostDownNamesHostAndClosesRow(t *testing.T) {
	// A port nothing listens on: take one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	b := newTestbed(t, bedOptions{hostAddr: addr})
	_, errOut, code := b.run(b.alice, "root@web01", "id")
	if code != 1 || errOut != "warden: cannot reach host web01: connection refused\n" {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
	s := b.lastSession("alice")
	if s.EndReason != "host_unreachable" {
		t.Fatalf("end reason %q", s.EndReason)
	}
}

func TestForwardingIsRefusedAndLogged(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	ctx := testCtx(t)

	// Remote forwarding: the gateway refuses the global request.
	free := sshtest.FreePort(t)
	cmd := b.sshWith(ctx, b.alice, []string{"-o", "ExitOnForwardFailure=yes", "-R", free + ":127.0.0.1:22"}, "root@web01", "true")
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("remote forward accepted: %s", out)
	}
	t.Logf("ssh -R: %v: %s", err, out)
	b.waitEvent("forward.refused", "tcpip-forward")

	// Local forwarding: the direct-tcpip channel is rejected when used.
	lport := sshtest.FreePort(t)
	fwd := b.sshWith(ctx, b.alice, []string{"-N", "-L", lport + ":" + b.host.Addr}, "root@web01")
	if err := fwd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { fwd.Process.Kill(); fwd.Wait() }()
	deadline := time.Now().Add(expectWait)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+lport, time.Second)
		if err == nil {
			buf := make([]byte, 64)
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, _ := c.Read(buf)
			c.Close()
			if strings.HasPrefix(string(buf[:n]), "SSH-") {
				t.Fatal("local forward reached the host")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ssh -L never listened: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	b.waitEvent("forward.refused", "direct-tcpip")

	// Agent forwarding: refused, the command still runs. ssh only asks
	// for it when a real agent answers on SSH_AUTH_SOCK.
	sock := filepath.Join(b.dir, "agent.sock")
	agent := exec.CommandContext(ctx, "ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatalf("ssh-agent: %v", err)
	}
	defer func() { agent.Process.Kill(); agent.Wait() }()
	for deadline := time.Now().Add(expectWait); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			break
		} else if time.Now().After(deadline) {
			t.Fatal("ssh-agent socket never appeared")
		}
	}
	agentCmd := b.sshWith(ctx, b.alice, []string{"-A", "-o", "IdentityAgent=" + sock}, "root@web01", "echo ${SSH_AUTH_SOCK:-no-agent}")
	agentCmd.Env = append(agentCmd.Environ(), "SSH_AUTH_SOCK="+sock)
	out, err = agentCmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "no-agent" {
		t.Fatalf("agent: %v %q", err, out)
	}
	b.waitEvent("forward.refused", "auth-agent-req@openssh.com")
}

func TestCommandInterfaceWhoamiAndHosts(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	out, _, code := b.run(b.bob, "gw", "whoami")
	if code != 0 || !strings.Contains(out, "bob") || !strings.Contains(out, "helpdesk") || !strings.Contains(out, "prod-root") {
		t.Fatalf("whoami: %d %q", code, out)
	}
	out, _, code = b.run(b.bob, "gw", "hosts", "--json")
	if code != 0 || !strings.Contains(out, `"needs_grant": true`) || !strings.Contains(out, `"host": "web01"`) {
		t.Fatalf("hosts: %d %q", code, out)
	}
	_, errOut, code := b.run(b.bob, "gw", "frobnicate")
	if code != 2 || !strings.HasPrefix(errOut, "warden: unknown command \"frobnicate\"") {
		t.Fatalf("unknown: %d %q", code, errOut)
	}
	// Plain ssh to a name with no '@' and no command shows help.
	out, _, code = b.run(b.bob, "bob")
	if code != 0 || !strings.Contains(out, "whoami") {
		t.Fatalf("help: %d %q", code, out)
	}
}

func TestHostVerifiedByKnownHostsFile(t *testing.T) {
	b := newTestbed(t, bedOptions{verify: func(h *sshtest.Host) string {
		kh := filepath.Join(h.Dir, "warden_known_hosts")
		line := "[127.0.0.1]:" + h.Port + " " + authorizedKey(h.HostKey) + "\n"
		if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
			panic(err)
		}
		return "known_hosts: " + kh
	}})
	out, _, code := b.run(b.alice, "root@web01", "echo known")
	if code != 0 || out != "known\n" {
		t.Fatalf("code %d out %q", code, out)
	}
}

func TestHostVerifiedByHostCA(t *testing.T) {
	ca := sshtest.NewCA(t)
	b := newTestbed(t, bedOptions{hostCA: ca.Signer, verify: func(*sshtest.Host) string {
		return "host_ca: \"" + authorizedKey(ca.Signer.PublicKey()) + "\""
	}})
	out, _, code := b.run(b.alice, "root@web01", "echo certified")
	if code != 0 || out != "certified\n" {
		t.Fatalf("code %d out %q", code, out)
	}
	// A host CA that did not sign the host's certificate is refused.
	other := sshtest.NewCA(t)
	b2 := newTestbed(t, bedOptions{hostCA: ca.Signer, verify: func(*sshtest.Host) string {
		return "host_ca: \"" + authorizedKey(other.Signer.PublicKey()) + "\""
	}})
	_, errOut, code := b2.run(b2.alice, "root@web01", "true")
	if code != 1 || !strings.Contains(errOut, "host key verification failed for web01") {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
}
