package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/keyfile"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/internal/storetest"
	"github.com/warden-gw/warden/vault"
)

// The fault tests run `warden serve` as its own process, the way an
// operator runs it, so that kill -9, SIGTERM and SIGHUP reach a real
// process. The binary is built once for all of them.
var faultBinary struct {
	once      sync.Once
	dir, path string
	err       error
}

func TestMain(m *testing.M) {
	code := storetest.Main(m) // the harness switch, WARDEN_STORE
	if faultBinary.dir != "" {
		os.RemoveAll(faultBinary.dir)
	}
	os.Exit(code)
}

// sharedWarden builds cmd/warden once (without the race detector) and
// returns its path.
func sharedWarden(t *testing.T) string {
	t.Helper()
	faultBinary.once.Do(func() {
		faultBinary.dir, faultBinary.err = os.MkdirTemp("", "warden-faults-")
		if faultBinary.err != nil {
			return
		}
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
		}
		faultBinary.path = filepath.Join(faultBinary.dir, "warden")
		out, err := exec.Command(goBin, "build", "-o", faultBinary.path, "github.com/warden-gw/warden/cmd/warden").CombinedOutput()
		if err != nil {
			faultBinary.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if faultBinary.err != nil {
		t.Fatal(faultBinary.err)
	}
	return faultBinary.path
}

// faultBed is a `warden serve` process in front of a real sshd: alice (group
// sysadmins) and erin (group ops) have standing root on web01 through the
// roles web-admin and ops-admin, bob (helpdesk) may request prod-root and
// carol (security) approves.
type faultBed struct {
	t                       *testing.T
	dir, data, cfgPath, bin string
	host                    *sshtest.Host
	gwKey                   gossh.PublicKey
	alice, bob, carol, erin *sshtest.Client
	gw                      *served
	port                    string
}

func newFaultBed(t *testing.T) *faultBed {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs warden serve")
	}
	b := &faultBed{t: t, dir: t.TempDir(), bin: sharedWarden(t)}
	b.data = filepath.Join(b.dir, "data")
	b.cfgPath = filepath.Join(b.dir, "warden.yaml")
	ca, err := vault.OpenBuiltin(b.data, vault.BuiltinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := ca.CAPublicKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	gwKey, _, err := keyfile.LoadOrCreateEd25519(filepath.Join(b.data, "host_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	b.gwKey = gwKey.PublicKey()
	b.host = sshtest.StartHost(t, sshtest.HostOptions{TrustedUserCAKeys: []gossh.PublicKey{caKey}})
	client := func(name string) *sshtest.Client {
		os.MkdirAll(filepath.Join(b.dir, name), 0o700)
		return sshtest.NewClient(t, filepath.Join(b.dir, name))
	}
	b.alice, b.bob, b.carol, b.erin = client("alice"), client("bob"), client("carol"), client("erin")
	return b
}

// policy renders the policy; erinGroups is erin's group list and top is
// added at the top level (e.g. shutdown_grace). Under the harness switch
// (WARDEN_STORE=postgres) it ends with the store of the PostgreSQL database
// the test's own reads of b.data reach, since warden serve runs as its own
// process.
func (b *faultBed) policy(erinGroups, top string) string {
	return fmt.Sprintf(`listen: "127.0.0.1:0"
data_dir: %s
%s
tenants:
  - name: acme
    hosts:
      - name: web01
        address: %q
        host_key: %q
        labels: {env: prod}
groups:
  - name: sysadmins
  - name: ops
  - name: helpdesk
  - name: security
users:
  - name: alice
    keys: [%q]
    groups: [sysadmins]
  - name: erin
    keys: [%q]
    groups: %s
  - name: bob
    keys: [%q]
    groups: [helpdesk]
  - name: carol
    keys: [%q]
    groups: [security]
roles:
  - name: web-admin
    tenant: acme
    hosts: {names: [web01]}
    logins: [root]
    members: [sysadmins]
  - name: ops-admin
    tenant: acme
    hosts: {names: [web01]}
    logins: [root]
    members: [ops]
  - name: prod-root
    tenant: acme
    hosts: {labels: {env: prod}}
    logins: [root]
    privileged: true
    eligible: [helpdesk]
    approvers: [security]
    max_duration: 2h
`, b.data, top, b.host.Addr, authorizedLine(b.host.HostKey), authorizedLine(b.alice.PublicKey),
		authorizedLine(b.erin.PublicKey), erinGroups, authorizedLine(b.bob.PublicKey), authorizedLine(b.carol.PublicKey)) +
		storetest.PolicyStore(b.t, b.data, filepath.Join(b.dir, "pg.dsn")) // last: the tests count lines from the top
}

func (b *faultBed) writePolicy(text string) {
	b.t.Helper()
	if err := os.WriteFile(b.cfgPath, []byte(text), 0o600); err != nil {
		b.t.Fatal(err)
	}
}

// start runs warden serve on the policy file and trusts its address.
func (b *faultBed) start() {
	b.t.Helper()
	b.gw = startServe(b.t, b.bin, b.cfgPath)
	_, b.port, _ = strings.Cut(b.gw.addr, "127.0.0.1:")
	for _, c := range []*sshtest.Client{b.alice, b.bob, b.carol, b.erin} {
		c.TrustHost(b.gw.addr, b.gwKey)
	}
}

// ssh runs the real ssh client through the gateway.
func (b *faultBed) ssh(c *sshtest.Client, user string, args ...string) (string, string, int) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := c.SSH(ctx, b.port, user, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		b.t.Fatalf("ssh: %v", err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// warden runs the warden binary and returns stdout, stderr and exit code.
func (b *faultBed) warden(args ...string) (string, string, int) {
	b.t.Helper()
	cmd := exec.Command(b.bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil && cmd.ProcessState == nil {
		b.t.Fatalf("warden %v: %v", args, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// reader opens the data directory read-only, as an auditor would.
func (b *faultBed) reader() *audit.Reader {
	b.t.Helper()
	r, err := audit.OpenReadOnly(b.data)
	if err != nil {
		b.t.Fatal(err)
	}
	b.t.Cleanup(func() { r.Close() })
	return r
}

// sessionRow is what the fault tests read of a sessions row.
type sessionRow struct {
	id, user, endReason, recording string
	ended                          bool
}

func (b *faultBed) sessions() []sessionRow {
	b.t.Helper()
	r, err := audit.OpenReadOnly(b.data)
	if err != nil {
		b.t.Fatal(err)
	}
	defer r.Close()
	rows, err := r.DB().Query(`SELECT id, user, ended_at IS NOT NULL, COALESCE(end_reason, ''), COALESCE(recording_path, '')
		FROM sessions ORDER BY started_at, id`)
	if err != nil {
		b.t.Fatal(err)
	}
	defer rows.Close()
	var out []sessionRow
	for rows.Next() {
		var s sessionRow
		if err := rows.Scan(&s.id, &s.user, &s.ended, &s.endReason, &s.recording); err != nil {
			b.t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// waitFor polls cond (a database read) until it holds or a generous
// deadline passes.
func (b *faultBed) waitFor(what string, cond func() bool) {
	b.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			b.t.Fatalf("%s: not within a minute\ngateway log:\n%s", what, b.gw.log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// auditVerify runs `warden audit verify` and fails the test unless the chain
// and every recording digest check out.
func (b *faultBed) auditVerify() {
	b.t.Helper()
	args := []string{"audit", "verify", "--data", b.data}
	if storetest.Postgres() {
		// The process cannot see the harness switch: a policy of its own
		// names the database (the test's may be invalid by now).
		p := filepath.Join(b.dir, "verify.yaml")
		src := "data_dir: " + b.data + "\n" + storetest.PolicyStore(b.t, b.data, filepath.Join(b.dir, "pg.dsn"))
		if err := os.WriteFile(p, []byte(src), 0o600); err != nil {
			b.t.Fatal(err)
		}
		args = []string{"audit", "verify", "-c", p}
	}
	out, errOut, code := b.warden(args...)
	if code != 0 || !strings.HasPrefix(out, "ok: ") {
		b.t.Fatalf("audit verify: code %d\n%s%s", code, out, errOut)
	}
}

// castOutput checks that the file is asciicast v2 as JSON lines, a header
// and then [time, code, data] events, and returns its "o" data joined.
func castOutput(t *testing.T, path string) string {
	t.Helper()
	out, err := castData(path)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// castData is castOutput for goroutines other than the test's.
func castData(path string) (string, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	if len(raw) == 0 || raw[len(raw)-1] != '\n' {
		return "", fmt.Errorf("%s does not end with a whole line", path)
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	var h struct {
		Version int `json:"version"`
		Warden  struct {
			SessionID string `json:"session_id"`
		} `json:"warden"`
	}
	if err := json.Unmarshal([]byte(lines[0]), &h); err != nil || h.Version != 2 || h.Warden.SessionID == "" {
		return "", fmt.Errorf("%s: header %q: %v", path, lines[0], err)
	}
	var out strings.Builder
	for i, l := range lines[1:] {
		var ev []any
		if err := json.Unmarshal([]byte(l), &ev); err != nil || len(ev) != 3 {
			return "", fmt.Errorf("%s line %d is not an event: %q (%v)", path, i+2, l, err)
		}
		_, isNum := ev[0].(float64)
		code, _ := ev[1].(string)
		data, isStr := ev[2].(string)
		if !isNum || !isStr || (code != "o" && code != "i" && code != "r") {
			return "", fmt.Errorf("%s line %d: bad event %q", path, i+2, l)
		}
		if code == "o" {
			out.WriteString(data)
		}
	}
	return out.String(), nil
}
