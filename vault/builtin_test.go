package vault

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

func TestBuiltinSignCertificateFields(t *testing.T) {
	for _, tc := range []struct {
		name string
		pty  bool
	}{
		{"exec session has no extensions", false},
		{"pty session has only permit-pty", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := OpenBuiltin(t.TempDir(), BuiltinOptions{Now: fixedClock(testTime), Rand: seeded(1)})
			if err != nil {
				t.Fatal(err)
			}
			r := req()
			r.PTY = tc.pty
			r.TTL = 90 * time.Second
			cred, err := b.Sign(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			cert := cred.Cert
			checkUserCert(t, cert, r)
			if got, want := cert.ValidAfter, uint64(testTime.Add(-30*time.Second).Unix()); got != want {
				t.Errorf("valid after = %d, want now-30s = %d", got, want)
			}
			if got, want := cert.ValidBefore, uint64(testTime.Add(90*time.Second).Unix()); got != want {
				t.Errorf("valid before = %d, want now+ttl = %d", got, want)
			}
			if cred.Serial != cert.Serial || cred.KeyID != cert.KeyId {
				t.Errorf("credential serial/key id = %d/%q, cert has %d/%q", cred.Serial, cred.KeyID, cert.Serial, cert.KeyId)
			}
			ca, _ := b.CAPublicKey(context.Background())
			checker := ssh.CertChecker{
				Clock:           fixedClock(testTime),
				IsUserAuthority: func(k ssh.PublicKey) bool { return bytes.Equal(k.Marshal(), ca.Marshal()) },
			}
			if err := checker.CheckCert(r.Login, cert); err != nil {
				t.Errorf("CA-signed certificate does not check: %v", err)
			}
			if !checker.IsUserAuthority(cert.SignatureKey) {
				t.Errorf("certificate signed by %s, not by the CA", ssh.FingerprintSHA256(cert.SignatureKey))
			}
			if !bytes.Equal(cred.Signer.PublicKey().Marshal(), cert.Marshal()) {
				t.Errorf("credential signer does not present its certificate")
			}
		})
	}
}

func TestBuiltinSignGivesNewKeyAndSerialEachTime(t *testing.T) {
	b, err := OpenBuiltin(t.TempDir(), BuiltinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keys, serials := map[string]bool{}, map[uint64]bool{}
	for range 5 {
		cred, err := b.Sign(context.Background(), req())
		if err != nil {
			t.Fatal(err)
		}
		k := string(cred.Cert.Key.Marshal())
		if keys[k] || serials[cred.Serial] {
			t.Fatalf("key or serial %d reused", cred.Serial)
		}
		keys[k], serials[cred.Serial] = true, true
	}
}

func TestBuiltinSignRejectsInvalidRequest(t *testing.T) {
	b, err := OpenBuiltin(t.TempDir(), BuiltinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mod  func(*SignRequest)
	}{
		{"empty session id", func(r *SignRequest) { r.SessionID = "" }},
		{"session id with colon splits the key id", func(r *SignRequest) { r.SessionID = "a:b" }},
		{"session id with slash", func(r *SignRequest) { r.SessionID = "../x" }},
		{"empty user", func(r *SignRequest) { r.User = "" }},
		{"user with colon", func(r *SignRequest) { r.User = "al:ice" }},
		{"login with comma adds a principal", func(r *SignRequest) { r.Login = "root,admin" }},
		{"login with space", func(r *SignRequest) { r.Login = "root admin" }},
		{"login starting with dash", func(r *SignRequest) { r.Login = "-oProxyCommand" }},
		{"login with newline", func(r *SignRequest) { r.Login = "root\n" }},
		{"overlong login", func(r *SignRequest) { r.Login = strings.Repeat("a", 65) }},
		{"zero ttl", func(r *SignRequest) { r.TTL = 0 }},
		{"sub-second ttl", func(r *SignRequest) { r.TTL = 500 * time.Millisecond }},
		{"negative ttl", func(r *SignRequest) { r.TTL = -time.Minute }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := req()
			tc.mod(&r)
			cred, err := b.Sign(context.Background(), r)
			if !errors.Is(err, ErrInvalidRequest) || cred != nil {
				t.Fatalf("Sign = %v, %v; want ErrInvalidRequest", cred, err)
			}
		})
	}
}

// TestSSHKeygenShowsKeyID checks the certificate with OpenSSH's own parser:
// the key ID is what sshd logs, so it must survive exactly.
func TestSSHKeygenShowsKeyID(t *testing.T) {
	keygen, err := exec.LookPath("ssh-keygen")
	if err != nil {
		t.Fatalf("ssh-keygen is required: %v", err)
	}
	b, err := OpenBuiltin(t.TempDir(), BuiltinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	r := req()
	r.PTY = true
	cred, err := b.Sign(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "id-cert.pub")
	if err := os.WriteFile(path, ssh.MarshalAuthorizedKey(cred.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(keygen, "-L", "-f", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ssh-keygen -L: %v\n%s", err, out)
	}
	text := string(out)
	for _, want := range []string{
		"Type: ssh-ed25519-cert-v01@openssh.com user certificate",
		`Key ID: "warden:` + r.SessionID + `:alice"`,
		"Principals: \n                root\n",
		"Critical Options: (none)",
		"Extensions: \n                permit-pty\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("ssh-keygen -L output lacks %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, "forwarding") {
		t.Errorf("certificate grants forwarding:\n%s", text)
	}
}

// TestBuiltinCredentialAuthenticates logs in to an in-process SSH server
// that trusts only the CA, over a real loopback socket.
func TestBuiltinCredentialAuthenticates(t *testing.T) {
	b, err := OpenBuiltin(t.TempDir(), BuiltinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := b.CAPublicKey(context.Background())
	cred, err := b.Sign(context.Background(), req())
	if err != nil {
		t.Fatal(err)
	}
	checker := &ssh.CertChecker{IsUserAuthority: func(k ssh.PublicKey) bool { return bytes.Equal(k.Marshal(), ca.Marshal()) }}
	hostKey, err := newSessionKey(seeded(9))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &ssh.ServerConfig{PublicKeyCallback: checker.Authenticate}
	cfg.AddHostKey(hostKey)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var wg sync.WaitGroup
	var serverErr error
	var perms *ssh.Permissions
	wg.Add(1)
	go func() {
		defer wg.Done()
		c, err := ln.Accept()
		if err != nil {
			serverErr = err
			return
		}
		defer c.Close()
		conn, _, _, err := ssh.NewServerConn(c, cfg)
		if err != nil {
			serverErr = err
			return
		}
		perms = conn.Permissions
		conn.Close()
	}()
	client, err := ssh.Dial("tcp", ln.Addr().String(), &ssh.ClientConfig{
		User:            "root",
		Auth:            []ssh.AuthMethod{ssh.PublicKeys(cred.Signer)},
		HostKeyCallback: ssh.FixedHostKey(hostKey.PublicKey()),
	})
	if err == nil {
		client.Close()
	}
	wg.Wait()
	if err != nil || serverErr != nil {
		t.Fatalf("login with the certificate: client %v, server %v", err, serverErr)
	}
	if perms == nil || len(perms.Extensions) != 0 {
		t.Errorf("server saw extensions %v, want none", perms)
	}
}
