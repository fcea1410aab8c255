package sshtest

import (
	"bytes"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestHostAcceptsCertificateFromTrustedCA drives the real ssh client by hand,
// without Client's helpers, so it checks the host on its own.
func TestHostAcceptsCertificateFromTrustedCA(t *testing.T) {
	ca := NewCA(t)
	h := StartHost(t, HostOptions{TrustedUserCAKeys: []ssh.PublicKey{ca.PublicKey}})
	c := NewClient(t, "")
	c.TrustHost(h.Addr, h.HostKey)
	certPath := c.SetCertificate(ca.UserCert(t, c.PublicKey, "test:1:alice", "root"))

	cmd := exec.CommandContext(testContext(t), c.ssh,
		"-F", "/dev/null",
		"-i", c.KeyPath,
		"-o", "CertificateFile="+certPath,
		"-o", "IdentitiesOnly=yes",
		"-o", "UserKnownHostsFile="+c.KnownHostsPath,
		"-o", "StrictHostKeyChecking=yes",
		"-o", "BatchMode=yes",
		"-p", h.Port,
		"root@127.0.0.1", "echo", "hi")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("ssh: %v; stderr: %s", err, stderr.String())
	}
	if string(out) != "hi\n" {
		t.Errorf("output = %q, want %q", out, "hi\n")
	}
	h.WaitLog(t, `ID "test:1:alice"`, long)
}

func TestHostRefusesWhatItDoesNotTrust(t *testing.T) {
	ca, other := NewCA(t), NewCA(t)
	h := StartHost(t, HostOptions{TrustedUserCAKeys: []ssh.PublicKey{ca.PublicKey}})
	tests := []struct {
		name string
		sign func(c *Client) // nil: offer the plain key
		ok   bool
	}{
		{"certificate from the trusted CA", func(c *Client) { c.SetCertificate(ca.UserCert(t, c.PublicKey, "ok", "root")) }, true},
		{"certificate from another CA", func(c *Client) { c.SetCertificate(other.UserCert(t, c.PublicKey, "other", "root")) }, false},
		{"certificate for another principal", func(c *Client) { c.SetCertificate(ca.UserCert(t, c.PublicKey, "alice", "alice")) }, false},
		{"plain key", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := NewClient(t, "")
			c.TrustHost(h.Addr, h.HostKey)
			if tt.sign != nil {
				tt.sign(c)
			}
			out, err := c.SSH(testContext(t), h.Port, "root", "echo", "in").CombinedOutput()
			if tt.ok && (err != nil || string(out) != "in\n") {
				t.Fatalf("login refused: %v: %s", err, out)
			}
			if !tt.ok && (err == nil || !strings.Contains(string(out), "Permission denied")) {
				t.Fatalf("login not refused with Permission denied: err=%v out=%q", err, out)
			}
		})
	}
}

func TestHostCertificateTrustedThroughHostCA(t *testing.T) {
	userCA, hostCA := NewCA(t), NewCA(t)
	h := StartHost(t, HostOptions{TrustedUserCAKeys: []ssh.PublicKey{userCA.PublicKey}, HostCA: hostCA.Signer})
	c := NewClient(t, "")
	c.SetCertificate(userCA.UserCert(t, c.PublicKey, "hostca", "root"))

	out, err := c.SSH(testContext(t), h.Port, "root", "true").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "Host key verification failed") {
		t.Fatalf("unknown host accepted: err=%v out=%q", err, out)
	}
	c.TrustHostCA(hostCA.PublicKey)
	if out, err := c.SSH(testContext(t), h.Port, "root", "true").CombinedOutput(); err != nil {
		t.Fatalf("host certificate not trusted: %v: %s", err, out)
	}
}

func TestHostExtraConfigMatchAllOverrides(t *testing.T) {
	ca := NewCA(t)
	h := StartHost(t, HostOptions{
		TrustedUserCAKeys: []ssh.PublicKey{ca.PublicKey},
		ExtraConfig:       "Match all\n    ForceCommand echo forced",
	})
	c := NewClient(t, "")
	c.TrustHost(h.Addr, h.HostKey)
	c.SetCertificate(ca.UserCert(t, c.PublicKey, "extra", "root"))
	out, err := c.SSH(testContext(t), h.Port, "root", "echo", "mine").CombinedOutput()
	if err != nil || string(out) != "forced\n" {
		t.Fatalf("ExtraConfig not applied: err=%v out=%q", err, out)
	}
}

// TestDestSplitsAtLastAt proves against the real client and server that a
// user name holding '@' reaches the server whole.
func TestDestSplitsAtLastAt(t *testing.T) {
	if got, want := Dest("root@web01"), "root@web01@127.0.0.1"; got != want {
		t.Fatalf("Dest = %q, want %q", got, want)
	}
	ca := NewCA(t)
	h := StartHost(t, HostOptions{TrustedUserCAKeys: []ssh.PublicKey{ca.PublicKey}})
	c := NewClient(t, "")
	c.TrustHost(h.Addr, h.HostKey)
	_ = c.SSH(testContext(t), h.Port, "root@web01", "true").Run() // refused: no such user
	h.WaitLog(t, "Invalid user root@web01 from 127.0.0.1", long)
}

func TestWaitLogFailsWithTheLog(t *testing.T) {
	h := StartHost(t, HostOptions{})
	msg := failureOf(t, func(tb testing.TB) { h.WaitLog(tb, "no such line", 0) })
	if !strings.Contains(msg, "no such line") || !strings.Contains(msg, "Server listening on 127.0.0.1 port "+h.Port) {
		t.Fatalf("failure message lacks the pattern or the log: %q", msg)
	}
}
