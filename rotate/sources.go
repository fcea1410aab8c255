package rotate

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	gossh "golang.org/x/crypto/ssh"
)

// The sources step checks the host from sshd's point of view rather than
// the gateway's. A root user during the grant can authorize the old key in
// a file Warden never edits (Debian's sshd reads .ssh/authorized_keys2 by
// default) and hide it from the gateway's own address with
// from="!GATEWAY,*"; a login attempt from the gateway would then be refused
// while the key still opens the host from anywhere else. So the step asks
// sshd which files it reads (sshd -T, once as configured and once for this
// login and the gateway's address, since Match blocks change it), expands
// them for every account in the passwd database, reads them all and fails
// if any line carries a retired key, under any options. The configuration
// text is read too (sshdconfig.go), since a Match block for other
// addresses never shows in sshd -T for ours. The user CA file
// (TrustedUserCAKeys) is read too: the old key as a CA would sign its own
// way back in. An AuthorizedKeysCommand cannot be read, so its presence
// fails the step.
//
// It needs root on the host: sshd -T loads the host keys, and only root
// can read every account's files. A static break-glass credential is for
// root, and a rotation that cannot look everywhere does not claim success.

// DefaultSSHDConfig is the sshd configuration file sshd -T reads when
// Target.SSHDConfig is empty.
const DefaultSSHDConfig = "/etc/ssh/sshd_config"

// sshdSources is what sshd -T says about where keys come from.
type sshdSources struct {
	files   []string // AuthorizedKeysFile patterns, union of every answer
	command string   // AuthorizedKeysCommand, "" when none
	caFiles []string // TrustedUserCAKeys files
}

// parseSSHDT adds one `sshd -T` answer to s. An answer without an
// authorizedkeysfile line is not one sshd gave, and fails.
func (s *sshdSources) parse(out []byte) error {
	sawFile := false
	for line := range strings.SplitSeq(string(out), "\n") {
		kw, val, _ := strings.Cut(strings.TrimSpace(line), " ")
		val = strings.TrimSpace(val)
		switch strings.ToLower(kw) {
		case "authorizedkeysfile":
			sawFile = true
			for _, f := range strings.Fields(val) {
				if f != "none" && !slices.Contains(s.files, f) {
					s.files = append(s.files, f)
				}
			}
		case "authorizedkeyscommand":
			if val != "" && val != "none" {
				s.command = val
			}
		case "trustedusercakeys":
			if val != "" && val != "none" && !slices.Contains(s.caFiles, val) {
				s.caFiles = append(s.caFiles, val)
			}
		}
	}
	if !sawFile {
		return errors.New("sshd -T printed no authorizedkeysfile")
	}
	return nil
}

// account is one passwd entry.
type account struct{ name, uid, home string }

// parsePasswd reads `getent passwd` output. Entries it cannot read fail
// the step: skipping one would skip its files.
func parsePasswd(out []byte) ([]account, error) {
	var as []account
	for line := range strings.SplitSeq(string(out), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.Split(line, ":")
		if len(f) < 7 || f[0] == "" || f[5] == "" {
			return nil, fmt.Errorf("unreadable passwd entry %q", firstLine(line))
		}
		as = append(as, account{name: f[0], uid: f[2], home: f[5]})
	}
	if len(as) == 0 {
		return nil, errors.New("getent passwd printed no accounts")
	}
	return as, nil
}

// expandKeysFile expands an AuthorizedKeysFile pattern for a as sshd does:
// %% %h %u %U, then a relative result is taken from the home directory.
// Any other token fails: guessing would read the wrong file.
func expandKeysFile(p string, a account) (string, error) {
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] != '%' {
			b.WriteByte(p[i])
			continue
		}
		if i+1 == len(p) {
			return "", fmt.Errorf("AuthorizedKeysFile %q ends in %%", p)
		}
		i++
		switch p[i] {
		case '%':
			b.WriteByte('%')
		case 'h':
			b.WriteString(a.home)
		case 'u':
			b.WriteString(a.name)
		case 'U':
			b.WriteString(a.uid)
		default:
			return "", fmt.Errorf("AuthorizedKeysFile %q has token %%%c, which the check cannot expand", p, p[i])
		}
	}
	f := b.String()
	if rest, ok := strings.CutPrefix(f, "~/"); ok {
		f = path.Join(a.home, rest)
	}
	if !strings.HasPrefix(f, "/") {
		f = path.Join(a.home, f)
	}
	return f, nil
}

// sourcesScript prints sshd -T twice (as configured, and for login from
// this connection's client address), separated by sep, then the passwd
// database, after sep again. It refuses to run as anyone but root.
func sourcesScript(config, login, sep string) string {
	cfg := ""
	if config != "" {
		cfg = " -f " + shellQuote(config)
	}
	return strings.Join([]string{
		"set -e",
		`PATH="$PATH:/usr/sbin:/sbin"`,
		`if [ "$(id -u)" != 0 ]; then echo "the sources check must run as root (sshd -T reads the host keys)" >&2; exit 1; fi`,
		`a="${SSH_CONNECTION%% *}"`,
		`if [ -z "$a" ]; then echo "no SSH_CONNECTION" >&2; exit 1; fi`,
		"sshd -T" + cfg,
		"printf '%s\\n' " + shellQuote(sep),
		"sshd -T" + cfg + ` -C "user=` + login + `,host=$a,addr=$a"`,
		"printf '%s\\n' " + shellQuote(sep),
		"getent passwd",
	}, "\n")
}

