package rotate

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"errors"
	"strings"
	"testing"

	gossh "golang.org/x/crypto/ssh"
)

func TestSplitKVPath(t *testing.T) {
	tests := []struct {
		name, path, mount, secret string
		wantErr                   string
	}{
		{name: "mount and secret", path: "secret/data/breakglass/acme", mount: "secret", secret: "breakglass/acme"},
		{name: "nested mount", path: "team/kv/data/x", mount: "team/kv", secret: "x"},
		{name: "splits at the first data segment", path: "secret/data/data/x", mount: "secret", secret: "data/x"},
		{name: "a mount named data", path: "data/data/0", mount: "data", secret: "0"},
		{name: "kv cli path without data is refused", path: "secret/breakglass/acme", wantErr: "not a KV v2 data path"},
		{name: "no secret after data", path: "secret/data", wantErr: "not a KV v2 data path"},
		{name: "no mount before data", path: "data/x", wantErr: "not a KV v2 data path"},
		{name: "dot dot segment", path: "secret/data/../x", wantErr: "invalid segment"},
		{name: "empty segment", path: "secret//data/x", wantErr: "invalid segment"},
		{name: "trailing slash", path: "secret/data/x/", wantErr: "invalid segment"},
		{name: "empty", path: "", wantErr: "invalid segment"},
		{name: "space", path: "secret/data/a b", wantErr: "invalid segment"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mount, secret, err := splitKVPath(tt.path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("splitKVPath(%q) err = %v, want %q", tt.path, err, tt.wantErr)
				}
				return
			}
			if err != nil || mount != tt.mount || secret != tt.secret {
				t.Fatalf("splitKVPath(%q) = %q, %q, %v; want %q, %q", tt.path, mount, secret, err, tt.mount, tt.secret)
			}
		})
	}
}

func FuzzSplitKVPath(f *testing.F) {
	for _, s := range []string{"secret/data/breakglass/acme", "a/b/data/c/d", "secret/data/data", "x/../data/y", "/data/x", "a/data/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		mount, secret, err := splitKVPath(p)
		if err != nil {
			return
		}
		if mount+"/data/"+secret != p {
			t.Fatalf("%q split into %q and %q", p, mount, secret)
		}
		for _, seg := range strings.Split(p, "/") {
			if seg == "" || seg == "." || seg == ".." {
				t.Fatalf("%q accepted with segment %q", p, seg)
			}
		}
		// The split is at the first data segment after the mount's first
		// segment, which may itself be named data (vault secrets enable
		// -path=data kv-v2 makes the API path data/data/...).
		for _, seg := range strings.Split(mount, "/")[1:] {
			if seg == "data" {
				t.Fatalf("%q split after a later data segment: mount %q", p, mount)
			}
		}
	})
}

// ed25519PEM returns a fresh OpenSSH private key; with a passphrase it is
// encrypted.
func ed25519PEM(t *testing.T, passphrase string) (string, gossh.PublicKey) {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	var blk *pem.Block
	if passphrase == "" {
		blk, err = gossh.MarshalPrivateKey(priv, "test")
	} else {
		blk, err = gossh.MarshalPrivateKeyWithPassphrase(priv, "test", []byte(passphrase))
	}
	if err != nil {
		t.Fatal(err)
	}
	sshPub, err := gossh.NewPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return string(pem.EncodeToMemory(blk)), sshPub
}

