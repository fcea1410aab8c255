package rotate

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/hostkey"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/policy"
)

var allSteps = []string{StepFetch, StepGenerate, StepInstall, StepVerifyNew, StepStore, StepRemoveOld, StepSources, StepCheck}

// testTime is the fixed clock of the tests; it dates the key comment.
var testTime = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// seeded returns a deterministic entropy stream.
func seeded(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return mrand.NewChaCha8(s)
}

// seededKey is the ed25519 key Rotate makes from seeded(seed).
func seededKey(t *testing.T, seed byte) gossh.PublicKey {
	t.Helper()
	s := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(seeded(seed), s); err != nil {
		t.Fatal(err)
	}
	pub, err := gossh.NewPublicKey(ed25519.NewKeyFromSeed(s).Public())
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func TestRotate(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	opt := f.options()
	opt.Now = func() time.Time { return testTime }
	opt.Rand = seeded(1)
	var logs bytes.Buffer
	opt.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	before := kvVersion(t, f.vault, kvSecret)

	res, err := Rotate(ctx, opt, f.target)
	if err != nil {
		t.Fatalf("Rotate: %v", err)
	}
	if !slices.Equal(res.Steps, allSteps) {
		t.Errorf("steps = %v, want %v", res.Steps, allSteps)
	}
	if res.OldVersion != before || res.NewVersion != before+1 {
		t.Errorf("versions %d -> %d, want %d -> %d", res.OldVersion, res.NewVersion, before, before+1)
	}
	if got := kvVersion(t, f.vault, kvSecret); got != before+1 {
		t.Errorf("kv metadata current_version = %d, want exactly %d", got, before+1)
	}
	newPEM := kvKeyPEM(t, f.vault, kvSecret)
	newSigner, err := gossh.ParsePrivateKey(newPEM)
	if err != nil {
		t.Fatalf("the key in Vault does not parse: %v", err)
	}
	wantPub := seededKey(t, 1)
	if got := gossh.FingerprintSHA256(newSigner.PublicKey()); got != res.NewFingerprint || got != gossh.FingerprintSHA256(wantPub) {
		t.Errorf("vault key %s, result says %s, Rand gives %s", got, res.NewFingerprint, gossh.FingerprintSHA256(wantPub))
	}
	if err := sshLogin(t, f.host, f.oldPEM); err == nil {
		t.Error("the old key still logs in with ssh")
	}
	if err := sshLogin(t, f.host, newPEM); err != nil {
		t.Errorf("the new key from Vault does not log in with ssh: %v", err)
	}
	wantLine := keyLine(wantPub, "warden-rotate-20250314T150926Z") + "\n"
	if got := f.keysContent(t); got != wantLine {
		t.Errorf("authorized keys = %q, want exactly one line %q", got, wantLine)
	}
	for _, step := range allSteps {
		if !strings.Contains(logs.String(), "step="+step) {
			t.Errorf("log has no line for step %s:\n%s", step, logs.String())
		}
	}
	for _, pemText := range [][]byte{f.oldPEM, newPEM} {
		for _, line := range strings.Split(string(pemText), "\n")[1:3] {
			if strings.Contains(logs.String(), line) {
				t.Errorf("log holds private key material %q", line)
			}
		}
	}
	s, err := f.vault.KVv2(kvMount).Get(ctx, kvSecret)
	if err != nil {
		t.Fatal(err)
	}
	if s.Data[FieldPublicKey] != strings.TrimSpace(wantLine) || s.Data["note"] != "acme break-glass root" {
		t.Errorf("kv fields: public_key %q, note %q", s.Data[FieldPublicKey], s.Data["note"])
	}

	t.Run("rotating again replaces the rotated key", func(t *testing.T) {
		res2, err := Rotate(ctx, f.options(), f.target)
		if err != nil {
			t.Fatal(err)
		}
		if res2.OldFingerprint != res.NewFingerprint || res2.NewVersion != before+2 {
			t.Errorf("second rotation: old %s (want %s), version %d (want %d)", res2.OldFingerprint, res.NewFingerprint, res2.NewVersion, before+2)
		}
		if err := sshLogin(t, f.host, newPEM); err == nil {
			t.Error("the first rotation's key still logs in")
		}
		if err := sshLogin(t, f.host, kvKeyPEM(t, f.vault, kvSecret)); err != nil {
			t.Errorf("the key in Vault does not log in: %v", err)
		}
		if n := strings.Count(f.keysContent(t), "\n"); n != 1 {
			t.Errorf("authorized keys has %d lines, want 1", n)
		}
	})
}

// TestRotateDropsTheOldLinesOptions: options on the old line may have been
// planted during the grant (command= runs a backdoor at every login); the
// new line must not inherit them.
func TestRotateDropsTheOldLinesOptions(t *testing.T) {
	// The planted command runs the backdoor, then what the client asked,
	// so that the key keeps working and nobody notices.
	mark := filepath.Join(t.TempDir(), "backdoor-ran")
	f := newFixtureWith(t, startVault(t), `command="touch `+mark+`; eval \"$SSH_ORIGINAL_COMMAND\"",no-agent-forwarding`)
	res, err := Rotate(context.Background(), f.options(), f.target)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(mark); err != nil {
		t.Fatalf("the planted command did not run during the rotation (%v); the test proves nothing", err)
	}
	os.Remove(mark)
	defer func() {
		if _, err := os.Stat(mark); err == nil {
			t.Error("the backdoor ran at a login with the new key")
		}
	}()
	got := f.keysContent(t)
	if strings.Contains(got, "command=") || strings.Contains(got, "no-agent-forwarding") || strings.Count(got, "\n") != 1 {
		t.Errorf("authorized keys = %q, want the new key alone, without the old options", got)
	}
	pub, _, opts, _, err := gossh.ParseAuthorizedKey([]byte(got))
	if err != nil || gossh.FingerprintSHA256(pub) != res.NewFingerprint || len(opts) != 0 {
		t.Errorf("line holds %v with options %q (%v), want %s without options", pub, opts, err, res.NewFingerprint)
	}
	if err := sshLogin(t, f.host, kvKeyPEM(t, f.vault, kvSecret)); err != nil {
		t.Errorf("the new key does not log in: %v", err)
	}
}

// onFirstRead is an entropy source that runs do on its first read. Rotate
// reads Rand after its fetch and before its write, which is the window in
// which another party's KV write, or a hung Vault, hits a real rotation.
type onFirstRead struct {
	once sync.Once
	do   func()
	io.Reader
}

func (o *onFirstRead) Read(p []byte) (int, error) {
	o.once.Do(o.do)
	return o.Reader.Read(p)
}

func TestRotateFailures(t *testing.T) {
	vc := startVault(t)
	tests := []struct {
		name  string
		setup func(t *testing.T, f *fixture, opt *Options)
		step  string
		is    error
		says  string
		// kvWrites is how many versions the setup itself adds.
		kvWrites int
	}{
		{
			name: "host down fails install and leaves everything",
			setup: func(t *testing.T, f *fixture, _ *Options) {
				f.target.Host = &policy.Host{Name: "web01", Address: "127.0.0.1:" + sshtest.FreePort(t), HostKey: f.host.HostKey}
			},
			step: StepInstall, is: syscall.ECONNREFUSED,
		},
		{
			name: "wrong host key is refused at install",
			setup: func(t *testing.T, f *fixture, _ *Options) {
				h := *f.target.Host
				h.HostKey = testKey(t, 5)
				f.target.Host = &h
			},
			step: StepInstall, is: hostkey.ErrMismatch,
		},
		{
			name:  "missing secret fails fetch",
			setup: func(t *testing.T, f *fixture, _ *Options) { f.target.KVPath = kvMount + "/data/absent" },
			step:  StepFetch, is: ErrNoSecret,
		},
		{
			name: "garbled secret fails fetch",
			setup: func(t *testing.T, f *fixture, _ *Options) {
				putKV(t, f.vault, "garbled", map[string]any{FieldPrivateKey: "not a key"})
				f.target.KVPath = kvMount + "/data/garbled"
			},
			step: StepFetch, is: ErrBadSecret,
		},
		{
			name: "old key missing from the named file fails install",
			setup: func(t *testing.T, f *fixture, _ *Options) {
				other := filepath.Join(t.TempDir(), "other_keys")
				writeFile(t, other, authLine(t, 3)+"\n")
				f.target.AuthorizedKeys = other
			},
			step: StepInstall, says: "is not in",
		},
		{
			name: "new key that sshd does not read fails verify-new and is removed again",
			setup: func(t *testing.T, f *fixture, _ *Options) {
				// A copy sshd never reads: the old key is found and the
				// new one installed, but it cannot log in.
				copyFile := filepath.Join(t.TempDir(), "copy_keys")
				writeFile(t, copyFile, f.oldLine)
				f.target.AuthorizedKeys = copyFile
				t.Cleanup(func() {
					if b, _ := os.ReadFile(copyFile); string(b) != f.oldLine {
						t.Errorf("copy = %q, want the new key removed again", b)
					}
				})
			},
			step: StepVerifyNew, says: "removed again",
		},
		{
			name: "concurrent kv change fails store and removes the new key",
			setup: func(t *testing.T, f *fixture, opt *Options) {
				opt.Rand = &onFirstRead{Reader: seeded(2), do: func() {
					putKV(t, f.vault, kvSecret, map[string]any{FieldPrivateKey: string(f.oldPEM), "note": "saved by hand"})
				}}
			},
			step: StepStore, is: ErrConflict, says: "removed again", kvWrites: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixtureWith(t, vc, "")
			opt := f.options()
			before := kvVersion(t, vc, kvSecret)
			tt.setup(t, f, &opt)

			res, err := Rotate(context.Background(), opt, f.target)
			var se *StepError
			if !errors.As(err, &se) || se.Step != tt.step {
				t.Fatalf("err = %v, want a StepError at %s", err, tt.step)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("err = %v, want errors.Is %v", err, tt.is)
			}
			if !strings.HasPrefix(err.Error(), "rotate: "+tt.step+": ") || !strings.Contains(err.Error(), tt.says) {
				t.Errorf("err = %q, want it to name step %s and say %q", err, tt.step, tt.says)
			}
			if i := slices.Index(allSteps, tt.step); !slices.Equal(res.Steps, allSteps[:i]) {
				t.Errorf("steps = %v, want %v", res.Steps, allSteps[:i])
			}
			if res.NewVersion != 0 {
				t.Errorf("NewVersion = %d after a failure before the write", res.NewVersion)
			}
			if got := kvVersion(t, vc, kvSecret); got != before+tt.kvWrites {
				t.Errorf("kv version = %d, want %d", got, before+tt.kvWrites)
			}
			f.assertIntact(t)
		})
	}
}

