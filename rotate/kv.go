package rotate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"strings"

	"github.com/hashicorp/vault/api"
	gossh "golang.org/x/crypto/ssh"
)

// Fields of the KV v2 secret.
const (
	// FieldPrivateKey holds the OpenSSH private key (PEM, unencrypted). It
	// is the only field Fetch needs.
	FieldPrivateKey = "private_key"
	// FieldPublicKey holds the matching authorized_keys line. Rotate writes
	// it so that an operator can find the key on a host without ever
	// reading the private half; Fetch ignores it.
	FieldPublicKey = "public_key"
)

var (
	// ErrNoSecret marks a KV path with no secret, or whose latest version
	// is deleted.
	ErrNoSecret = errors.New("no secret")
	// ErrBadSecret marks a secret whose private_key field is missing, not a
	// string, or not an unencrypted OpenSSH private key.
	ErrBadSecret = errors.New("bad secret")
	// ErrConflict marks a KV secret that changed between Rotate's fetch and
	// its write, so the check-and-set write was refused.
	ErrConflict = errors.New("secret changed concurrently")
)

// kvSegment is the alphabet the policy allows in a vault_kv path segment;
// no segment starts with '.', so ".." cannot climb out of the mount.
var kvSegment = regexp.MustCompile(`^[A-Za-z0-9_-][A-Za-z0-9._-]{0,127}$`)

// splitKVPath splits a KV v2 API path "MOUNT/data/PATH" at its first "data"
// segment: "secret/data/breakglass/acme" is mount "secret", secret
// "breakglass/acme". A mount whose own name has a "data" segment cannot be
// addressed; the policy's paths never have one.
func splitKVPath(p string) (mount, secret string, err error) {
	segs := strings.Split(p, "/")
	for _, s := range segs {
		if !kvSegment.MatchString(s) {
			return "", "", fmt.Errorf("rotate: kv path %q: invalid segment %q", p, s)
		}
	}
	for i := 1; i < len(segs)-1; i++ {
		if segs[i] == "data" {
			return strings.Join(segs[:i], "/"), strings.Join(segs[i+1:], "/"), nil
		}
	}
	return "", "", fmt.Errorf("rotate: kv path %q is not a KV v2 data path (MOUNT/data/PATH, e.g. secret/data/breakglass/acme)", p)
}

// kvKey is one version of the secret: the parsed key, its version and the
// secret's fields, which a rotation keeps.
type kvKey struct {
	signer  gossh.Signer
	version int
	data    map[string]any
}

// Fetch reads the latest version of the KV v2 secret at path (the API path
// "MOUNT/data/PATH", as in the policy) and returns the private key in its
// "private_key" field with the version number. c must already hold a
// token. A missing or deleted secret wraps ErrNoSecret; a missing, encrypted
// or unparsable key wraps ErrBadSecret. Errors never quote the field's
// content.
func Fetch(ctx context.Context, c *api.Client, path string) (gossh.Signer, int, error) {
	k, err := readKey(ctx, c, path)
	if err != nil {
		return nil, 0, err
	}
	return k.signer, k.version, nil
}

func readKey(ctx context.Context, c *api.Client, path string) (*kvKey, error) {
	mount, secret, err := splitKVPath(path)
	if err != nil {
		return nil, err
	}
	s, err := c.KVv2(mount).Get(ctx, secret)
	switch {
	case errors.Is(err, api.ErrSecretNotFound):
		return nil, fmt.Errorf("rotate: read %s: %w", path, ErrNoSecret)
	case err != nil:
		return nil, fmt.Errorf("rotate: read %s: %w", path, err)
	case s.Data == nil:
		return nil, fmt.Errorf("rotate: read %s: %w: latest version is deleted", path, ErrNoSecret)
	case s.VersionMetadata == nil:
		return nil, fmt.Errorf("rotate: read %s: no version metadata (is %s a KV v2 mount?)", path, mount)
	}
	signer, err := parseKeyField(s.Data)
	if err != nil {
		return nil, fmt.Errorf("rotate: read %s: %w", path, err)
	}
	return &kvKey{signer: signer, version: s.VersionMetadata.Version, data: s.Data}, nil
}

// parseKeyField parses the private_key field. The parser's own error is
// kept (x/crypto never quotes key bytes in it) but the field is not.
func parseKeyField(data map[string]any) (gossh.Signer, error) {
	v, ok := data[FieldPrivateKey]
	if !ok {
		return nil, fmt.Errorf("%w: no %q field", ErrBadSecret, FieldPrivateKey)
	}
	pemText, ok := v.(string)
	if !ok {
		return nil, fmt.Errorf("%w: field %q is a %T, not a string", ErrBadSecret, FieldPrivateKey, v)
	}
	signer, err := gossh.ParsePrivateKey([]byte(pemText))
	var pm *gossh.PassphraseMissingError
	switch {
	case errors.As(err, &pm):
		// The gateway has no passphrase to give; Vault's access control is
		// the key's protection.
		return nil, fmt.Errorf("%w: field %q is encrypted with a passphrase", ErrBadSecret, FieldPrivateKey)
	case err != nil:
		return nil, fmt.Errorf("%w: field %q is not an OpenSSH private key: %v", ErrBadSecret, FieldPrivateKey, err)
	}
	return signer, nil
}

// writeKey writes the new key as the next version of the secret, keeping its
// other fields. options.cas = old.version makes Vault refuse the write when
// anyone wrote in between, instead of silently replacing their key.
func writeKey(ctx context.Context, c *api.Client, path string, old *kvKey, privPEM, pubLine string) (int, error) {
	mount, secret, err := splitKVPath(path)
	if err != nil {
		return 0, err
	}
	data := maps.Clone(old.data)
	data[FieldPrivateKey] = privPEM
	data[FieldPublicKey] = pubLine
	s, err := c.KVv2(mount).Put(ctx, secret, data, api.WithCheckAndSet(old.version))
	if err != nil {
		return 0, fmt.Errorf("rotate: write %s (cas %d): %w", path, old.version, err)
	}
	if s.VersionMetadata == nil || s.VersionMetadata.Version <= old.version {
		return 0, fmt.Errorf("rotate: write %s: version did not go up from %d", path, old.version)
	}
	return s.VersionMetadata.Version, nil
}
