package hostkey

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/policy"
)

func newKey(t *testing.T) (gossh.Signer, gossh.PublicKey) {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s, s.PublicKey()
}

func TestHostKeyCallbackPinned(t *testing.T) {
	_, good := newKey(t)
	_, bad := newKey(t)
	cb, algos, err := Callback(&policy.Host{Name: "web01", HostKey: good})
	if err != nil {
		t.Fatal(err)
	}
	if len(algos) != 1 || algos[0] != gossh.KeyAlgoED25519 {
		t.Fatalf("algos %v", algos)
	}
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 22}
	if err := cb("127.0.0.1:22", addr, good); err != nil {
		t.Fatalf("pinned key refused: %v", err)
	}
	if err := cb("127.0.0.1:22", addr, bad); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong key: %v", err)
	}
}

func TestHostKeyCallbackHostCA(t *testing.T) {
	caSigner, caPub := newKey(t)
	otherCA, _ := newKey(t)
	_, hostPub := newKey(t)
	cert := func(signer gossh.Signer, principal string) *gossh.Certificate {
		c := &gossh.Certificate{
			Key: hostPub, CertType: gossh.HostCert, ValidPrincipals: []string{principal},
			ValidAfter: uint64(time.Now().Add(-time.Minute).Unix()), ValidBefore: uint64(time.Now().Add(time.Hour).Unix()),
		}
		if err := c.SignCert(rand.Reader, signer); err != nil {
			t.Fatal(err)
		}
		return c
	}
	cb, _, err := Callback(&policy.Host{Name: "web01", HostCA: caPub})
	if err != nil {
		t.Fatal(err)
	}
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2201}
	if err := cb("127.0.0.1:2201", addr, cert(caSigner, "127.0.0.1")); err != nil {
		t.Fatalf("CA-signed host refused: %v", err)
	}
	if err := cb("127.0.0.1:2201", addr, cert(otherCA, "127.0.0.1")); !errors.Is(err, ErrMismatch) {
		t.Fatalf("other CA accepted: %v", err)
	}
	if err := cb("127.0.0.1:2201", addr, cert(caSigner, "elsewhere")); !errors.Is(err, ErrMismatch) {
		t.Fatalf("wrong principal accepted: %v", err)
	}
	if err := cb("127.0.0.1:2201", addr, hostPub); !errors.Is(err, ErrMismatch) {
		t.Fatalf("plain key accepted with a host CA: %v", err)
	}
}

func TestHostKeyCallbackKnownHosts(t *testing.T) {
	_, good := newKey(t)
	_, bad := newKey(t)
	kh := filepath.Join(t.TempDir(), "known_hosts")
	line := "[127.0.0.1]:2201 " + string(gossh.MarshalAuthorizedKey(good))
	if err := os.WriteFile(kh, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	cb, _, err := Callback(&policy.Host{Name: "web01", KnownHosts: kh})
	if err != nil {
		t.Fatal(err)
	}
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2201}
	if err := cb("127.0.0.1:2201", addr, good); err != nil {
		t.Fatalf("known key refused: %v", err)
	}
	if err := cb("127.0.0.1:2201", addr, bad); !errors.Is(err, ErrMismatch) {
		t.Fatalf("unknown key: %v", err)
	}
	if _, _, err := Callback(&policy.Host{Name: "web01"}); err == nil {
		t.Fatal("host without a way to verify accepted")
	}
}