func TestRotateFailureAfterStoreLeavesVaultOnTheNewKey(t *testing.T) {
	// sshd also reads a second file that authorizes the old key, which
	// Rotate was not told about: the old key survives its removal.
	second := filepath.Join(t.TempDir(), "second_keys")
	f := newFixtureWith(t, startVault(t), "", second)
	writeFile(t, second, f.oldLine)
	before := kvVersion(t, f.vault, kvSecret)

	res, err := Rotate(context.Background(), f.options(), f.target)
	var se *StepError
	if !errors.As(err, &se) || se.Step != StepSources || !strings.Contains(err.Error(), "still authorized") || !strings.Contains(err.Error(), second) {
		t.Fatalf("err = %v, want a sources failure naming %s", err, second)
	}
	if !slices.Equal(res.Steps, allSteps[:len(allSteps)-2]) {
		t.Errorf("steps = %v", res.Steps)
	}
	if res.NewVersion != before+1 || kvVersion(t, f.vault, kvSecret) != before+1 {
		t.Errorf("NewVersion = %d, kv at %d; want both %d", res.NewVersion, kvVersion(t, f.vault, kvSecret), before+1)
	}
	if err := sshLogin(t, f.host, kvKeyPEM(t, f.vault, kvSecret)); err != nil {
		t.Errorf("the key in Vault does not log in: %v", err)
	}
	if got := f.keysContent(t); strings.Count(got, "\n") != 1 || !strings.Contains(got, "warden-rotate-") {
		t.Errorf("authorized keys = %q, want only the new key", got)
	}
}

