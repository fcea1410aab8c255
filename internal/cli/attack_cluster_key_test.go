package cli

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"os"
	"path/filepath"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

// The cluster's message key (cluster/sign.go) comes from the host key's
// private half: two files holding one key in different encodings (the
// OpenSSH format draws random check bytes each time it is written) give
// the same key, so the nodes of a cluster agree; another host key gives
// another, so it cannot be reached without the private key.
func TestAttackClusterKeyFollowsTheHostKeyOnly(t *testing.T) {
	dir := t.TempDir()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name string, k any) string {
		blk, err := gossh.MarshalPrivateKey(k, "")
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := write("a", priv), write("b", priv)
	if fa, _ := os.ReadFile(a); bytes.Equal(fa, must(os.ReadFile(b))) {
		t.Fatal("the two files are byte for byte equal: the test shows nothing")
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	c := write("c", other)
	ka, err := clusterKey(a)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := clusterKey(b)
	if err != nil {
		t.Fatal(err)
	}
	kc, err := clusterKey(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ka, kb) || len(ka) < 32 {
		t.Fatalf("one host key, two cluster keys (%d bytes)", len(ka))
	}
	if bytes.Equal(ka, kc) {
		t.Fatal("two host keys, one cluster key")
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}
