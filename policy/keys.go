package policy

import (
	"crypto/rsa"
	"encoding/base64"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh"
)

// minRSABits is the smallest RSA key accepted anywhere in the policy.
const minRSABits = 2048

// publicKey decodes one key in authorized_keys format ("TYPE BASE64
// [comment]"). It refuses what authorized_keys would accept but Warden
// would silently ignore or trust too far:
//   - options (from=, command=): the policy has no place to enforce them;
//   - more than one line: ssh.ParseAuthorizedKey skips lines it cannot parse,
//     so a pasted block could hide which key is really trusted;
//   - certificates: a key here is an identity or a trust anchor, not a
//     credential that expires;
//   - RSA keys under 2048 bits, which can be factored. (DSA keys never get
//     this far: x/crypto/ssh no longer parses them.)
func (d *decoder) publicKey(n *yaml.Node, what string) ssh.PublicKey {
	s := strings.TrimSpace(d.str(n, what))
	if s == "" {
		if isNull(n) || n.Kind == yaml.ScalarNode {
			d.hintf(n, `paste one line of a .pub file, e.g. "ssh-ed25519 AAAA... alice@laptop"`, "empty %s", what)
		}
		return nil
	}
	if strings.ContainsAny(s, "\r\n") {
		d.hintf(n, "write one key per list item", "%s spans several lines", what)
		return nil
	}
	k, _, opts, _, err := ssh.ParseAuthorizedKey([]byte(s))
	if err != nil {
		d.hintf(n, `paste one line of a .pub file, e.g. "ssh-ed25519 AAAA... alice@laptop"`, "cannot parse %s: %s", what, keyProblem(s))
		return nil
	}
	if len(opts) > 0 {
		d.hintf(n, "remove the options before the key type", "%s has authorized_keys options, which Warden does not apply", what)
		return nil
	}
	if _, ok := k.(*ssh.Certificate); ok {
		d.hintf(n, "use the plain public key, not the -cert.pub file", "%s is a certificate", what)
		return nil
	}
	if weak := weakKey(k); weak != "" {
		d.hintf(n, "use ed25519, ecdsa or RSA of at least 2048 bits", "%s is too weak: %s", what, weak)
		return nil
	}
	return k
}

// keyProblem says why the single line s is not a public key.
// ssh.ParseAuthorizedKey only reports "no key found", since it is built to
// skip bad lines of a whole file.
func keyProblem(s string) string {
	const form = `want "TYPE BASE64 [comment]"`
	f := strings.Fields(s)
	if len(f) < 2 {
		return form
	}
	blob, err := base64.StdEncoding.DecodeString(f[1])
	if err != nil {
		return "key data is not valid base64"
	}
	if _, err := ssh.ParsePublicKey(blob); err != nil {
		return strings.TrimPrefix(err.Error(), "ssh: ")
	}
	return form
}

// weakKey names the weakness of k, or returns "" for an acceptable key.
func weakKey(k ssh.PublicKey) string {
	cpk, ok := k.(ssh.CryptoPublicKey)
	if !ok {
		return ""
	}
	if rk, ok := cpk.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < minRSABits {
		return "RSA key shorter than 2048 bits"
	}
	return ""
}
