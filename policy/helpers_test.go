package policy

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// testPrivateKey returns a fixed ed25519 private key for seed.
func testPrivateKey(seed byte) ed25519.PrivateKey {
	return ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
}

// testKey returns a fixed ed25519 public key; the same seed always gives the
// same key, so fixtures and fingerprints are deterministic.
func testKey(seed byte) ssh.PublicKey {
	k, err := ssh.NewPublicKey(testPrivateKey(seed).Public())
	if err != nil {
		panic(err)
	}
	return k
}

// keyLine is testKey in authorized_keys format, without a comment.
func keyLine(seed byte) string {
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(testKey(seed))))
}

// fixture joins lines into a policy and expands $KEY1..$KEY4 to real keys.
// Line i of the slice is line i+1 of the file, which keeps expected line
// numbers readable.
func fixture(lines ...string) []byte {
	r := strings.NewReplacer("$KEY1", keyLine(1), "$KEY2", keyLine(2), "$KEY3", keyLine(3), "$KEY4", keyLine(4))
	return []byte(r.Replace(strings.Join(lines, "\n") + "\n"))
}

// errorLines parses src as "w.yaml", requires it to fail with an
// *ErrorList, and returns each error as "LINE: message (hint: ...)".
func errorLines(t *testing.T, src []byte) []string {
	t.Helper()
	c, err := Parse(src, "w.yaml")
	if err == nil {
		t.Fatalf("Parse succeeded, want errors; config: %+v", c)
	}
	var list *ErrorList
	if !errors.As(err, &list) {
		t.Fatalf("Parse error is %T (%v), want *ErrorList", err, err)
	}
	out := make([]string, len(*list))
	for i, e := range *list {
		if e.File != "w.yaml" {
			t.Errorf("error %d: File = %q, want w.yaml", i, e.File)
		}
		out[i] = strings.TrimPrefix(e.Error(), "w.yaml:")
	}
	return out
}

// errCase is one invalid policy and every error it must produce.
type errCase struct {
	name string
	src  []byte
	want []string // "LINE: message (hint: ...)", in line order
}

func runErrCases(t *testing.T, cases []errCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := errorLines(t, tc.src)
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("errors:\n got: %s\nwant: %s", strings.Join(got, "\n      "), strings.Join(tc.want, "\n      "))
			}
		})
	}
}

// mustParse parses a policy that must be valid.
func mustParse(t *testing.T, src []byte) *Config {
	t.Helper()
	c, err := Parse(src, "w.yaml")
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

// validPath is the full sample policy, with real keys, shared with docs.
const validPath = "../testdata/policy/valid.yaml"

// loadValid loads the sample policy, which must be valid.
func loadValid(t *testing.T) *Config {
	t.Helper()
	c, err := Load(validPath)
	if err != nil {
		t.Fatalf("Load(%s): %v", validPath, err)
	}
	return c
}

// parseKey parses an authorized_keys line that must be valid.
func parseKey(t *testing.T, line string) ssh.PublicKey {
	t.Helper()
	k, _, _, _, err := ssh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	return k
}