func TestRotateWithVaultGoneAtStoreKeepsBothKeys(t *testing.T) {
	srv, vc := startVaultServer(t)
	f := newFixtureWith(t, vc, "")
	before := kvVersion(t, vc, kvSecret)
	cfg := api.DefaultConfig()
	cfg.Address, cfg.Timeout, cfg.MaxRetries = srv.Addr, 2*time.Second, 0
	impatient, err := api.NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	impatient.SetToken(srv.RootToken)
	opt := f.options()
	opt.Client = impatient
	// Vault hangs after the fetch: neither the write nor the read-back
	// answers, so Rotate cannot know which key Vault holds.
	opt.Rand = &onFirstRead{Reader: seeded(3), do: srv.Pause}

	res, err := Rotate(context.Background(), opt, f.target)
	srv.Resume()
	var se *StepError
	if !errors.As(err, &se) || se.Step != StepStore || !strings.Contains(err.Error(), "both keys stay authorized") {
		t.Fatalf("err = %v, want a store failure that keeps both keys", err)
	}
	got := f.keysContent(t)
	if !strings.HasPrefix(got, f.oldLine) || strings.Count(got, "\n") != 2 || !strings.Contains(got, "warden-rotate-") {
		t.Errorf("authorized keys = %q, want the old and the new key", got)
	}
	if err := sshLogin(t, f.host, f.oldPEM); err != nil {
		t.Errorf("old key no longer logs in: %v", err)
	}
	// Vault may have applied the write it received while hung: whichever
	// version it serves, the key logs in.
	if v := kvVersion(t, vc, kvSecret); v != before && v != before+1 {
		t.Errorf("kv version = %d, want %d or %d", v, before, before+1)
	}
	if err := sshLogin(t, f.host, kvKeyPEM(t, vc, kvSecret)); err != nil {
		t.Errorf("the key in Vault does not log in: %v", err)
	}
	if res.NewFingerprint == "" {
		t.Error("result does not name the new key left on the host")
	}
}

