package evidence

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/crypto/ssh"
)

// Namespace is the sshsig namespace of evidence signatures. OpenSSH binds a
// signature to its namespace, so a signature over a manifest cannot be
// replayed as, say, a git commit signature made with the same key.
const Namespace = "warden-evidence"

// sshsig wire constants (OpenSSH PROTOCOL.sshsig).
const (
	sigMagic     = "SSHSIG"
	sigVersion   = 1
	sigHashAlg   = "sha512" // what ssh-keygen -Y sign uses by default
	armorBegin   = "-----BEGIN SSH SIGNATURE-----"
	armorEnd     = "-----END SSH SIGNATURE-----"
	armorColumns = 76
)

// SignSSHSIG signs message in the sshsig format of OpenSSH and returns the
// armored signature, which "ssh-keygen -Y verify -n NAMESPACE" checks.
// What is signed is the blob "SSHSIG" || string(namespace) || string("") ||
// string("sha512") || string(SHA-512(message)).
func SignSSHSIG(signer ssh.Signer, namespace string, message []byte) ([]byte, error) {
	if namespace == "" {
		return nil, errors.New("evidence: sshsig: empty namespace")
	}
	h := sha512.Sum512(message)
	data := signedData(namespace, sigHashAlg, h[:])
	var sig *ssh.Signature
	var err error
	if as, ok := signer.(ssh.AlgorithmSigner); ok && signer.PublicKey().Type() == ssh.KeyAlgoRSA {
		// OpenSSH refuses SHA-1 ("ssh-rsa") signatures in sshsig.
		sig, err = as.SignWithAlgorithm(rand.Reader, data, ssh.KeyAlgoRSASHA512)
	} else {
		sig, err = signer.Sign(rand.Reader, data)
	}
	if err != nil {
		return nil, fmt.Errorf("evidence: sshsig: sign: %w", err)
	}
	var blob []byte
	blob = append(blob, sigMagic...)
	blob = binary.BigEndian.AppendUint32(blob, sigVersion)
	blob = appendString(blob, signer.PublicKey().Marshal())
	blob = appendString(blob, []byte(namespace))
	blob = appendString(blob, nil) // reserved
	blob = appendString(blob, []byte(sigHashAlg))
	blob = appendString(blob, ssh.Marshal(sig))
	return armor(blob), nil
}

// VerifySSHSIG checks an armored sshsig signature over message in
// namespace and returns the public key that made it. The caller must still
// decide whether it trusts that key (compare its fingerprint with one known
// out of band): a signature proves only that the holder of the key signed.
func VerifySSHSIG(armored []byte, namespace string, message []byte) (ssh.PublicKey, error) {
	blob, err := unarmor(armored)
	if err != nil {
		return nil, err
	}
	sig, err := parseSigBlob(blob)
	if err != nil {
		return nil, err
	}
	if sig.namespace != namespace {
		return nil, fmt.Errorf("evidence: sshsig: namespace %q, want %q", sig.namespace, namespace)
	}
	var h []byte
	switch sig.hashAlg {
	case "sha512":
		s := sha512.Sum512(message)
		h = s[:]
	case "sha256":
		s := sha256.Sum256(message)
		h = s[:]
	default:
		return nil, fmt.Errorf("evidence: sshsig: unsupported hash %q", sig.hashAlg)
	}
	if sig.sig.Format == ssh.KeyAlgoRSA {
		return nil, errors.New("evidence: sshsig: SHA-1 RSA signatures are refused")
	}
	if err := sig.key.Verify(signedData(namespace, sig.hashAlg, h), sig.sig); err != nil {
		return nil, fmt.Errorf("evidence: sshsig: bad signature: %w", err)
	}
	return sig.key, nil
}

// signedData is the blob that the key actually signs.
func signedData(namespace, hashAlg string, hash []byte) []byte {
	var b []byte
	b = append(b, sigMagic...)
	b = appendString(b, []byte(namespace))
	b = appendString(b, nil) // reserved
	b = appendString(b, []byte(hashAlg))
	return appendString(b, hash)
}

