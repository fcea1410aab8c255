package rotate

import (
	"context"
	"encoding/base64"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/internal/sshtest"
)

// TestRotateFindsTheOldKeyPlantedInAuthorizedKeys2 is the attack of issue
// 13: during the grant root authorizes the old key again in a second file
// sshd reads (Debian reads ~/.ssh/authorized_keys2), hidden from the
// gateway's address by from="!127.0.0.1,*". A check that only tries the
// old key from the gateway is refused and reports success, while the key
// still opens the host from anywhere else. The sources step reads every
// file sshd reads and fails.
func TestRotateFindsTheOldKeyPlantedInAuthorizedKeys2(t *testing.T) {
	homes := t.TempDir()
	// %u stands in for the home directory: the test must not write into
	// /root/.ssh of the machine it runs on.
	f := newFixtureWith(t, startVault(t), "", filepath.Join(homes, "%u", "authorized_keys2"))
	planted := filepath.Join(homes, "root", "authorized_keys2")
	if err := os.MkdirAll(filepath.Dir(planted), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, planted, `from="!127.0.0.1,*" `+f.oldLine)
	oldSigner, err := gossh.ParsePrivateKey(f.oldPEM)
	if err != nil {
		t.Fatal(err)
	}

	res, err := Rotate(context.Background(), f.options(), f.target)
	var se *StepError
	if !errors.As(err, &se) || se.Step != StepSources || !strings.Contains(err.Error(), planted) {
		t.Fatalf("err = %v, want a sources failure naming %s", err, planted)
	}
	// Vault moved on to the new, proven key, and the edited file no
	// longer holds the old one: only the planted line keeps it alive.
	if err := sshLogin(t, f.host, kvKeyPEM(t, f.vault, kvSecret)); err != nil {
		t.Errorf("the key in Vault does not log in: %v", err)
	}
	if strings.Contains(f.keysContent(t), blobOf(oldSigner.PublicKey())) {
		t.Error("the old key is still in the edited file")
	}
	if res.NewVersion == 0 {
		t.Error("NewVersion = 0, want the stored version")
	}
	// The planted line is real: from the gateway's address the old key is
	// refused, which is all the old check looked at...
	if err := sshLogin(t, f.host, f.oldPEM); err == nil {
		t.Error("the old key logs in from 127.0.0.1 despite from=!127.0.0.1")
	}
	// ...and from another address it still opens the host.
	if err := sshLoginFrom(t, f.host, f.oldPEM, "127.0.0.2"); err != nil {
		t.Errorf("the planted line does not work from 127.0.0.2 (%v); the test proves nothing", err)
	}

	t.Run("once removed, a retry that retires both keys succeeds", func(t *testing.T) {
		writeFile(t, planted, "")
		t2 := f.target
		t2.Retire = []string{blobOf(oldSigner.PublicKey())}
		var fetched []string
		t2.OnFetch = func(_ context.Context, k gossh.PublicKey) error {
			fetched = append(fetched, blobOf(k))
			return nil
		}
		res2, err := Rotate(context.Background(), f.options(), t2)
		if err != nil {
			t.Fatal(err)
		}
		if res2.OldFingerprint != res.NewFingerprint || len(fetched) != 1 {
			t.Errorf("retry fetched %s (hook saw %d keys), want the first attempt's %s", res2.OldFingerprint, len(fetched), res.NewFingerprint)
		}
		if err := sshLoginFrom(t, f.host, f.oldPEM, "127.0.0.2"); err == nil {
			t.Error("the original key still logs in")
		}
	})
}

// TestRotateRefusesAuthorizedKeysCommand: keys a command prints cannot be
// read, so the rotation cannot say the old key is gone.
func TestRotateRefusesAuthorizedKeysCommand(t *testing.T) {
	f := newFixtureExtra(t, startVault(t), "", "    AuthorizedKeysCommand /bin/true\n    AuthorizedKeysCommandUser nobody\n")
	_, err := Rotate(context.Background(), f.options(), f.target)
	var se *StepError
	if !errors.As(err, &se) || se.Step != StepSources || !strings.Contains(err.Error(), "AuthorizedKeysCommand") {
		t.Fatalf("err = %v, want a sources failure about AuthorizedKeysCommand", err)
	}
}

// TestRotateFindsTheOldKeyAsUserCA: the old key written into the user CA
// file would sign certificates that log in; the CA file is a source too.
func TestRotateFindsTheOldKeyAsUserCA(t *testing.T) {
	f := newFixture(t)
	ca := readConfigValue(t, f.host.ConfigPath, "TrustedUserCAKeys")
	writeFile(t, ca, f.oldLine)
	_, err := Rotate(context.Background(), f.options(), f.target)
	var se *StepError
	if !errors.As(err, &se) || se.Step != StepSources || !strings.Contains(err.Error(), ca) {
		t.Fatalf("err = %v, want a sources failure naming %s", err, ca)
	}
}

func readConfigValue(t *testing.T, file, kw string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, kw+" "); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("%s has no %s", file, kw)
	return ""
}

