package identity

import (
	"crypto/rsa"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// maxKeys bounds the keys of one user: enough for every laptop and token.
const maxKeys = 32

// ParseKeys validates the authorized_keys lines of the sshPublicKeys
// attribute and returns them normalised (TYPE BASE64 [comment]) with the
// parsed keys. lines may hold several keys each, since Entra sends one
// string of lines; blank lines and '#' comments are skipped. It refuses
// what the YAML policy refuses (policy/keys.go): options, certificates and
// RSA keys under 2048 bits, so a directory cannot grant what a policy
// author could not.
func ParseKeys(lines []string) ([]string, []ssh.PublicKey, error) {
	var out []string
	var keys []ssh.PublicKey
	seen := map[string]bool{}
	for _, block := range lines {
		for _, line := range strings.FieldsFunc(block, func(r rune) bool { return r == '\n' || r == '\r' }) {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			k, comment, opts, rest, err := ssh.ParseAuthorizedKey([]byte(line))
			if err != nil || len(strings.TrimSpace(string(rest))) > 0 {
				return nil, nil, fmt.Errorf("sshPublicKeys: cannot parse %q: want \"TYPE BASE64 [comment]\"", short(line))
			}
			if len(opts) > 0 {
				return nil, nil, fmt.Errorf("sshPublicKeys: key has authorized_keys options, which Warden does not apply")
			}
			if _, ok := k.(*ssh.Certificate); ok {
				return nil, nil, fmt.Errorf("sshPublicKeys: a certificate is not a key; send the plain public key")
			}
			if cpk, ok := k.(ssh.CryptoPublicKey); ok {
				if rk, ok := cpk.CryptoPublicKey().(*rsa.PublicKey); ok && rk.N.BitLen() < 2048 {
					return nil, nil, fmt.Errorf("sshPublicKeys: RSA key shorter than 2048 bits")
				}
			}
			if msg := checkText("sshPublicKeys comment", comment, 256); msg != "" {
				return nil, nil, fmt.Errorf("%s", msg)
			}
			fp := ssh.FingerprintSHA256(k)
			if seen[fp] {
				continue
			}
			seen[fp] = true
			norm := strings.TrimSpace(string(ssh.MarshalAuthorizedKey(k)))
			if comment != "" {
				norm += " " + comment
			}
			out = append(out, norm)
			keys = append(keys, k)
			if len(keys) > maxKeys {
				return nil, nil, fmt.Errorf("sshPublicKeys: more than %d keys", maxKeys)
			}
		}
	}
	return out, keys, nil
}

func short(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// mustKeys parses lines already validated by ParseKeys.
func mustKeys(lines []string) []ssh.PublicKey {
	_, keys, err := ParseKeys(lines)
	if err != nil {
		return nil
	}
	return keys
}
