package web

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// start serves s on a loopback port and returns its address; the server
// is shut down, and Serve's result checked, when the test ends.
func start(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	for s.listening() == nil {
		time.Sleep(time.Millisecond)
	}
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().String()
}

func get(t *testing.T, c *http.Client, url string) (int, string, http.Header) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

func TestHealthzAndSecurityHeaders(t *testing.T) {
	addr := start(t, New(Options{}))
	code, body, h := get(t, http.DefaultClient, "http://"+addr+"/healthz")
	if code != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", code, body)
	}
	for _, k := range []string{"Content-Security-Policy", "X-Frame-Options", "Referrer-Policy", "X-Content-Type-Options"} {
		if h.Get(k) == "" {
			t.Errorf("header %s missing", k)
		}
	}
	if code, _, _ := get(t, http.DefaultClient, "http://"+addr+"/nothing"); code != 404 {
		t.Errorf("unknown path: %d, want 404", code)
	}
	resp, err := http.Post("http://"+addr+"/healthz", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /healthz: %d, want 405", resp.StatusCode)
	}
}

// TestReadyzReportsFailingChecks: a failing dependency makes /readyz 503
// and names it, without its cause; the answer is cached for a second (by
// the injected clock), so a flood of probes is not a flood on Vault.
func TestReadyzReportsFailingChecks(t *testing.T) {
	var vaultDown atomic.Bool
	var probes atomic.Int32
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	var clock atomic.Int64
	clock.Store(now.UnixNano())
	s := New(Options{Now: func() time.Time { return time.Unix(0, clock.Load()) }, Ready: []Check{
		{Name: "database", Probe: func(context.Context) error { return nil }},
		{Name: "credentials", Probe: func(context.Context) error {
			probes.Add(1)
			if vaultDown.Load() {
				return errors.New("vault: secret detail at http://10.0.0.1")
			}
			return nil
		}},
	}})
	addr := start(t, s)
	if code, body, _ := get(t, http.DefaultClient, "http://"+addr+"/readyz"); code != 200 || body != "ready\n" {
		t.Fatalf("readyz: %d %q", code, body)
	}
	vaultDown.Store(true)
	if code, body, _ := get(t, http.DefaultClient, "http://"+addr+"/readyz"); code != 200 {
		t.Fatalf("within the cache second: %d %q, want the cached 200", code, body)
	}
	clock.Add(int64(2 * time.Second))
	code, body, _ := get(t, http.DefaultClient, "http://"+addr+"/readyz")
	if code != 503 || body != "not ready: credentials\n" {
		t.Fatalf("readyz with vault down: %d %q", code, body)
	}
	if probes.Load() != 2 {
		t.Errorf("credential probe ran %d times, want 2", probes.Load())
	}
}

func TestServeTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	s := New(Options{CertFile: certFile, KeyFile: keyFile, Listen: "127.0.0.1:0"})
	addr := start(t, s)
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	if code, body, _ := get(t, c, "https://"+addr+"/healthz"); code != 200 || body != "ok\n" {
		t.Fatalf("healthz over TLS: %d %q", code, body)
	}
	if _, err := http.Get("http://" + addr + "/healthz"); err == nil {
		// Go's server answers plain HTTP on a TLS port with a 400; either
		// way no handler runs. Only a 200 would be wrong.
		code, _, _ := get(t, http.DefaultClient, "http://"+addr+"/healthz")
		if code == 200 {
			t.Error("plain HTTP answered on the TLS listener")
		}
	}
	if got := s.BaseURL("10.1.1.1"); got != "https://"+addr {
		t.Errorf("BaseURL = %q, want https://%s", got, addr)
	}
}

func TestServeTLSMissingCertFails(t *testing.T) {
	s := New(Options{CertFile: "/nonexistent/c.pem", KeyFile: "/nonexistent/k.pem"})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := s.Serve(context.Background(), ln); err == nil || !strings.Contains(err.Error(), "http_tls") {
		t.Fatalf("Serve = %v, want an http_tls error", err)
	}
}

func TestBaseURL(t *testing.T) {
	for _, tc := range []struct {
		listen, public, host, want string
	}{
		{":0", "", "192.0.2.7", "http://192.0.2.7:PORT"},
		{"0.0.0.0:0", "", "", "http://localhost:PORT"},
		{"127.0.0.1:0", "", "192.0.2.7", "http://127.0.0.1:PORT"},
		{"127.0.0.1:0", "https://warden.example.com/base/", "192.0.2.7", "https://warden.example.com/base"},
		{":0", "", "2001:db8::1", "http://[2001:db8::1]:PORT"},
	} {
		s := New(Options{Listen: tc.listen, PublicURL: tc.public})
		addr := start(t, s)
		_, port, _ := net.SplitHostPort(addr)
		if got, want := s.BaseURL(tc.host), strings.ReplaceAll(tc.want, "PORT", port); got != want {
			t.Errorf("listen %q public %q host %q: %q, want %q", tc.listen, tc.public, tc.host, got, want)
		}
	}
}

// TestShutdownWaitsForRequests: a request in flight when serve stops
// finishes; Serve returns nil.
func TestShutdownWaitsForRequests(t *testing.T) {
	s := New(Options{})
	release := make(chan struct{})
	entered := make(chan struct{})
	s.Handle("/slow", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		<-release
		io.WriteString(w, "done")
	}))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/slow")
		if err != nil {
			got <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		got <- string(b)
	}()
	<-entered
	cancel()
	close(release)
	if g := <-got; g != "done" {
		t.Errorf("request in flight got %q", g)
	}
	if err := <-done; err != nil {
		t.Errorf("Serve: %v", err)
	}
	if _, err := http.Get("http://" + ln.Addr().String() + "/healthz"); err == nil {
		t.Error("listener still answers after shutdown")
	}
}

func selfSigned(t *testing.T, dir string) (string, string, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "warden-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return certFile, keyFile, pool
}