// dumpScript prints every regular file among files (after symbolic
// links, as sshd opens them; sshd ignores anything else), each after a
// header line "SEP PATH". A file that exists but cannot be read fails the
// script.
func dumpScript(files []string, sep string) string {
	var b strings.Builder
	b.WriteString("set -e\n")
	for _, f := range files {
		q := shellQuote(f)
		fmt.Fprintf(&b, "if [ -f %s ]; then printf '%%s %%s\\n' %s %s; cat -- %s; printf '\\n'; fi\n",
			q, shellQuote(sep), q, q)
	}
	return b.String()
}

// nonce returns a random separator that no file on the host can forge.
func nonce() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return "warden-" + hex.EncodeToString(b[:]), nil
}

// keyBlobs decodes authorized_keys blobs (base64 wire-format keys).
func keyBlobs(blobs []string) ([][]byte, error) {
	var out [][]byte
	for _, s := range blobs {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("retired key %q is not base64", firstLine(s))
		}
		out = append(out, b)
	}
	return out, nil
}

// lineHasKey reports whether an authorized_keys line names any of keys,
// whatever options, comment or base64 padding surround it: every field is
// decoded and compared as wire bytes. It is a superset of what sshd reads
// as the line's key, so nothing it would accept slips past.
func lineHasKey(line string, keys [][]byte) bool {
	for _, f := range lineFields(line) {
		f = strings.TrimLeft(f, "#")
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding} {
			b, err := enc.DecodeString(f)
			if err != nil {
				continue
			}
			for _, k := range keys {
				if bytes.Equal(b, k) {
					return true
				}
			}
		}
	}
	return false
}

// findRetired returns the files of a dumpScript output in which a line
// carries any of keys.
func findRetired(out []byte, sep string, keys [][]byte) []string {
	var hits []string
	cur := ""
	for line := range strings.SplitSeq(string(out), "\n") {
		if f, ok := strings.CutPrefix(line, sep+" "); ok {
			cur = f
			continue
		}
		if lineHasKey(line, keys) && !slices.Contains(hits, cur) {
			hits = append(hits, cur)
		}
	}
	return hits
}

// sources runs the step over c, a root session on the host: every file
// sshd reads keys from, for every account, must be free of the retired
// keys.
func (r *rotation) sources(ctx context.Context, c *gossh.Client) error {
	sep, err := nonce()
	if err != nil {
		return fmt.Errorf("rotate: sources: %w", err)
	}
	out, err := run(ctx, c, sourcesScript(r.t.SSHDConfig, r.t.Login, sep))
	if err != nil {
		return fmt.Errorf("rotate: read sshd's effective configuration on %s: %w", r.t.Host.Name, err)
	}
	parts := strings.Split(string(out), sep+"\n")
	if len(parts) != 3 {
		return fmt.Errorf("rotate: unexpected sshd -T output on %s", r.t.Host.Name)
	}
	var src sshdSources
	for _, p := range parts[:2] {
		if err := src.parse([]byte(p)); err != nil {
			return fmt.Errorf("rotate: sshd -T on %s: %w", r.t.Host.Name, err)
		}
	}
	if err := r.scanConfig(ctx, c, &src, sep); err != nil {
		return err
	}
	if src.command != "" {
		return fmt.Errorf("rotate: sshd on %s uses AuthorizedKeysCommand %q, whose keys cannot be checked; the old key may still be accepted",
			r.t.Host.Name, firstLine(src.command))
	}
	accounts, err := parsePasswd([]byte(parts[2]))
	if err != nil {
		return fmt.Errorf("rotate: sources on %s: %w", r.t.Host.Name, err)
	}
	files := slices.Clone(src.caFiles)
	// The default files are read as well: a line in them waits only for
	// an sshd_config edit to open the host again.
	patterns := append(slices.Clone(src.files), ".ssh/authorized_keys", ".ssh/authorized_keys2")
	for _, a := range accounts {
		for _, p := range patterns {
			f, err := expandKeysFile(p, a)
			if err != nil {
				return fmt.Errorf("rotate: sources on %s: %w", r.t.Host.Name, err)
			}
			if strings.ContainsFunc(f, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
				return fmt.Errorf("rotate: sources on %s: key file path %q has a control character", r.t.Host.Name, f)
			}
			if !slices.Contains(files, f) {
				files = append(files, f)
			}
		}
	}
	keys, err := keyBlobs(r.retire)
	if err != nil {
		return fmt.Errorf("rotate: sources: %w", err)
	}
	// One command per a few hundred files keeps each command line short.
	for chunk := range slices.Chunk(files, 200) {
		dump, err := run(ctx, c, dumpScript(chunk, sep))
		if err != nil {
			return fmt.Errorf("rotate: read authorized keys files on %s: %w", r.t.Host.Name, err)
		}
		if hits := findRetired(dump, sep, keys); len(hits) > 0 {
			for i, h := range hits {
				hits[i] = strconv.Quote(h)
			}
			return fmt.Errorf("rotate: a retired key is still authorized on %s in %s; remove it by hand and find out who put it there",
				r.t.Host.Name, strings.Join(hits, ", "))
		}
	}
	r.res.SourcesChecked = len(files)
	return nil
}
