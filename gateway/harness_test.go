package gateway_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/vault/api"
	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/exceptions"
	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/identity"
	"github.com/warden-gw/warden/internal/keyfile"
	"github.com/warden-gw/warden/internal/s3test"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/internal/storetest"
	"github.com/warden-gw/warden/internal/vaulttest"
	"github.com/warden-gw/warden/jit"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/recstore"
	"github.com/warden-gw/warden/rotate"
	"github.com/warden-gw/warden/vault"
)

// testbed is a gateway in front of a real OpenSSH sshd, with real clients:
// alice has standing root access to web01, bob may request prod-root (root
// on web01), carol approves, and the managed host trusts only the
// gateway's CA.
type testbed struct {
	t         testing.TB
	dir       string
	data      string
	host      *sshtest.Host
	gw        *gateway.Server
	port      string
	store     *audit.Store
	jit       *jit.Service
	alice     *sshtest.Client
	bob       *sshtest.Client
	carol     *sshtest.Client // approver (security)
	dave      *sshtest.Client // approver (management)
	erin      *sshtest.Client // auditor
	stranger  *sshtest.Client
	hostKey   gossh.PublicKey // gateway host key
	cfg       *policy.Config
	directory *identity.Directory // with bedOptions.identity
	recs      *recstore.S3        // with bedOptions.s3
	uploads   *recstore.Uploader  // with bedOptions.s3
}

// bedOptions changes the testbed's policy.
type bedOptions struct {
	// hostAddr overrides web01's address (a closed port: host down).
	hostAddr string
	// pinKey overrides web01's pinned key (a wrong key: mismatch).
	pinKey string
	// extraHosts is appended under tenant acme's hosts.
	extraPolicy string
	recording   string // recording: block override
	// prepare runs on the data directory before the gateway starts.
	prepare func(data string)
	// hostCA makes the managed host present a certificate from this CA.
	hostCA gossh.Signer
	// vault switches the credential backend to this real Vault server;
	// vaultToken is the token Warden uses (default: the root token).
	vault      *vaulttest.Server
	vaultToken string
	vaultAuth  *vault.AuthConfig // overrides the token
	// hostExtra is appended to the managed host's sshd_config.
	hostExtra string
	// breakGlass, when set, gives the gateway a Vault KV client for static
	// break-glass credentials and their rotation (authorizedKeys: the
	// host's AuthorizedKeysFile).
	breakGlass     *vaulttest.Server
	authorizedKeys string
	extraRoles     string // appended to roles
	credsOverride  string // replaces the credentials block
	// verify returns web01's host verification line (host_key: ...,
	// known_hosts: ... or host_ca: ...) instead of the pinned key.
	verify func(h *sshtest.Host) string
	// tenants returns more tenants, appended after extraPolicy; it is
	// given the managed host so that their hosts can reach it.
	tenants func(h *sshtest.Host) string
	// extraGroups and extraUsers are appended to groups and users.
	extraGroups, extraUsers string
	// identity is an identity: section; with directories, the testbed
	// opens b.dir and the gateway and workflow use its merged policy.
	identity string
	// configure adjusts the gateway's options before it is built, once
	// the store is open (e2e_sso_test.go adds single sign-on).
	configure func(b *testbed, o *gateway.Options)
	// requestTimeout overrides the gateway's RequestTimeout (default 30s).
	requestTimeout time.Duration
	// s3 sends recordings to this real S3 server (recordings.store: s3,
	// prefix "recordings/"), uploading every uploadInterval (default 1s).
	s3             *s3test.Server
	uploadInterval time.Duration
	// store adjusts the store's options before it opens (cluster tests:
	// a shared PostgreSQL database and a node ID).
	store func(o *audit.Options)
}

