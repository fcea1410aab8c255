package gateway_test

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestChaCha20CarriesBulkDataBothWays moves a few megabytes of random
// bytes each way with OpenSSH's client pinned to chacha20-poly1305, whose
// packet bodies the gateway encrypts and decrypts through the patched
// x/crypto (third_party/xcrypto): thousands of packets of many sizes,
// checked byte for byte by an implementation that is not Go's.
func TestChaCha20CarriesBulkDataBothWays(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	data := make([]byte, 3<<20+12345)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(b.dir, "random.bin")
	if err := os.WriteFile(file, data, 0o644); err != nil {
		t.Fatal(err)
	}
	chacha := []string{"-c", "chacha20-poly1305@openssh.com"}

	// Host to client: the gateway encrypts.
	out, err := b.sshWith(testCtx(t), b.alice, chacha, "root@web01", "cat "+file).Output()
	if err != nil || !bytes.Equal(out, data) {
		t.Fatalf("cat through chacha20: %v; got %d bytes, equal %v", err, len(out), bytes.Equal(out, data))
	}

	// Client to host: the gateway decrypts.
	cmd := b.sshWith(testCtx(t), b.alice, chacha, "root@web01", "sha256sum")
	cmd.Stdin = bytes.NewReader(data)
	out, err = cmd.Output()
	want := sha256.Sum256(data)
	if err != nil || !strings.HasPrefix(string(out), hex.EncodeToString(want[:])) {
		t.Fatalf("sha256sum through chacha20: %v: %q, want %x", err, out, want)
	}
}