// sshLoginFrom is sshLogin from another loopback source address.
func sshLoginFrom(t *testing.T, h *sshtest.Host, keyPEM []byte, from string) error {
	t.Helper()
	dir := t.TempDir()
	c := sshtest.NewClient(t, dir)
	c.KeyPath = filepath.Join(dir, "key_under_test")
	writeFileMode(t, c.KeyPath, string(keyPEM), 0o600)
	c.TrustHost(h.Addr, h.HostKey)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	argv := append(c.Args(h.Port), "-b", from, "--", sshtest.Dest("root"), "true")
	out, err := exec.CommandContext(ctx, "ssh", argv...).CombinedOutput()
	if err != nil {
		return errors.New(err.Error() + ": " + strings.TrimSpace(string(out)))
	}
	return nil
}

func TestExpandKeysFile(t *testing.T) {
	a := account{name: "ops", uid: "1001", home: "/home/ops"}
	for _, tt := range []struct{ in, want, err string }{
		{".ssh/authorized_keys", "/home/ops/.ssh/authorized_keys", ""},
		{"%h/.ssh/authorized_keys2", "/home/ops/.ssh/authorized_keys2", ""},
		{"/etc/ssh/keys/%u", "/etc/ssh/keys/ops", ""},
		{"/k/%U/%%u", "/k/1001/%u", ""},
		{"~/.ssh/x", "/home/ops/.ssh/x", ""},
		{"/k/%i", "", "cannot expand"},
		{"/k/%", "", "ends in"},
	} {
		got, err := expandKeysFile(tt.in, a)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: err %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%q = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSSHDT(t *testing.T) {
	var s sshdSources
	if err := s.parse([]byte("port 22\nauthorizedkeysfile .ssh/authorized_keys .ssh/authorized_keys2\nauthorizedkeyscommand none\ntrustedusercakeys none\n")); err != nil {
		t.Fatal(err)
	}
	if err := s.parse([]byte("authorizedkeysfile /etc/keys/%u .ssh/authorized_keys\nauthorizedkeyscommand /usr/bin/lookup %u\ntrustedusercakeys /etc/ssh/ca.pub\n")); err != nil {
		t.Fatal(err)
	}
	if want := []string{".ssh/authorized_keys", ".ssh/authorized_keys2", "/etc/keys/%u"}; !slices.Equal(s.files, want) {
		t.Errorf("files = %q, want %q", s.files, want)
	}
	if s.command != "/usr/bin/lookup %u" || !slices.Equal(s.caFiles, []string{"/etc/ssh/ca.pub"}) {
		t.Errorf("command %q, CA files %q", s.command, s.caFiles)
	}
	if err := (&sshdSources{}).parse([]byte("sshd: no hostkeys available -- exiting.\n")); err == nil {
		t.Error("an answer without authorizedkeysfile parsed")
	}
}

func TestParsePasswd(t *testing.T) {
	as, err := parsePasswd([]byte("root:x:0:0:root:/root:/bin/bash\nops:x:1001:1001::/home/ops:/bin/sh\n"))
	if err != nil || len(as) != 2 || as[1] != (account{"ops", "1001", "/home/ops"}) {
		t.Fatalf("accounts %v, %v", as, err)
	}
	for _, bad := range []string{"", "root:x:0\n", "ops:x:1:1::" + "" + ":/bin/sh\n"} {
		if _, err := parsePasswd([]byte(bad)); err == nil {
			t.Errorf("%q parsed", bad)
		}
	}
}

// TestLineHasKey: the retired key is found under any options, comment,
// separator or base64 padding that sshd would still accept, and a line
// that merely resembles it is not a hit.
func TestLineHasKey(t *testing.T) {
	pub := testKey(t, 1)
	blob := blobOf(pub)
	raw := base64.RawStdEncoding.EncodeToString(pub.Marshal())
	keys, err := keyBlobs([]string{blob})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range []string{
		"ssh-ed25519 " + blob,
		`from="!127.0.0.1,*" ssh-ed25519 ` + blob + " x@y",
		`command="echo hi there",no-pty ssh-ed25519 ` + blob,
		"ssh-ed25519\t" + blob + "\r",
		"cert-authority ssh-ed25519 " + blob,
		"ssh-ed25519 " + raw,
		"#ssh-ed25519 " + blob,
	} {
		if !lineHasKey(line, keys) {
			t.Errorf("%q: retired key not found", line)
		}
	}
	other := blobOf(testKey(t, 2))
	for _, line := range []string{"ssh-ed25519 " + other, "ssh-ed25519 " + blob[:len(blob)-4], ""} {
		if lineHasKey(line, keys) {
			t.Errorf("%q: false hit", line)
		}
	}
}

// TestFindRetiredIgnoresForgedHeaders: a file that prints a fake header
// cannot hide the key; the separator is random per run.
func TestFindRetiredIgnoresForgedHeaders(t *testing.T) {
	pub := testKey(t, 1)
	keys, _ := keyBlobs([]string{blobOf(pub)})
	sep := "warden-0123"
	out := sep + " /a\nwarden-guess /b\nssh-ed25519 " + blobOf(pub) + "\n" + sep + " /c\n"
	if hits := findRetired([]byte(out), sep, keys); !slices.Equal(hits, []string{"/a"}) {
		t.Errorf("hits = %q, want [/a]", hits)
	}
	n1, _ := nonce()
	n2, _ := nonce()
	if n1 == n2 || len(n1) < 30 {
		t.Errorf("nonces %q %q", n1, n2)
	}
}

// TestDumpScriptReadsWhatSshdReads: regular files and links to them are
// read; a directory, a FIFO (which would block cat) and a dangling link
// are skipped, as sshd skips them; paths with quotes stay one word.
func TestDumpScriptReadsWhatSshdReads(t *testing.T) {
	dir := t.TempDir()
	pub := testKey(t, 1)
	line := "ssh-ed25519 " + blobOf(pub) + "\n"
	odd := filepath.Join(dir, "it's $(touch pwned)")
	writeFile(t, odd, line)
	writeFile(t, filepath.Join(dir, "plain"), "# nothing\n")
	if err := os.Symlink(odd, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "gone"), filepath.Join(dir, "dangling")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := exec.Command("mkfifo", filepath.Join(dir, "fifo")).Run(); err != nil {
		t.Fatal(err)
	}
	var files []string
	for _, n := range []string{"plain", "link", "dangling", "adir", "fifo", "missing", "it's $(touch pwned)"} {
		files = append(files, filepath.Join(dir, n))
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "sh", "-c", dumpScript(files, "SEP"))
	cmd.Dir = dir // where an injected "touch pwned" would land
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("dump: %v", err)
	}
	keys, _ := keyBlobs([]string{blobOf(pub)})
	if hits := findRetired(out, "SEP", keys); !slices.Equal(hits, []string{filepath.Join(dir, "link"), odd}) {
		t.Errorf("hits = %q\n%s", hits, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "pwned")); err == nil {
		t.Error("a file name ran as a command")
	}
}

// TestRotateRetiresTheKeyOfAnInterruptedAttempt: an attempt stored a new
// key in Vault and died before removing the old one, so the host accepts
// both. The retry fetches the interrupted attempt's key; only because the
// grant recorded the original key (Target.Retire) does it remove that one
// too. Without it, the key used in the emergency would stay authorized
// while every check passed.
func TestRotateRetiresTheKeyOfAnInterruptedAttempt(t *testing.T) {
	f := newFixture(t)
	oldSigner, err := gossh.ParsePrivateKey(f.oldPEM)
	if err != nil {
		t.Fatal(err)
	}
	// The state the crash left: both keys on the host, Vault on the new.
	mid := sshtest.NewClient(t, "")
	midPEM, err := os.ReadFile(mid.KeyPath)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, f.keysFile, f.oldLine+strings.TrimSpace(string(gossh.MarshalAuthorizedKey(mid.PublicKey)))+" warden-rotate-x\n")
	putKV(t, f.vault, kvSecret, map[string]any{FieldPrivateKey: string(midPEM)})

	tg := f.target
	tg.Retire = []string{blobOf(oldSigner.PublicKey())}
	var fetched gossh.PublicKey
	tg.OnFetch = func(_ context.Context, k gossh.PublicKey) error { fetched = k; return nil }
	res, err := Rotate(context.Background(), f.options(), tg)
	if err != nil {
		t.Fatal(err)
	}
	if fetched == nil || blobOf(fetched) != blobOf(mid.PublicKey) || res.OldFingerprint != gossh.FingerprintSHA256(mid.PublicKey) {
		t.Errorf("fetched %v, result old %s; want the interrupted attempt's key", fetched, res.OldFingerprint)
	}
	for name, pemText := range map[string][]byte{"original": f.oldPEM, "interrupted attempt's": midPEM} {
		if err := sshLogin(t, f.host, pemText); err == nil {
			t.Errorf("the %s key still logs in", name)
		}
	}
	if err := sshLogin(t, f.host, kvKeyPEM(t, f.vault, kvSecret)); err != nil {
		t.Errorf("the key in Vault does not log in: %v", err)
	}
	if n := strings.Count(f.keysContent(t), "\n"); n != 1 {
		t.Errorf("authorized keys has %d lines, want 1:\n%s", n, f.keysContent(t))
	}

	t.Run("an OnFetch failure stops before the host is touched", func(t *testing.T) {
		before := f.keysContent(t)
		tg := f.target
		tg.OnFetch = func(context.Context, gossh.PublicKey) error { return errors.New("database gone") }
		_, err := Rotate(context.Background(), f.options(), tg)
		var se *StepError
		if !errors.As(err, &se) || se.Step != StepFetch {
			t.Fatalf("err = %v, want a fetch failure", err)
		}
		if f.keysContent(t) != before {
			t.Error("the host was changed")
		}
	})
}
