package demohost

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestHostKeyCreatedPrivateAndReused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "missing-dir", "host_ed25519")
	first, err := loadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	info, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if info.Mode().Perm() != 0o600 {
		t.Errorf("host key mode %04o, want 0600", info.Mode().Perm())
	}
	if first.PublicKey().Type() != "ssh-ed25519" {
		t.Errorf("host key type %s, want ssh-ed25519", first.PublicKey().Type())
	}
	second, err := loadOrCreateHostKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(first.PublicKey().Marshal(), second.PublicKey().Marshal()) {
		t.Error("second start made a new host key instead of reusing the file")
	}
	if leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".host-key-*")); len(leftovers) != 0 {
		t.Errorf("temporary files left behind: %v", leftovers)
	}
}

func TestHostKeyRefusedWhenOthersCanReadIt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host_ed25519")
	if _, err := loadOrCreateHostKey(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateHostKey(path); !errors.Is(err, ErrHostKeyExposed) {
		t.Fatalf("err = %v, want ErrHostKeyExposed", err)
	}
}

func TestHostKeyCorruptFileIsAnError(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host_ed25519")
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := loadOrCreateHostKey(path); err == nil {
		t.Fatal("corrupt host key accepted")
	}
	if data, _ := os.ReadFile(path); string(data) != "not a key" {
		t.Fatal("corrupt host key was overwritten")
	}
}

func TestHostKeyInMemoryWithoutPath(t *testing.T) {
	a, err := loadOrCreateHostKey("")
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadOrCreateHostKey("")
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(a.PublicKey().Marshal(), b.PublicKey().Marshal()) {
		t.Fatal("two in-memory host keys are equal")
	}
}
