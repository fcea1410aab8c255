package sshtest

import (
	"strings"
	"testing"
)

func TestRenderHasEveryRequiredDirective(t *testing.T) {
	got := sshdConfig{
		Port:          "2201",
		HostKeyPath:   "/tmp/x/host_key",
		TrustedCAPath: "/tmp/x/ca.pub",
	}.render()
	for _, want := range []string{
		"Port 2201",
		"ListenAddress 127.0.0.1",
		"HostKey /tmp/x/host_key",
		"AuthorizedKeysFile none",
		"PasswordAuthentication no",
		"KbdInteractiveAuthentication no",
		"TrustedUserCAKeys /tmp/x/ca.pub",
		"PermitRootLogin yes",
		"AllowTcpForwarding yes",
		"X11Forwarding no",
		"LogLevel VERBOSE",
		"PidFile none",
		"UsePAM no",
		"StrictModes no",
		"AcceptEnv LANG LC_* WARDEN_TEST_*",
		"Subsystem sftp internal-sftp",
	} {
		if !containsLine(got, want) {
			t.Errorf("config lacks line %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "HostCertificate") {
		t.Errorf("config names a host certificate that was not asked for:\n%s", got)
	}
}

func TestRenderHostCertificateOnlyWhenGiven(t *testing.T) {
	got := sshdConfig{Port: "1", HostKeyPath: "k", HostCertPath: "k-cert.pub", TrustedCAPath: "ca"}.render()
	if !containsLine(got, "HostCertificate k-cert.pub") {
		t.Errorf("config lacks the host certificate:\n%s", got)
	}
}

func TestRenderAppendsExtraConfigLast(t *testing.T) {
	extra := "Match all\n    AllowTcpForwarding no"
	got := sshdConfig{Port: "1", HostKeyPath: "k", TrustedCAPath: "ca", Extra: "\n" + extra + "\n"}.render()
	if !strings.HasSuffix(got, extra+"\n") {
		t.Errorf("extra config is not the last thing in the file:\n%s", got)
	}
}

func containsLine(text, want string) bool {
	for _, l := range strings.Split(text, "\n") {
		if l == want {
			return true
		}
	}
	return false
}
