package policy

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	"golang.org/x/crypto/ssh"
)

// SSHAlgorithms chooses what the gateway offers its clients in the SSH
// handshake. A nil list keeps the gateway's default for it (see
// gateway.DefaultAlgorithms); a given list replaces it, in its order.
// Every name is one that golang.org/x/crypto/ssh implements and does not
// count as insecure, so a typo is an error at load time instead of an
// algorithm silently left out (x/crypto skips names it does not know).
type SSHAlgorithms struct {
	Ciphers      []string
	KeyExchanges []string
	MACs         []string
}

// keyExchangeCurve25519LibSSH is the pre-RFC name of curve25519-sha256,
// which older clients (OpenSSH before 7.3, paramiko) send; x/crypto
// implements it but does not list it.
const keyExchangeCurve25519LibSSH = "curve25519-sha256@libssh.org"

// sshAlgorithms decodes ssh_algorithms: {ciphers, kex, macs}.
func (d *decoder) sshAlgorithms(n *yaml.Node, a *SSHAlgorithms) {
	f, ok := d.mapping(n, "ssh_algorithms", []string{"ciphers", "kex", "macs"})
	if !ok {
		return
	}
	supported, insecure := ssh.SupportedAlgorithms(), ssh.InsecureAlgorithms()
	a.Ciphers = d.algorithmList(f.get("ciphers"), "ssh_algorithms.ciphers", supported.Ciphers, insecure.Ciphers)
	a.KeyExchanges = d.algorithmList(f.get("kex"), "ssh_algorithms.kex",
		append(supported.KeyExchanges, keyExchangeCurve25519LibSSH), insecure.KeyExchanges)
	a.MACs = d.algorithmList(f.get("macs"), "ssh_algorithms.macs", supported.MACs, insecure.MACs)
}

// algorithmList decodes one list of algorithm names. nil means "not set";
// an empty list is an error, because it would refuse every client.
func (d *decoder) algorithmList(n *yaml.Node, what string, known, insecure []string) []string {
	if isNull(n) {
		return nil
	}
	if !d.kind(n, yaml.SequenceNode, what) {
		return nil
	}
	if len(n.Content) == 0 {
		d.hintf(n, "leave the key out to keep the default", "%s is empty: no client could connect", what)
		return nil
	}
	seen := map[string]int{}
	var out []string
	d.seq(n, what, func(item *yaml.Node) {
		name := d.str(item, what)
		switch {
		case name == "":
			d.errorf(item, "empty name in %s", what)
		case slices.Contains(insecure, name):
			d.hintf(item, "choose one of: "+strings.Join(known, ", "), "%s: %q has known weaknesses and is not offered", what, name)
		case !slices.Contains(known, name):
			hint := "choose one of: " + strings.Join(known, ", ")
			if s := suggest(name, known); s != "" {
				hint = fmt.Sprintf("did you mean %q?", s)
			}
			d.hintf(item, hint, "%s: unknown algorithm %q", what, truncateName(name))
		default:
			if line, dup := seen[name]; dup {
				d.hintf(item, fmt.Sprintf("first listed at line %d", line), "%q listed twice in %s", name, what)
				return
			}
			seen[name] = item.Line
			out = append(out, name)
		}
	})
	if len(out) == 0 {
		return nil // every name was bad; the errors say why
	}
	return out
}

// truncateName keeps an error line short whatever the file holds.
func truncateName(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