func appendString(b, s []byte) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

// armor wraps blob the way ssh-keygen does: base64 in lines of 76.
func armor(blob []byte) []byte {
	enc := base64.StdEncoding.EncodeToString(blob)
	var b bytes.Buffer
	b.WriteString(armorBegin + "\n")
	for len(enc) > armorColumns {
		b.WriteString(enc[:armorColumns] + "\n")
		enc = enc[armorColumns:]
	}
	b.WriteString(enc + "\n" + armorEnd + "\n")
	return b.Bytes()
}

// maxSigSize bounds what the parser accepts; real signatures are < 2 kB.
const maxSigSize = 64 << 10

// unarmor reads exactly what armor writes (any line length): the
// header line, lines of strict base64, the footer line, and at most a final
// newline. A verifier that tolerated variations would accept files whose
// bytes differ from the ones that were signed and shipped.
func unarmor(armored []byte) ([]byte, error) {
	if len(armored) > maxSigSize {
		return nil, errors.New("evidence: sshsig: signature too large")
	}
	lines := strings.Split(strings.TrimSuffix(string(armored), "\n"), "\n")
	if len(lines) < 3 || lines[0] != armorBegin || lines[len(lines)-1] != armorEnd {
		return nil, errors.New("evidence: sshsig: want " + armorBegin + ", base64 lines, " + armorEnd)
	}
	body := lines[1 : len(lines)-1]
	for _, l := range body {
		if l == "" || strings.Trim(l, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=") != "" {
			return nil, errors.New("evidence: sshsig: bad armor line")
		}
	}
	// Strict: padding bits must be zero, so no two encodings decode alike.
	blob, err := base64.StdEncoding.Strict().DecodeString(strings.Join(body, ""))
	if err != nil {
		return nil, fmt.Errorf("evidence: sshsig: bad base64: %w", err)
	}
	return blob, nil
}

// parsedSig is a decoded sshsig blob.
type parsedSig struct {
	key       ssh.PublicKey
	namespace string
	hashAlg   string
	sig       *ssh.Signature
}

func parseSigBlob(b []byte) (*parsedSig, error) {
	rest, ok := bytes.CutPrefix(b, []byte(sigMagic))
	if !ok || len(rest) < 4 {
		return nil, errors.New("evidence: sshsig: not an SSHSIG blob")
	}
	if v := binary.BigEndian.Uint32(rest); v != sigVersion {
		return nil, fmt.Errorf("evidence: sshsig: unsupported version %d", v)
	}
	rest = rest[4:]
	var fields [5][]byte
	for i := range fields {
		if fields[i], rest, ok = readString(rest); !ok {
			return nil, errors.New("evidence: sshsig: truncated blob")
		}
	}
	if len(rest) != 0 {
		return nil, errors.New("evidence: sshsig: trailing bytes after the signature")
	}
	key, err := ssh.ParsePublicKey(fields[0])
	if err != nil {
		return nil, fmt.Errorf("evidence: sshsig: public key: %w", err)
	}
	if len(fields[2]) != 0 {
		return nil, errors.New("evidence: sshsig: reserved field is not empty")
	}
	sig := new(ssh.Signature)
	if err := ssh.Unmarshal(fields[4], sig); err != nil {
		return nil, fmt.Errorf("evidence: sshsig: signature: %w", err)
	}
	return &parsedSig{key: key, namespace: string(fields[1]), hashAlg: string(fields[3]), sig: sig}, nil
}

func readString(b []byte) (s, rest []byte, ok bool) {
	if len(b) < 4 {
		return nil, nil, false
	}
	n := binary.BigEndian.Uint32(b)
	if uint64(n) > uint64(len(b)-4) {
		return nil, nil, false
	}
	return b[4 : 4+n], b[4+n:], true
}
