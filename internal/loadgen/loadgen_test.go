package loadgen

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/internal/sshtest"
)

// hostAndKey starts a real sshd that trusts a test CA, and returns it with
// a client key certified for root.
func hostAndKey(t *testing.T) (*sshtest.Host, ssh.Signer) {
	t.Helper()
	ca := sshtest.NewCA(t)
	h := sshtest.StartHost(t, sshtest.HostOptions{TrustedUserCAKeys: []ssh.PublicKey{ca.PublicKey}})
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := ssh.NewCertSigner(ca.UserCert(t, key.PublicKey(), "loadgen", "root"), key)
	if err != nil {
		t.Fatal(err)
	}
	return h, cs
}

func TestCrowdOpensRunsAndCloses(t *testing.T) {
	h, key := hostAndKey(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	crowd, err := Open(ctx, Options{Addr: h.Addr, User: "root", Signers: []ssh.Signer{key}, HostKey: h.HostKey, Sessions: 6, Concurrency: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(crowd.Failed) > 0 || len(crowd.Sessions) != 6 {
		t.Fatalf("%d sessions, failures %v", len(crowd.Sessions), crowd.Failed)
	}
	if crowd.Rate() <= 0 {
		t.Errorf("rate %v", crowd.Rate())
	}
	seen := map[int]bool{}
	for _, s := range crowd.Sessions {
		seen[s.ID] = true
	}
	if len(seen) != 6 {
		t.Errorf("session IDs %v", seen)
	}
	// Each session is its own shell: a variable set in one is not in another.
	errs := crowd.Each(3, func(s *Session) error {
		return s.Run(ctx, "X=own-$((1000+"+itoa(s.ID)+")); echo got-$X", "got-own-"+itoa(1000+s.ID))
	})
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	if errs := crowd.Close(ctx, 3); len(errs) > 0 {
		t.Fatal(errs)
	}
	if out := string(crowd.Sessions[0].Output()); !strings.Contains(out, "exit") {
		t.Errorf("the shell did not see exit: %q", out)
	}
}

func TestCrowdRefusesAWrongHostKey(t *testing.T) {
	h, key := hostAndKey(t)
	other, _ := hostAndKey(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	crowd, err := Open(ctx, Options{Addr: h.Addr, User: "root", Signers: []ssh.Signer{key}, HostKey: other.HostKey, Sessions: 3})
	if err != nil {
		t.Fatal(err)
	}
	if len(crowd.Sessions) != 0 || len(crowd.Failed) != 3 {
		t.Fatalf("%d sessions set up against the wrong key; failures %v", len(crowd.Sessions), crowd.Failed)
	}
	if !strings.Contains(crowd.Failed[0].Error(), "host key mismatch") {
		t.Errorf("failure %v", crowd.Failed[0])
	}
	if _, err := Open(ctx, Options{Addr: h.Addr, User: "root", Signers: []ssh.Signer{key}, Sessions: 1}); err == nil {
		t.Errorf("Open without a host key to check did not fail")
	}
}

func itoa(i int) string { return strconv.Itoa(i) }