func TestFetch(t *testing.T) {
	vc := startVault(t)
	ctx := context.Background()
	first, _ := ed25519PEM(t, "")
	second, secondPub := ed25519PEM(t, "")
	putKV(t, vc, "ok", map[string]any{FieldPrivateKey: first})
	putKV(t, vc, "ok", map[string]any{FieldPrivateKey: second})

	t.Run("returns the latest key and its version", func(t *testing.T) {
		signer, version, err := Fetch(ctx, vc, kvMount+"/data/ok")
		if err != nil {
			t.Fatal(err)
		}
		if version != 2 {
			t.Errorf("version = %d, want 2", version)
		}
		if got, want := gossh.FingerprintSHA256(signer.PublicKey()), gossh.FingerprintSHA256(secondPub); got != want {
			t.Errorf("key = %s, want the second version's %s", got, want)
		}
	})

	encrypted, _ := ed25519PEM(t, "hunter2")
	const garbage = "-----BEGIN OPENSSH PRIVATE KEY-----\nTOPSECRETBYTES\n-----END OPENSSH PRIVATE KEY-----\n"
	putKV(t, vc, "nofield", map[string]any{"key": first})
	putKV(t, vc, "number", map[string]any{FieldPrivateKey: 42})
	putKV(t, vc, "garbage", map[string]any{FieldPrivateKey: garbage})
	putKV(t, vc, "encrypted", map[string]any{FieldPrivateKey: encrypted})
	putKV(t, vc, "deleted", map[string]any{FieldPrivateKey: first})
	if err := vc.KVv2(kvMount).Delete(ctx, "deleted"); err != nil {
		t.Fatal(err)
	}
	failures := []struct {
		name, path string
		is         error
		says       string
	}{
		{"missing secret is ErrNoSecret", kvMount + "/data/absent", ErrNoSecret, "no secret"},
		{"deleted latest version is ErrNoSecret", kvMount + "/data/deleted", ErrNoSecret, "deleted"},
		{"missing field is ErrBadSecret", kvMount + "/data/nofield", ErrBadSecret, `no "private_key" field`},
		{"non-string field is ErrBadSecret", kvMount + "/data/number", ErrBadSecret, "not a string"},
		{"garbled key is ErrBadSecret", kvMount + "/data/garbage", ErrBadSecret, "not an OpenSSH private key"},
		{"passphrase key is ErrBadSecret", kvMount + "/data/encrypted", ErrBadSecret, "passphrase"},
		{"unknown mount is an error", "nomount/data/x", nil, "nomount/data/x"},
		{"path without data is refused before Vault", kvMount + "/ok", nil, "not a KV v2 data path"},
	}
	for _, tt := range failures {
		t.Run(tt.name, func(t *testing.T) {
			signer, _, err := Fetch(ctx, vc, tt.path)
			if err == nil || signer != nil {
				t.Fatalf("Fetch(%s) = %v, %v; want an error", tt.path, signer, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.says) || !strings.HasPrefix(err.Error(), "rotate: ") {
				t.Errorf("err = %q, want a rotate: error saying %q", err, tt.says)
			}
			if strings.Contains(err.Error(), "TOPSECRET") || strings.Contains(err.Error(), "PRIVATE KEY") {
				t.Errorf("err quotes the secret: %q", err)
			}
		})
	}
}

func TestStore(t *testing.T) {
	vc := startVault(t)
	ctx := context.Background()
	oldPEM, _ := ed25519PEM(t, "")
	newPEM, newPub := ed25519PEM(t, "")
	putKV(t, vc, "s", map[string]any{FieldPrivateKey: oldPEM, "note": "keep me"})
	old, err := readKey(ctx, vc, kvMount+"/data/s")
	if err != nil {
		t.Fatal(err)
	}
	pubLine := keyLine(newPub, "c")

	t.Run("writes the next version and keeps other fields", func(t *testing.T) {
		v, err := writeKey(ctx, vc, kvMount+"/data/s", old, newPEM, pubLine)
		if err != nil || v != old.version+1 {
			t.Fatalf("store = %d, %v; want version %d", v, err, old.version+1)
		}
		s, err := vc.KVv2(kvMount).Get(ctx, "s")
		if err != nil {
			t.Fatal(err)
		}
		if s.Data[FieldPrivateKey] != newPEM || s.Data[FieldPublicKey] != pubLine || s.Data["note"] != "keep me" {
			t.Errorf("stored fields = %v keys, note %v", len(s.Data), s.Data["note"])
		}
	})
	t.Run("a stale version is refused by check-and-set", func(t *testing.T) {
		before := kvVersion(t, vc, "s")
		if _, err := writeKey(ctx, vc, kvMount+"/data/s", old, newPEM, pubLine); err == nil {
			t.Fatal("write with a stale cas succeeded")
		}
		if after := kvVersion(t, vc, "s"); after != before {
			t.Errorf("version moved from %d to %d", before, after)
		}
	})
}
