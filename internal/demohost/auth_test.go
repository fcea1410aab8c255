package demohost

import (
	"context"
	gliderssh "github.com/gliderlabs/ssh"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/sshtest"
	"golang.org/x/crypto/ssh"
)

func TestCheckAcceptsOnlyValidCertificatesFromTheCA(t *testing.T) {
	now := time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)
	ca, other := sshtest.NewCA(t), sshtest.NewCA(t)
	ca.Now = func() time.Time { return now }
	other.Now = ca.Now
	key := sshtest.NewCA(t).PublicKey // any ed25519 public key

	withOption := func(name, value string) *ssh.Certificate {
		c := ca.UserCert(t, key, "opt", "root")
		c.CriticalOptions = map[string]string{name: value}
		resign(t, ca, c)
		return c
	}
	tampered := ca.UserCert(t, key, "tampered", "alice")
	tampered.ValidPrincipals = []string{"root"}

	tests := []struct {
		name string
		key  ssh.PublicKey
		at   time.Time
		ok   bool
	}{
		{"certificate for the login", ca.UserCert(t, key, "a", "root"), now, true},
		{"login among several principals", ca.UserCert(t, key, "b", "deploy", "root"), now, true},
		{"source-address is left to x/crypto to enforce", withOption("source-address", "127.0.0.1/32"), now, true},
		{"plain key", key, now, false},
		{"certificate from another CA", other.UserCert(t, key, "c", "root"), now, false},
		{"login not a principal", ca.UserCert(t, key, "d", "alice"), now, false},
		{"expired", ca.UserCert(t, key, "e", "root"), now.Add(2 * time.Hour), false},
		{"not yet valid", ca.UserCert(t, key, "f", "root"), now.Add(-time.Hour), false},
		{"host certificate", ca.HostCert(t, key, "root"), now, false},
		{"force-command cannot be honoured", withOption("force-command", "true"), now, false},
		{"principals changed after signing", tampered, now, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := tt.at
			a := &certAuth{ca: ca.PublicKey, now: func() time.Time { return at }}
			cert, err := a.check("root", tt.key)
			if tt.ok && (err != nil || cert == nil) {
				t.Fatalf("refused: %v", err)
			}
			if !tt.ok && err == nil {
				t.Fatalf("accepted")
			}
		})
	}
}

func TestSSHWithCertificateFromAnotherCAIsRefused(t *testing.T) {
	d := startDemo(t, Options{}, "root")
	d.c.SetCertificate(sshtest.NewCA(t).UserCert(t, d.c.PublicKey, "test:9:mallory", "root"))
	_, stderr, code := d.run(t, "root", "echo in")
	if code != 255 || !strings.Contains(stderr, "Permission denied") {
		t.Fatalf("exit %d, stderr %q; want 255 and Permission denied", code, stderr)
	}
	d.waitLog(t, "certificate refused")
	d.waitLog(t, "key_id=test:9:mallory")
}

func TestSSHOutsideSourceAddressIsRefused(t *testing.T) {
	d := startDemo(t, Options{}, "root")
	cert := d.ca.UserCert(t, d.c.PublicKey, "restricted", "root")
	cert.CriticalOptions = map[string]string{"source-address": "192.0.2.1/32"}
	resign(t, d.ca, cert)
	d.c.SetCertificate(cert)
	if _, stderr, code := d.run(t, "root", "echo in"); code != 255 || !strings.Contains(stderr, "Permission denied") {
		t.Fatalf("exit %d, stderr %q; want refusal", code, stderr)
	}
	cert.CriticalOptions["source-address"] = "127.0.0.1/32"
	resign(t, d.ca, cert)
	d.c.SetCertificate(cert)
	if stdout, stderr, code := d.run(t, "root", "echo in"); code != 0 || stdout != "in\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q; want login", code, stdout, stderr)
	}
}

// TestCopiedCertificateIsNeverAccepted has the real ssh client offer a
// copied certificate whose private key it lacks (OpenSSH asks the host
// whether it would take it, then cannot sign) before its own: only the
// certificate that signed may be logged as accepted and name the session.
func TestCopiedCertificateIsNeverAccepted(t *testing.T) {
	logs := &syncBuffer{}
	d := startDemo(t, Options{Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))}, "root")
	d.logs = logs
	d.c.SetCertificate(d.ca.UserCert(t, d.c.PublicKey, "test:2:mallory", "root"))

	victimKey := sshtest.NewCA(t).PublicKey // its private key stays unknown
	victim := filepath.Join(t.TempDir(), "victim")
	writeTestFile(t, victim, ssh.MarshalAuthorizedKey(victimKey)) // not a private key: ssh cannot sign
	writeTestFile(t, victim+".pub", ssh.MarshalAuthorizedKey(victimKey))
	writeTestFile(t, victim+"-cert.pub", ssh.MarshalAuthorizedKey(d.ca.UserCert(t, victimKey, "test:1:victim", "root")))

	args := append([]string{"-i", victim}, d.c.Args(d.port)...)
	args = append(args, "--", sshtest.Dest("root"), "echo in")
	if out, err := sshCommand(t, args...).CombinedOutput(); err != nil || !strings.HasSuffix(string(out), "in\n") {
		t.Fatalf("login with own certificate failed: %v: %s", err, out)
	}
	d.waitLog(t, "kind=exec login=root")
	logs.mu.Lock()
	text := logs.buf.String()
	logs.mu.Unlock()
	if !strings.Contains(text, `msg="demohost: certificate offered" login=root key_id=test:1:victim`) {
		t.Fatalf("the client never offered the copied certificate, so this test proves nothing:\n%s", text)
	}
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, "key_id=test:1:victim") && !strings.Contains(line, "certificate offered") {
			t.Errorf("copied certificate named outside an offer: %s", line)
		}
	}
	for _, want := range []string{
		`msg="demohost: certificate accepted" login=root remote=127.0.0.1:`,
		`key_id=test:2:mallory`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("log lacks %q:\n%s", want, text)
		}
	}
}

func writeTestFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestStartRequiresUserCA(t *testing.T) {
	_, err := Start(context.Background(), Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != ErrNoUserCA {
		t.Fatalf("Start without a CA: %v, want ErrNoUserCA", err)
	}
}

// TestVerifiedNamesTheKeyThatSigned replays, against the handlers, the
// order a hostile client can choose: offer its own certificate, offer a
// copied one, then sign with its own. x/crypto/ssh asks the handler only
// once per key, so the copied certificate is the last one the handler saw.
func TestVerifiedNamesTheKeyThatSigned(t *testing.T) {
	ca := sshtest.NewCA(t)
	own := ca.UserCert(t, sshtest.NewCA(t).PublicKey, "test:2:mallory", "root")
	copied := ca.UserCert(t, sshtest.NewCA(t).PublicKey, "test:1:victim", "root")
	copied.CriticalOptions = map[string]string{"source-address": "127.0.0.1/32"}
	resign(t, ca, copied)
	logs := &syncBuffer{}
	a := &certAuth{ca: ca.PublicKey, now: time.Now, log: slog.New(slog.NewTextHandler(logs, nil))}
	ctx := newConnContext(t, "root")

	if !a.publicKey(ctx, own) || !a.publicKey(ctx, copied) {
		t.Fatal("valid certificates refused")
	}
	perms, err := a.serverConfig(ctx).VerifiedPublicKeyCallback(connMeta{ctx}, own, ctx.Permissions().Permissions, ssh.KeyAlgoED25519)
	if err != nil {
		t.Fatal(err)
	}
	if got := sessionCert(ctx); got == nil || got.KeyId != own.KeyId {
		t.Fatalf("session certificate = %v, want %q", got, own.KeyId)
	}
	if _, ok := perms.CriticalOptions["source-address"]; ok {
		t.Errorf("connection carries the copied certificate's critical options: %v", perms.CriticalOptions)
	}
	if _, ok := perms.Extensions["permit-pty"]; !ok {
		t.Errorf("connection lacks the signing certificate's extensions: %v", perms.Extensions)
	}
	if l := logs.String(); !strings.Contains(l, "key_id=test:2:mallory") || strings.Contains(l, "test:1:victim") {
		t.Errorf("accepted log names the wrong certificate:\n%s", l)
	}
}

// connContext is a gliderlabs Context for calling the auth handlers
// directly, as gliderlabs does during a handshake.
type connContext struct {
	context.Context
	sync.Mutex
	user   string
	perms  *gliderssh.Permissions
	values map[any]any
}

func newConnContext(t *testing.T, user string) *connContext {
	return &connContext{
		Context: t.Context(),
		user:    user,
		perms:   &gliderssh.Permissions{Permissions: &ssh.Permissions{}},
		values:  map[any]any{},
	}
}

func (c *connContext) User() string                        { return c.user }
func (c *connContext) SessionID() string                   { return "test" }
func (c *connContext) ClientVersion() string               { return "SSH-2.0-test" }
func (c *connContext) ServerVersion() string               { return "SSH-2.0-test" }
func (c *connContext) RemoteAddr() net.Addr                { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *connContext) LocalAddr() net.Addr                 { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }
func (c *connContext) Permissions() *gliderssh.Permissions { return c.perms }
func (c *connContext) SetValue(key, value any)             { c.values[key] = value }
func (c *connContext) Value(key any) any {
	if v, ok := c.values[key]; ok {
		return v
	}
	return c.Context.Value(key)
}

// connMeta presents a connContext as x/crypto's ConnMetadata.
type connMeta struct{ c *connContext }

func (m connMeta) User() string          { return m.c.User() }
func (m connMeta) SessionID() []byte     { return []byte(m.c.SessionID()) }
func (m connMeta) ClientVersion() []byte { return []byte(m.c.ClientVersion()) }
func (m connMeta) ServerVersion() []byte { return []byte(m.c.ServerVersion()) }
func (m connMeta) RemoteAddr() net.Addr  { return m.c.RemoteAddr() }
func (m connMeta) LocalAddr() net.Addr   { return m.c.LocalAddr() }
