package policy

import (
	"slices"
	"strings"
	"testing"
)

func TestSSHAlgorithmsDefaultIsUnset(t *testing.T) {
	c := mustParse(t, []byte("{}\n"))
	if a := c.SSHAlgorithms; a.Ciphers != nil || a.KeyExchanges != nil || a.MACs != nil {
		t.Fatalf("SSHAlgorithms = %+v, want all unset (the gateway's defaults)", a)
	}
}

func TestSSHAlgorithmsKeepOrder(t *testing.T) {
	c := mustParse(t, fixture(
		"ssh_algorithms:",
		"  ciphers: [aes256-ctr, chacha20-poly1305@openssh.com]",
		"  kex: [curve25519-sha256@libssh.org, diffie-hellman-group16-sha512]",
		"  macs: [hmac-sha2-512-etm@openssh.com]",
	))
	a := c.SSHAlgorithms
	for _, ch := range []struct {
		name      string
		got, want []string
	}{
		{"ciphers", a.Ciphers, []string{"aes256-ctr", "chacha20-poly1305@openssh.com"}},
		{"kex", a.KeyExchanges, []string{"curve25519-sha256@libssh.org", "diffie-hellman-group16-sha512"}},
		{"macs", a.MACs, []string{"hmac-sha2-512-etm@openssh.com"}},
	} {
		if !slices.Equal(ch.got, ch.want) {
			t.Errorf("%s = %q, want %q", ch.name, ch.got, ch.want)
		}
	}
}

func TestSSHAlgorithmsErrors(t *testing.T) {
	runErrCases(t, []errCase{
		{"a typo gets a suggestion", fixture("ssh_algorithms:", "  ciphers: [aes256-ctr, aes265-ctr]"),
			[]string{`2: ssh_algorithms.ciphers: unknown algorithm "aes265-ctr" (hint: did you mean "aes256-ctr"?)`}},
		{"an insecure cipher is refused", fixture("ssh_algorithms:", "  ciphers: [arcfour256]"),
			[]string{`2: ssh_algorithms.ciphers: "arcfour256" has known weaknesses and is not offered (hint: choose one of: ` +
				`aes128-gcm@openssh.com, aes256-gcm@openssh.com, chacha20-poly1305@openssh.com, aes128-ctr, aes192-ctr, aes256-ctr)`}},
		{"an empty list would refuse everyone", fixture("ssh_algorithms:", "  macs: []"),
			[]string{`2: ssh_algorithms.macs is empty: no client could connect (hint: leave the key out to keep the default)`}},
		{"a repeated name", fixture("ssh_algorithms:", "  kex:", "    - ecdh-sha2-nistp256", "    - ecdh-sha2-nistp256"),
			[]string{`4: "ecdh-sha2-nistp256" listed twice in ssh_algorithms.kex (hint: first listed at line 3)`}},
		{"an unknown key", fixture("ssh_algorithms: {cipher: [aes256-ctr]}"),
			[]string{`1: unknown key "cipher" in ssh_algorithms (hint: did you mean "ciphers"?)`}},
		{"a single value, not a list", fixture("ssh_algorithms: {ciphers: aes256-ctr}"),
			[]string{`1: ssh_algorithms.ciphers must be a list, not a single value`}},
	})
}

// TestSSHAlgorithmsInsecureKexNamesTheLine checks errors whose hint lists
// every key exchange or cipher, too long to spell out in the table.
func TestSSHAlgorithmsInsecureKexNamesTheLine(t *testing.T) {
	got := errorLines(t, fixture("ssh_algorithms:", "  kex:", "    - diffie-hellman-group1-sha1"))
	if len(got) != 1 || !strings.HasPrefix(got[0], `3: ssh_algorithms.kex: "diffie-hellman-group1-sha1" has known weaknesses`) ||
		!strings.Contains(got[0], "curve25519-sha256@libssh.org") {
		t.Fatalf("errors = %q", got)
	}
	got = errorLines(t, fixture("ssh_algorithms: {ciphers: [ssh-ed25519]}"))
	if len(got) != 1 || !strings.HasPrefix(got[0], `1: ssh_algorithms.ciphers: unknown algorithm "ssh-ed25519"`) {
		t.Fatalf("errors = %q", got)
	}
}
