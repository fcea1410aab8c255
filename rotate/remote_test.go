package rotate

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/hostkey"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/policy"
)

func newSigner(t *testing.T) gossh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := gossh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hostAuthorizing starts a real sshd that lets root in with signer only.
func hostAuthorizing(t *testing.T, signer gossh.Signer) *policy.Host {
	t.Helper()
	keys := filepath.Join(t.TempDir(), "root_keys")
	writeFile(t, keys, string(gossh.MarshalAuthorizedKey(signer.PublicKey())))
	h := sshtest.StartHost(t, sshtest.HostOptions{ExtraConfig: "Match all\n    AuthorizedKeysFile " + keys})
	return &policy.Host{Name: "web01", Tenant: "acme", Address: h.Addr, HostKey: h.HostKey}
}

func TestRun(t *testing.T) {
	signer := newSigner(t)
	host := hostAuthorizing(t, signer)
	ctx := context.Background()
	c, err := dial(ctx, host, "root", signer, 30*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	t.Run("returns stdout", func(t *testing.T) {
		out, err := run(ctx, c, "printf 'hi\\n'; printf noise >&2")
		if err != nil || string(out) != "hi\n" {
			t.Fatalf("run = %q, %v", out, err)
		}
	})
	t.Run("a failure carries the first stderr line", func(t *testing.T) {
		_, err := run(ctx, c, readScript("/nonexistent/keys"))
		if err == nil || !strings.Contains(err.Error(), "No such file") {
			t.Fatalf("err = %v, want the host's No such file", err)
		}
	})
	t.Run("output beyond the limit fails", func(t *testing.T) {
		if _, err := run(ctx, c, "head -c 2000000 /dev/zero"); err == nil {
			t.Fatal("2 MB of output accepted")
		}
	})
}

func TestDial(t *testing.T) {
	signer := newSigner(t)
	host := hostAuthorizing(t, signer)
	down := *host
	down.Address = "127.0.0.1:" + sshtest.FreePort(t)
	impostor := *host
	impostor.HostKey = testKey(t, 7)
	canceled, cancel := context.WithCancel(context.Background())
	cancel()

	tests := []struct {
		name    string
		ctx     context.Context
		host    *policy.Host
		signer  gossh.Signer
		is      error
		refused bool
	}{
		{name: "authorized key logs in", host: host, signer: signer},
		{name: "unauthorized key is refused", host: host, signer: newSigner(t), refused: true},
		{name: "wrong host key is a mismatch, not a refusal", host: &impostor, signer: signer, is: hostkey.ErrMismatch},
		{name: "host down is a connection error, not a refusal", host: &down, signer: signer, is: syscall.ECONNREFUSED},
		{name: "canceled context", ctx: canceled, host: host, signer: signer, is: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := tt.ctx
			if ctx == nil {
				ctx = context.Background()
			}
			c, err := dial(ctx, tt.host, "root", tt.signer, 30*time.Second)
			if c != nil {
				defer c.Close()
			}
			if errors.Is(err, errRefused) != tt.refused {
				t.Errorf("err = %v, refused = %v, want %v", err, errors.Is(err, errRefused), tt.refused)
			}
			wantErr := tt.refused || tt.is != nil
			if (err != nil) != wantErr || (tt.is != nil && !errors.Is(err, tt.is)) {
				t.Fatalf("err = %v, want errors.Is %v", err, tt.is)
			}
			if err == nil {
				if _, err := run(ctx, c, "true"); err != nil {
					t.Fatalf("run true: %v", err)
				}
			}
		})
	}
}

func TestProbe(t *testing.T) {
	signer := newSigner(t)
	host := hostAuthorizing(t, signer)
	if err := probe(context.Background(), host, "root", signer, 30*time.Second); err != nil {
		t.Errorf("authorized key: %v", err)
	}
	if err := probe(context.Background(), host, "root", newSigner(t), 30*time.Second); !errors.Is(err, errRefused) {
		t.Errorf("unauthorized key: %v, want errRefused", err)
	}
}

func TestFirstLine(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"first non-empty line", "\n  \ncat: x: No such file\nmore\n", "cat: x: No such file"},
		{"control characters dropped", "a\x1b[31mb\x07\n", "a[31mb"},
		{"long line cut", strings.Repeat("x", 300), strings.Repeat("x", 200)},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := firstLine(tt.in); got != tt.want {
				t.Errorf("firstLine(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}