func TestRotateSamePathConcurrently(t *testing.T) {
	f := newFixture(t)
	before := kvVersion(t, f.vault, kvSecret)
	var wg sync.WaitGroup
	results := make([]Result, 2)
	errs := make([]error, 2)
	for i := range results {
		wg.Go(func() { results[i], errs[i] = Rotate(context.Background(), f.options(), f.target) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("rotation %d: %v", i, err)
		}
	}
	if got := kvVersion(t, f.vault, kvSecret); got != before+2 {
		t.Errorf("kv version = %d, want %d", got, before+2)
	}
	if results[0].OldFingerprint == results[1].OldFingerprint {
		t.Errorf("both rotations started from %s: they were not serialized", results[0].OldFingerprint)
	}
	if n := strings.Count(f.keysContent(t), "\n"); n != 1 {
		t.Errorf("authorized keys has %d lines, want 1", n)
	}
	if err := sshLogin(t, f.host, kvKeyPEM(t, f.vault, kvSecret)); err != nil {
		t.Errorf("the key in Vault does not log in: %v", err)
	}
}

func TestRotateRefusesBadTargets(t *testing.T) {
	good := Target{Host: &policy.Host{Name: "web01", Address: "127.0.0.1:22"}, Login: "root", KVPath: kvPath}
	tests := []struct {
		name string
		opt  Options
		edit func(*Target)
		says string
	}{
		{"no vault client", Options{}, func(*Target) {}, "no vault client"},
		{"nil host", optWithClient(t), func(t *Target) { t.Host = nil }, "no host address"},
		{"login with a space", optWithClient(t), func(t *Target) { t.Login = "root x" }, "invalid login"},
		{"login with a newline", optWithClient(t), func(t *Target) { t.Login = "root\n" }, "invalid login"},
		{"kv path without data", optWithClient(t), func(t *Target) { t.KVPath = "secret/x" }, "not a KV v2 data path"},
		{"authorized_keys with a newline", optWithClient(t), func(t *Target) { t.AuthorizedKeys = "k\nreboot" }, "control character"},
		{"authorized_keys climbing out", optWithClient(t), func(t *Target) { t.AuthorizedKeys = "../x/keys" }, `".." segment`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			target := good
			tt.edit(&target)
			res, err := Rotate(context.Background(), tt.opt, target)
			if err == nil || !strings.Contains(err.Error(), tt.says) || len(res.Steps) != 0 {
				t.Fatalf("Rotate = %+v, %v; want an error saying %q", res, err, tt.says)
			}
			var se *StepError
			if errors.As(err, &se) {
				t.Errorf("a refused target is not a step failure: %v", err)
			}
		})
	}
}

// optWithClient returns Options with a Vault client that is never called:
// the target is refused first.
func optWithClient(t *testing.T) Options {
	t.Helper()
	c, err := api.NewClient(api.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	return Options{Client: c}
}
