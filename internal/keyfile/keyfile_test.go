package keyfile

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCreateThenLoadSameKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sub", "host_ed25519")
	s1, created, err := LoadOrCreateEd25519(path)
	if err != nil || !created {
		t.Fatalf("create: created=%v err=%v", created, err)
	}
	st, err := os.Stat(path)
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode = %v, err %v; want 0600", st.Mode().Perm(), err)
	}
	if dst, _ := os.Stat(filepath.Dir(path)); dst.Mode().Perm() != 0o700 {
		t.Fatalf("dir mode = %v, want 0700", dst.Mode().Perm())
	}
	s2, created, err := LoadOrCreateEd25519(path)
	if err != nil || created {
		t.Fatalf("load: created=%v err=%v", created, err)
	}
	if !bytes.Equal(s1.PublicKey().Marshal(), s2.PublicKey().Marshal()) {
		t.Fatal("reloaded key differs")
	}
	if s1.PublicKey().Type() != "ssh-ed25519" {
		t.Fatalf("type %s", s1.PublicKey().Type())
	}
	left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".tmp-*"))
	if len(left) != 0 {
		t.Fatalf("temporary files left: %v", left)
	}
}

func TestLooseKeyRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	if _, _, err := LoadOrCreateEd25519(path); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	_, _, err := LoadOrCreateEd25519(path)
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("err = %v, want refusal naming chmod 600", err)
	}
}

func TestGarbageKeyRefused(t *testing.T) {
	path := filepath.Join(t.TempDir(), "k")
	if err := os.WriteFile(path, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateEd25519(path); err == nil {
		t.Fatal("garbage key accepted")
	}
}