func newTestbed(t testing.TB, opt bedOptions) *testbed {
	t.Helper()
	dir := t.TempDir()
	b := &testbed{t: t, dir: dir, data: filepath.Join(dir, "data")}
	ctx := context.Background()

	ca, caKey, creds := b.signer(opt)
	if opt.credsOverride != "" {
		creds = opt.credsOverride
	}
	// ExposeAuthInfo lets a test read, from inside the session, the very
	// certificate the host accepted ($SSH_USER_AUTH).
	b.host = sshtest.StartHost(t, sshtest.HostOptions{TrustedUserCAKeys: []gossh.PublicKey{caKey}, HostCA: opt.hostCA,
		ExtraConfig: "ExposeAuthInfo yes\n" + opt.hostExtra})

	b.alice = newClient(t, filepath.Join(dir, "alice"))
	b.bob = newClient(t, filepath.Join(dir, "bob"))
	b.carol = newClient(t, filepath.Join(dir, "carol"))
	b.dave = newClient(t, filepath.Join(dir, "dave"))
	b.erin = newClient(t, filepath.Join(dir, "erin"))
	b.stranger = newClient(t, filepath.Join(dir, "stranger"))

	addr := b.host.Addr
	if opt.hostAddr != "" {
		addr = opt.hostAddr
	}
	verify := fmt.Sprintf("host_key: %q", authorizedKey(b.host.HostKey))
	switch {
	case opt.pinKey != "":
		verify = fmt.Sprintf("host_key: %q", opt.pinKey)
	case opt.verify != nil:
		verify = opt.verify(b.host)
	}
	tenants := ""
	if opt.tenants != nil {
		tenants = opt.tenants(b.host)
	}
	rec := opt.recording
	if rec == "" {
		rec = "recording:\n  input: true\n  on_failure: terminate\n"
	}
	yaml := fmt.Sprintf(`listen: "127.0.0.1:0"
host_key: %s
data_dir: %s
%s%stenants:
  - name: acme
    hosts:
      - name: web01
        address: %q
        %s
        labels: {env: prod, tier: web}
%s
groups:
  - name: sysadmins
  - name: security
  - name: helpdesk
  - name: management
  - name: auditors
%susers:
  - name: alice
    keys: [%q]
    groups: [sysadmins]
  - name: bob
    keys: [%q]
    groups: [helpdesk]
  - name: carol
    keys: [%q]
    groups: [security]
  - name: dave
    keys: [%q]
    groups: [management]
  - name: erin
    keys: [%q]
    groups: [auditors]
%sroles:
  - name: web-admin
    tenant: acme
    hosts: {labels: {tier: web}}
    logins: [root]
    members: [sysadmins]
    commands: {deny: ['^rm -rf /', '^shutdown']}
  - name: prod-root
    tenant: acme
    hosts: {labels: {env: prod}}
    logins: [root]
    privileged: true
    eligible: [helpdesk]
    approvers: [security]
    max_duration: 2h
%s%s`, filepath.Join(dir, "gw_host_ed25519"), b.data, creds, rec, addr, verify, opt.extraPolicy+tenants, opt.extraGroups,
		authorizedKey(b.alice.PublicKey), authorizedKey(b.bob.PublicKey), authorizedKey(b.carol.PublicKey), authorizedKey(b.dave.PublicKey), authorizedKey(b.erin.PublicKey), opt.extraUsers, opt.extraRoles, opt.identity)
	cfgPath := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	var err error
	b.cfg, err = policy.Load(cfgPath)
	if err != nil {
		t.Fatalf("policy: %v", err)
	}
	if opt.prepare != nil {
		opt.prepare(b.data)
	}
	aopt := audit.Options{OutputIndex: true}
	if opt.s3 != nil {
		if b.recs, err = recstore.OpenS3(opt.s3.Config("recordings/"), b.data); err != nil {
			t.Fatal(err)
		}
		aopt.Recordings = b.recs
	}
	if opt.store != nil {
		opt.store(&aopt)
	}
	b.store, err = audit.Open(ctx, b.data, aopt)
	if err != nil {
		t.Fatal(err)
	}
	hk, _, err := keyfile.LoadOrCreateEd25519(b.cfg.HostKey)
	if err != nil {
		t.Fatal(err)
	}
	b.hostKey = hk.PublicKey()
	if opt.identity != "" {
		b.directory, err = identity.Open(ctx, identity.Options{Store: b.store, Policy: func() *policy.Config { return b.cfg }})
		if err != nil {
			t.Fatal(err)
		}
	}
	b.jit, err = jit.New(jit.Options{Store: b.store, Policy: func() *policy.Config {
		if b.directory != nil {
			return b.directory.Merge(b.cfg) // directory users, as the gateway sees them
		}
		return b.cfg
	}})
	if err != nil {
		t.Fatal(err)
	}
	gopt := gateway.Options{Policy: b.cfg, Store: b.store, Signer: ca, HostKey: hk, DialTimeout: 5 * time.Second,
		JIT: b.jit, Exceptions: &exceptions.Register{Store: b.store, DB: b.store.DB()}, RequestTimeout: opt.requestTimeout}
	if opt.breakGlass != nil {
		kv := testKV{c: opt.breakGlass.Client(), authorizedKeys: opt.authorizedKeys, sshdConfig: b.host.ConfigPath}
		gopt.StaticKeys, gopt.Rotator = kv, kv
	}
	if b.recs != nil {
		interval := opt.uploadInterval
		if interval == 0 {
			interval = time.Second
		}
		b.uploads = recstore.NewUploader(b.recs, recstore.Options{Interval: interval,
			Events: func(ctx context.Context, typ, subject string, data map[string]any) error {
				return b.store.Append(ctx, audit.Event{Type: typ, Actor: "warden", Subject: subject, Data: data})
			}})
		gopt.Uploads = b.uploads
	}
	if opt.configure != nil {
		opt.configure(b, &gopt)
	}
	b.gw, err = gateway.New(gopt)
	if err != nil {
		t.Fatal(err)
	}
	b.jit.OnGrantEnd(b.gw.GrantEnded)
	if b.directory != nil {
		b.gw.UseDirectory(b.directory)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	_, b.port, _ = net.SplitHostPort(ln.Addr().String())
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	jitDone := make(chan struct{})
	go func() { done <- b.gw.Serve(sctx, ln) }()
	go func() { defer close(jitDone); b.jit.Run(sctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		<-jitDone
		if b.uploads != nil {
			b.uploads.Close(time.Second)
		}
		b.store.Close()
	})
	for _, c := range []*sshtest.Client{b.alice, b.bob, b.carol, b.dave, b.erin, b.stranger} {
		c.TrustHost(ln.Addr().String(), b.hostKey)
	}
	return b
}

// gatewaySigner is what the gateway needs of a credential backend.
type gatewaySigner interface {
	Sign(ctx context.Context, r vault.SignRequest) (*vault.Credential, error)
}

// signer opens the built-in CA, or the real Vault of opt, and returns it,
// its CA key (the only one the managed host will trust) and the policy's
// credentials block.
func (b *testbed) signer(opt bedOptions) (gatewaySigner, gossh.PublicKey, string) {
	t, ctx := b.t, context.Background()
	if opt.vault == nil {
		ca, err := vault.OpenBuiltin(b.data, vault.BuiltinOptions{})
		if err != nil {
			t.Fatal(err)
		}
		key, err := ca.CAPublicKey(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return ca, key, "credentials:\n  backend: builtin\n  cert_ttl: 2m\n"
	}
	res, err := vault.Setup(ctx, vault.SetupOptions{Address: opt.vault.Addr, Token: opt.vault.RootToken, TTL: 2 * time.Minute, MaxTTL: time.Hour})
	if err != nil {
		t.Fatalf("vault setup: %v", err)
	}
	token := opt.vaultToken
	if token == "" {
		token = opt.vault.RootToken
	}
	sctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	auth := vault.AuthConfig{Method: "token", Token: token}
	if opt.vaultAuth != nil {
		auth = *opt.vaultAuth
	}
	v, err := vault.OpenVault(sctx, vault.VaultOptions{
		Address: opt.vault.Addr, Mount: "ssh", Role: "warden", Timeout: 2 * time.Second, Auth: auth,
	})
	if err != nil {
		t.Fatalf("open vault: %v", err)
	}
	t.Cleanup(v.Close)
	creds := fmt.Sprintf("credentials:\n  backend: vault\n  cert_ttl: 2m\n  vault:\n    address: %s\n    mount: ssh\n    role: warden\n    timeout: 2s\n", opt.vault.Addr)
	return v, res.CAPublicKey, creds
}

func authorizedKey(k gossh.PublicKey) string {
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k)))
}

