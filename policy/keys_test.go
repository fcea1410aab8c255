package policy

import (
	"bytes"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// rsa1024 is a real 1024-bit RSA key made with ssh-keygen: parseable, too weak.
const rsa1024 = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQDEd/kP+HMM6iKfor8pTynZWj+MtYGGG6/nCDoHRgBTZikmJ6luDmkb14yyDvBl/lUV6/h8xBDGlJosNOoMj5HcMG10l/1zVQbysQwlNQ6ALoDe53oQkMRg1kkCY9wkOAzG9NvJmEiy+MWwAzrAfH7If4DYrFOzuL5WX1KUsqZpkQ=="

// testCert returns a user certificate for testKey(1), signed by testKey(2)'s
// private half, in authorized_keys format.
func testCert(t *testing.T) string {
	t.Helper()
	signer, err := ssh.NewSignerFromKey(testPrivateKey(2))
	if err != nil {
		t.Fatal(err)
	}
	cert := &ssh.Certificate{Key: testKey(1), CertType: ssh.UserCert, ValidPrincipals: []string{"alice"}, ValidBefore: ssh.CertTimeInfinity}
	// A zero nonce keeps the fixture deterministic; this cert is never trusted.
	if err := cert.SignCert(bytes.NewReader(make([]byte, 64)), signer); err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(ssh.MarshalAuthorizedKey(cert)))
}

func TestPublicKeyErrors(t *testing.T) {
	const pasteHint = `(hint: paste one line of a .pub file, e.g. "ssh-ed25519 AAAA... alice@laptop")`
	user := func(keyYAML ...string) []byte {
		return fixture(append([]string{"users:", "  - name: alice", "    keys:"}, keyYAML...)...)
	}
	runErrCases(t, []errCase{
		{"one word", user(`      - "hello"`),
			[]string{`4: cannot parse user key: want "TYPE BASE64 [comment]" ` + pasteHint}},
		{"not base64", user(`      - "ssh-ed25519 not!base64"`),
			[]string{`4: cannot parse user key: key data is not valid base64 ` + pasteHint}},
		{"truncated key data", user(`      - "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIA=="`),
			[]string{`4: cannot parse user key: short read ` + pasteHint}},
		{"unknown algorithm", user(`      - "ssh-foo AAAAB3NzaC1mb28="`),
			[]string{`4: cannot parse user key: unknown key algorithm: "ssh-foo" ` + pasteHint}},
		{"empty string", user(`      - ""`),
			[]string{`4: empty user key ` + pasteHint}},
		{"null item", user(`      -`),
			[]string{`4: empty user key ` + pasteHint}},
		{"authorized_keys options", user(`      - 'from="10.0.0.0/8" $KEY1'`),
			[]string{`4: user key has authorized_keys options, which Warden does not apply (hint: remove the options before the key type)`}},
		{"several lines hide which key counts", user(`      - |`, `        not a key`, `        $KEY1`),
			[]string{`4: user key spans several lines (hint: write one key per list item)`}},
		{"certificate", user(`      - "` + testCert(t) + `"`),
			[]string{`4: user key is a certificate (hint: use the plain public key, not the -cert.pub file)`}},
		{"short RSA", user(`      - "` + rsa1024 + `"`),
			[]string{`4: user key is too weak: RSA key shorter than 2048 bits (hint: use ed25519, ecdsa or RSA of at least 2048 bits)`}},
		{"a list is not a key", user(`      - [$KEY1]`),
			[]string{`4: user key must be a single value, not a list`}},
		{"keys must be a list", fixture("users:", "  - name: alice", "    keys: $KEY1"),
			[]string{`3: keys must be a list, not a single value`}},
	})
}

func TestPublicKeyAcceptsCommentAndSpaces(t *testing.T) {
	c := mustParse(t, fixture("users:", "  - name: alice", `    keys: ["  $KEY1 alice@laptop  "]`))
	if got := c.User("alice").Keys; len(got) != 1 || !bytes.Equal(got[0].Marshal(), testKey(1).Marshal()) {
		t.Errorf("keys = %v, want testKey(1)", got)
	}
}

func TestWeakKey(t *testing.T) {
	strong, _, _, _, err := ssh.ParseAuthorizedKey([]byte(keyLine(1)))
	if err != nil {
		t.Fatal(err)
	}
	weak, _, _, _, err := ssh.ParseAuthorizedKey([]byte(rsa1024))
	if err != nil {
		t.Fatal(err)
	}
	if got := weakKey(strong); got != "" {
		t.Errorf("weakKey(ed25519) = %q, want none", got)
	}
	if got := weakKey(weak); got == "" {
		t.Error("weakKey(rsa1024) = none, want a reason")
	}
}
