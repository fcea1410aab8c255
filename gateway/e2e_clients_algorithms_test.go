package gateway_test

import (
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/gateway"
)

// handshake connects to the gateway with x/crypto's client offering only
// cfg's algorithms, and authenticates as alice on the command interface.
func (b *testbed) handshake(cfg gossh.Config) error {
	b.t.Helper()
	key, err := os.ReadFile(b.alice.KeyPath)
	if err != nil {
		b.t.Fatal(err)
	}
	signer, err := gossh.ParsePrivateKey(key)
	if err != nil {
		b.t.Fatal(err)
	}
	nc, err := net.DialTimeout("tcp", "127.0.0.1:"+b.port, 10*time.Second)
	if err != nil {
		b.t.Fatal(err)
	}
	defer nc.Close()
	cc, _, _, err := gossh.NewClientConn(nc, nc.RemoteAddr().String(), &gossh.ClientConfig{
		Config: cfg, User: "alice", Auth: []gossh.AuthMethod{gossh.PublicKeys(signer)},
		HostKeyCallback: gossh.FixedHostKey(b.hostKey), Timeout: 10 * time.Second,
	})
	if err == nil {
		cc.Close()
	}
	return err
}

// TestEveryDefaultAlgorithmNegotiates offers the gateway one algorithm at a
// time, for each it offers by default: each one completes a handshake.
func TestEveryDefaultAlgorithmNegotiates(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	d := gateway.DefaultAlgorithms()
	sup := gossh.SupportedAlgorithms()
	for _, c := range d.Ciphers {
		if !slices.Contains(sup.Ciphers, c) {
			t.Errorf("default cipher %s is not one x/crypto supports", c)
		}
		if err := b.handshake(gossh.Config{Ciphers: []string{c}}); err != nil {
			t.Errorf("cipher %s: %v", c, err)
		}
	}
	for _, k := range append(d.KeyExchanges, "curve25519-sha256@libssh.org") {
		if err := b.handshake(gossh.Config{KeyExchanges: []string{k}}); err != nil {
			t.Errorf("kex %s: %v", k, err)
		}
	}
	for _, m := range d.MACs {
		if err := b.handshake(gossh.Config{Ciphers: []string{gossh.CipherAES128CTR}, MACs: []string{m}}); err != nil {
			t.Errorf("mac %s: %v", m, err)
		}
	}
	// SHA-1 is not offered: not as a MAC, not as a key exchange.
	if err := b.handshake(gossh.Config{Ciphers: []string{gossh.CipherAES128CTR}, MACs: []string{gossh.HMACSHA1}}); err == nil {
		t.Error("hmac-sha1 negotiated")
	}
	if err := b.handshake(gossh.Config{KeyExchanges: []string{gossh.InsecureKeyExchangeDH14SHA1}}); err == nil {
		t.Error("diffie-hellman-group14-sha1 negotiated")
	}
}

// TestOpenSSHWithEachCipherFamily runs a real session with OpenSSH's
// default (chacha20-poly1305), AES-GCM, and AES-CTR with an
// encrypt-then-MAC, each through to the host.
func TestOpenSSHWithEachCipherFamily(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	for _, opts := range [][]string{
		nil,
		{"-c", "aes256-gcm@openssh.com"},
		{"-c", "aes128-ctr", "-o", "MACs=hmac-sha2-256-etm@openssh.com"},
	} {
		out, err := b.sshWith(testCtx(t), b.alice, opts, "root@web01", "echo cipher-ok").CombinedOutput()
		if err != nil || string(out) != "cipher-ok\n" {
			t.Errorf("ssh %v: %v: %q", opts, err, out)
		}
	}
}

// TestSSHAlgorithmsRestrictWhatIsOffered: with ssh_algorithms naming only
// aes256-ctr and one MAC, OpenSSH asking for chacha20 or another MAC is
// refused in the handshake, and asking for what is listed works.
func TestSSHAlgorithmsRestrictWhatIsOffered(t *testing.T) {
	b := newTestbed(t, bedOptions{recording: "recording:\n  input: true\n  on_failure: terminate\n" +
		"ssh_algorithms:\n  ciphers: [aes256-ctr]\n  macs: [hmac-sha2-512-etm@openssh.com]\n"})
	for _, tc := range []struct {
		opts []string
		want string // in stderr; "" means the session works
	}{
		{[]string{"-c", "chacha20-poly1305@openssh.com"}, "no matching cipher found"},
		{[]string{"-c", "aes256-gcm@openssh.com"}, "no matching cipher found"},
		{[]string{"-c", "aes256-ctr", "-o", "MACs=hmac-sha2-256"}, "no matching MAC found"},
		{[]string{"-c", "aes256-ctr"}, ""},
	} {
		// LogLevel INFO: ssh reports a failed negotiation no lower.
		cmd := b.sshWith(testCtx(t), b.alice, append(tc.opts, "-o", "LogLevel=INFO"), "root@web01", "echo restricted-ok")
		var out, errb strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &errb
		err := cmd.Run()
		if tc.want == "" {
			if err != nil || out.String() != "restricted-ok\n" {
				t.Errorf("ssh %v: %v: %q %q", tc.opts, err, out.String(), errb.String())
			}
			continue
		}
		if err == nil || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("ssh %v: err %v stderr %q, want %q", tc.opts, err, errb.String(), tc.want)
		}
	}
	// Only the allowed session reached the host.
	if list := b.sessionsOf("alice"); len(list) != 1 {
		t.Fatalf("sessions %+v", list)
	}
}
