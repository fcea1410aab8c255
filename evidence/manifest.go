package evidence

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Names of the files that seal a packet.
const (
	ManifestName       = "MANIFEST.sha256"
	SignatureName      = "MANIFEST.sha256.sig"
	AllowedSignersName = "allowed_signers"
	signerIdentity     = "warden" // the -I of ssh-keygen -Y verify
)

// manifest renders the sha256sum listing of files, sorted by name, in the
// exact format "sha256sum -c" reads: 64 hex digits, two spaces, the name.
func manifest(files map[string][]byte) []byte {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	var b bytes.Buffer
	for _, n := range names {
		sum := sha256.Sum256(files[n])
		b.WriteString(hex.EncodeToString(sum[:]) + "  " + n + "\n")
	}
	return b.Bytes()
}

// parseManifest reads a manifest written by manifest: one "HASH  NAME" line
// per file, names plain (no directories), sorted and unique.
func parseManifest(b []byte) (map[string]string, error) {
	out := map[string]string{}
	if len(b) == 0 || b[len(b)-1] != '\n' {
		return nil, errors.New("evidence: manifest: empty or not newline-terminated")
	}
	prev := ""
	for i, line := range strings.Split(string(b[:len(b)-1]), "\n") {
		sum, name, ok := strings.Cut(line, "  ")
		if !ok || len(sum) != 64 || strings.Trim(sum, "0123456789abcdef") != "" {
			return nil, fmt.Errorf("evidence: manifest line %d: want 64 hex digits, two spaces, a name", i+1)
		}
		if !validFileName(name) {
			return nil, fmt.Errorf("evidence: manifest line %d: bad file name %q", i+1, name)
		}
		if name <= prev {
			return nil, fmt.Errorf("evidence: manifest line %d: %q out of order or repeated", i+1, name)
		}
		out[name], prev = sum, name
	}
	return out, nil
}

// validFileName accepts the flat names a packet uses: letters, digits, '.',
// '_' and '-', not starting with '.'. Nothing in a manifest can name a path
// outside the packet.
func validFileName(n string) bool {
	if n == "" || len(n) > 128 || n[0] == '.' {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// allowedSigners is the ssh-keygen allowed_signers line for the evidence
// key, restricted to the evidence namespace. It travels with the packet for
// convenience only: an auditor must compare the key's fingerprint (printed
// in the summary) with one obtained from the MSP out of band, since anyone
// who can rewrite a packet can also replace this file.
func allowedSigners(pub ssh.PublicKey) []byte {
	return []byte(fmt.Sprintf("%s namespaces=%q %s", signerIdentity, Namespace, ssh.MarshalAuthorizedKey(pub)))
}

// seal adds the manifest over every file, its signature, and the
// allowed_signers file (which the manifest also covers) to files.
func seal(files map[string][]byte, signer ssh.Signer) error {
	files[AllowedSignersName] = allowedSigners(signer.PublicKey())
	m := manifest(files)
	sig, err := SignSSHSIG(signer, Namespace, m)
	if err != nil {
		return err
	}
	files[ManifestName], files[SignatureName] = m, sig
	return nil
}

// VerifyPacket checks a packet directory the way an auditor's tools do:
// every file is listed in the manifest with its SHA-256, nothing else is
// in the directory, and the manifest's sshsig signature is valid. It
// returns the key that signed; whether that key is trusted is the
// caller's decision (compare its fingerprint with a known one).
func VerifyPacket(dir string) (ssh.PublicKey, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("evidence: verify: %w", err)
	}
	files := map[string][]byte{}
	for _, e := range entries {
		if !e.Type().IsRegular() {
			return nil, fmt.Errorf("evidence: verify: %s is not a regular file", e.Name())
		}
		if files[e.Name()], err = os.ReadFile(filepath.Join(dir, e.Name())); err != nil {
			return nil, fmt.Errorf("evidence: verify: %w", err)
		}
	}
	return verifyFiles(files)
}

// VerifyPacketOf is VerifyPacket for the packet that dir is listed as:
// tenant's packet of month (YYYY-MM). The signature covers what a packet
// says, not where it lies, so a signed packet copied over another month's
// (a quiet month hiding one with a break-glass use) or, under a key shared
// by every tenant, over another tenant's, would verify. Its summary.json,
// which the manifest covers, names its tenant and month; both must be the
// ones asked for, and the packet must hold a summary at all.
func VerifyPacketOf(dir, tenant, month string) (ssh.PublicKey, error) {
	key, err := VerifyPacket(dir)
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(filepath.Join(dir, "summary.json"))
	if err != nil {
		return nil, errors.New("evidence: verify: the packet has no summary.json")
	}
	var s struct {
		Tenant string `json:"tenant"`
		Month  string `json:"month"`
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("evidence: verify: summary.json: %w", err)
	}
	if s.Tenant != tenant || s.Month != month {
		return nil, fmt.Errorf("evidence: verify: the packet is %.64q's of %.16q, not %s's of %s", s.Tenant, s.Month, tenant, month)
	}
	return key, nil
}

// verifyFiles is VerifyPacket on the packet's files in memory.
func verifyFiles(files map[string][]byte) (ssh.PublicKey, error) {
	m, ok := files[ManifestName]
	if !ok {
		return nil, errors.New("evidence: verify: no " + ManifestName)
	}
	key, err := VerifySSHSIG(files[SignatureName], Namespace, m)
	if err != nil {
		return nil, err
	}
	listed, err := parseManifest(m)
	if err != nil {
		return nil, err
	}
	for n := range files {
		if n != ManifestName && n != SignatureName && listed[n] == "" {
			return nil, fmt.Errorf("evidence: verify: %s is not in the manifest", n)
		}
	}
	for name, want := range listed {
		data, ok := files[name]
		if !ok {
			return nil, fmt.Errorf("evidence: verify: %s is missing", name)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != want {
			return nil, fmt.Errorf("evidence: verify: %s does not match the manifest", name)
		}
	}
	return key, nil
}
