package evidence

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

func newSigner(t testing.TB) ssh.Signer {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := ssh.NewSignerFromKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSSHSIGVerifiesWithStockSSHKeygen(t *testing.T) {
	dir := t.TempDir()
	signer := newSigner(t)
	msg := []byte("abc  requests.csv\n")
	sig, err := SignSSHSIG(signer, Namespace, msg)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(string(sig), "\n"), "\n")
	if lines[0] != armorBegin || lines[len(lines)-1] != armorEnd {
		t.Fatalf("armor:\n%s", sig)
	}
	for _, l := range lines[1 : len(lines)-1] {
		if len(l) > armorColumns {
			t.Fatalf("armor line of %d columns", len(l))
		}
	}
	signers := filepath.Join(dir, "allowed_signers")
	writeFile(t, signers, allowedSigners(signer.PublicKey()))
	sigPath := filepath.Join(dir, "msg.sig")
	writeFile(t, sigPath, sig)

	if out, err := sshKeygenVerify(t, signers, Namespace, sigPath, msg); err != nil {
		t.Fatalf("ssh-keygen -Y verify refused our signature: %v\n%s", err, out)
	}
	tampered := bytes.Clone(msg)
	tampered[0] ^= 1
	if _, err := sshKeygenVerify(t, signers, Namespace, sigPath, tampered); err == nil {
		t.Fatal("ssh-keygen accepted the signature over a changed message")
	}
	if _, err := sshKeygenVerify(t, signers, "git", sigPath, msg); err == nil {
		t.Fatal("ssh-keygen accepted the signature in another namespace")
	}
}

// TestSSHSIGMatchesSSHKeygenByteForByte signs with a key made by ssh-keygen:
// Ed25519 signatures are deterministic, so our signature blob must equal
// ssh-keygen -Y sign's, and each side must verify the other's. Only the
// armor's line length differs: PROTOCOL.sshsig says 76 columns, which we
// follow, while ssh-keygen happens to wrap at 70.
func TestSSHSIGMatchesSSHKeygenByteForByte(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "id_ed25519")
	runTool(t, "ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "", "-f", key)
	msgPath := filepath.Join(dir, "MANIFEST.sha256")
	msg := []byte("0123  a.csv\n4567  b.json\n")
	writeFile(t, msgPath, msg)
	runTool(t, "ssh-keygen", "-q", "-Y", "sign", "-f", key, "-n", Namespace, msgPath)
	theirs, err := os.ReadFile(msgPath + ".sig")
	if err != nil {
		t.Fatal(err)
	}
	pem, err := os.ReadFile(key)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := SignSSHSIG(signer, Namespace, msg)
	if err != nil {
		t.Fatal(err)
	}
	ourBlob, err1 := unarmor(ours)
	theirBlob, err2 := unarmor(theirs)
	if err1 != nil || err2 != nil || !bytes.Equal(ourBlob, theirBlob) {
		t.Fatalf("signatures differ (%v, %v):\nours:\n%s\nssh-keygen:\n%s", err1, err2, ours, theirs)
	}
	got, err := VerifySSHSIG(theirs, Namespace, msg)
	if err != nil || !bytes.Equal(got.Marshal(), signer.PublicKey().Marshal()) {
		t.Fatalf("VerifySSHSIG(ssh-keygen's signature) = %v, %v", got, err)
	}
}

func TestSSHSIGWithRSAKeyUsesSHA512Signatures(t *testing.T) {
	dir := t.TempDir()
	key := filepath.Join(dir, "id_rsa")
	runTool(t, "ssh-keygen", "-q", "-t", "rsa", "-b", "2048", "-N", "", "-C", "", "-f", key)
	pem, _ := os.ReadFile(key)
	signer, err := ssh.ParsePrivateKey(pem)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte("rsa manifest\n")
	sig, err := SignSSHSIG(signer, Namespace, msg)
	if err != nil {
		t.Fatal(err)
	}
	signers, sigPath := filepath.Join(dir, "allowed_signers"), filepath.Join(dir, "m.sig")
	writeFile(t, signers, allowedSigners(signer.PublicKey()))
	writeFile(t, sigPath, sig)
	if out, err := sshKeygenVerify(t, signers, Namespace, sigPath, msg); err != nil {
		t.Fatalf("ssh-keygen refused the RSA signature: %v\n%s", err, out)
	}
	if _, err := VerifySSHSIG(sig, Namespace, msg); err != nil {
		t.Fatal(err)
	}
}

func TestVerifySSHSIGRefusals(t *testing.T) {
	signer := newSigner(t)
	msg := []byte("manifest\n")
	sig, err := SignSSHSIG(signer, Namespace, msg)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := unarmor(sig)
	if err != nil {
		t.Fatal(err)
	}
	reblob := func(f func([]byte) []byte) []byte { return armor(f(bytes.Clone(blob))) }
	for name, tc := range map[string]struct {
		sig       []byte
		namespace string
		msg       []byte
	}{
		"changed message":   {sig, Namespace, []byte("manifest!\n")},
		"other namespace":   {sig, "file", msg},
		"no armor":          {blob, Namespace, msg},
		"bad base64":        {[]byte(armorBegin + "\n!!!!\n" + armorEnd + "\n"), Namespace, msg},
		"truncated blob":    {reblob(func(b []byte) []byte { return b[:len(b)-10] }), Namespace, msg},
		"trailing bytes":    {reblob(func(b []byte) []byte { return append(b, 0) }), Namespace, msg},
		"version 2":         {reblob(func(b []byte) []byte { b[9] = 2; return b }), Namespace, msg},
		"wrong magic":       {reblob(func(b []byte) []byte { b[0] = 'X'; return b }), Namespace, msg},
		"flipped signature": {reblob(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), Namespace, msg},
		"oversized input":   {bytes.Repeat([]byte("A"), maxSigSize+1), Namespace, msg},
	} {
		if _, err := VerifySSHSIG(tc.sig, tc.namespace, tc.msg); err == nil || !strings.HasPrefix(err.Error(), "evidence: sshsig: ") {
			t.Errorf("%s: VerifySSHSIG = %v, want an evidence: sshsig: error", name, err)
		}
	}
	if _, err := VerifySSHSIG(sig, Namespace, msg); err != nil {
		t.Fatalf("the untouched signature no longer verifies: %v", err)
	}
}

func FuzzVerifySSHSIG(f *testing.F) {
	signer := newSigner(f)
	sig, _ := SignSSHSIG(signer, Namespace, []byte("m"))
	f.Add(sig, []byte("m"))
	f.Add([]byte(armorBegin+"\nU1NIU0lH\n"+armorEnd), []byte(""))
	f.Fuzz(func(t *testing.T, sig, msg []byte) {
		key, err := VerifySSHSIG(sig, Namespace, msg)
		if (err == nil) != (key != nil) {
			t.Fatalf("VerifySSHSIG = %v, %v", key, err)
		}
	})
}