func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// run runs a real ssh command and returns stdout, stderr and exit code.
func (b *testbed) run(c *sshtest.Client, user string, args ...string) (string, string, int) {
	b.t.Helper()
	cmd := c.SSH(testCtx(b.t), b.port, user, args...)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(interface{ ExitCode() int })
		if !ok {
			b.t.Fatalf("ssh: %v", err)
		}
		code = ee.ExitCode()
	}
	return out.String(), errb.String(), code
}

// db opens the data directory's database read-only, as an auditor would
// (on PostgreSQL under the harness switch, WARDEN_STORE).
func (b *testbed) db() *sql.DB {
	b.t.Helper()
	return storetest.DB(b.t, b.data)
}

// waitSessionEnded waits until the session row is closed and returns it.
func (b *testbed) waitSessionEnded(id string) audit.Session {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		s, err := b.store.Session(context.Background(), id)
		if err == nil && !s.EndedAt.IsZero() {
			return s
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("session %s not ended (err %v, row %+v)", id, err, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lastSession returns the newest session row of user, waiting until it
// has ended.
func (b *testbed) lastSession(user string) audit.Session {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err := b.store.Sessions(context.Background(), audit.SessionFilter{User: user, Limit: 1})
		if err == nil && len(list) == 1 && !list[0].EndedAt.IsZero() {
			return list[0]
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("no ended session for %s (err %v, %+v)", user, err, list)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// commands returns the command log of a session.
func (b *testbed) commands(sessionID string) []audit.Command {
	b.t.Helper()
	list, err := b.store.Commands(context.Background(), audit.CommandFilter{SessionID: sessionID})
	if err != nil {
		b.t.Fatal(err)
	}
	return list
}

// events returns the audit events of the given type.
func (b *testbed) events(typ string) []audit.Event {
	b.t.Helper()
	all, err := b.store.Events(context.Background(), 0, 100000)
	if err != nil {
		b.t.Fatal(err)
	}
	var out []audit.Event
	for _, e := range all {
		if e.Type == typ {
			out = append(out, e)
		}
	}
	return out
}

// waitEvent waits for an audit event of typ whose fields contain substr.
func (b *testbed) waitEvent(typ, substr string) audit.Event {
	b.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		for _, e := range b.events(typ) {
			if strings.Contains(fmt.Sprint(e.Actor, e.Subject, e.Data), substr) {
				return e
			}
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("no %s event containing %q; have %+v", typ, substr, b.events(typ))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// userCert signs pub with the gateway's built-in CA, as the gateway would,
// for clients that go straight to sshd (the benchmarks' "direct" baseline).
func (b *testbed) userCert(pub gossh.PublicKey, keyID string, principals ...string) *gossh.Certificate {
	b.t.Helper()
	raw, err := os.ReadFile(filepath.Join(b.data, "ca_ed25519"))
	if err != nil {
		b.t.Fatal(err)
	}
	ca, err := gossh.ParsePrivateKey(raw)
	if err != nil {
		b.t.Fatal(err)
	}
	c := &gossh.Certificate{
		Key: pub, CertType: gossh.UserCert, KeyId: keyID, ValidPrincipals: principals,
		ValidAfter: uint64(time.Now().Add(-time.Minute).Unix()), ValidBefore: uint64(time.Now().Add(time.Hour).Unix()),
		Permissions: gossh.Permissions{Extensions: map[string]string{"permit-pty": "", "permit-port-forwarding": ""}},
	}
	if err := c.SignCert(rand.Reader, ca); err != nil {
		b.t.Fatal(err)
	}
	return c
}

func newClient(t testing.TB, dir string) *sshtest.Client {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return sshtest.NewClient(t, dir)
}

// sshWith runs ssh with extra options. They come first because ssh keeps
// the first value given for an option.
func (b *testbed) sshWith(ctx context.Context, c *sshtest.Client, opts []string, user string, args ...string) *exec.Cmd {
	all := append(append(append([]string{}, opts...), c.Args(b.port)...), "--", sshtest.Dest(user))
	return exec.CommandContext(ctx, "ssh", append(all, args...)...)
}

// sessionCert runs a session as alice and returns the certificate the host
// accepted for it, read from sshd's $SSH_USER_AUTH inside the session.
func (b *testbed) sessionCert() *gossh.Certificate {
	b.t.Helper()
	out, errOut, code := b.run(b.alice, "root@web01", `cat "$SSH_USER_AUTH"`)
	if code != 0 {
		b.t.Fatalf("code %d stderr %q", code, errOut)
	}
	line := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(out), "publickey "))
	key, _, _, _, err := gossh.ParseAuthorizedKey([]byte(line))
	if err != nil {
		b.t.Fatalf("parse %q: %v", out, err)
	}
	cert, ok := key.(*gossh.Certificate)
	if !ok {
		b.t.Fatalf("host accepted a plain key, not a certificate: %q", out)
	}
	return cert
}

// testKV reads and rotates break-glass keys in a real Vault, as warden
// serve does with its own Vault identity.
type testKV struct {
	c              *api.Client
	authorizedKeys string
	sshdConfig     string // the managed host's sshd_config, for sshd -T
}

func (k testKV) Fetch(ctx context.Context, path string) (gossh.Signer, error) {
	s, _, err := rotate.Fetch(ctx, k.c, path)
	return s, err
}

func (k testKV) Rotate(ctx context.Context, t rotate.Target) (rotate.Result, error) {
	t.AuthorizedKeys, t.SSHDConfig = k.authorizedKeys, k.sshdConfig
	return rotate.Rotate(ctx, rotate.Options{Client: k.c}, t)
}
