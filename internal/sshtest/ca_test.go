package sshtest

import (
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestCACertificatesPassCertChecker(t *testing.T) {
	ca := NewCA(t)
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	ca.Now = func() time.Time { return now }
	key := NewCA(t).PublicKey
	checker := &ssh.CertChecker{
		Clock:           func() time.Time { return now },
		IsUserAuthority: func(k ssh.PublicKey) bool { return string(k.Marshal()) == string(ca.PublicKey.Marshal()) },
	}

	user := ca.UserCert(t, key, "test:1:alice", "root", "deploy")
	if err := checker.CheckCert("deploy", user); err != nil {
		t.Errorf("user certificate rejected: %v", err)
	}
	if user.CertType != ssh.UserCert || user.KeyId != "test:1:alice" {
		t.Errorf("type %d id %q", user.CertType, user.KeyId)
	}
	if _, ok := user.Extensions["permit-pty"]; !ok {
		t.Errorf("user certificate lacks permit-pty: %v", user.Extensions)
	}
	if err := checker.CheckCert("root", ca.HostCert(t, key, "127.0.0.1")); err == nil {
		t.Errorf("host certificate passed for a user principal")
	}

	checker.Clock = func() time.Time { return now.Add(2 * certLifetime) }
	if err := checker.CheckCert("root", user); err == nil {
		t.Errorf("certificate still valid after its lifetime")
	}
}

func TestCASerialsDiffer(t *testing.T) {
	ca := NewCA(t)
	a := ca.UserCert(t, ca.PublicKey, "a", "root")
	b := ca.UserCert(t, ca.PublicKey, "b", "root")
	if a.Serial == b.Serial {
		t.Fatalf("two certificates share serial %d", a.Serial)
	}
}
