package cli

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/keyfile"
	"github.com/warden-gw/warden/internal/s3test"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/vault"
)

// The cluster tests (issue 12) run two `warden serve` processes, nodes
// gw-a and gw-b, on their own ports and data directories, sharing one
// PostgreSQL database, one versitygw bucket, the gateway host key and the
// CA key (the same files copied into both data directories), in front of
// one real sshd. Clients are OpenSSH.

// clusterScimToken is the bearer token of the directory "entra".
const clusterScimToken = "cluster-test-token-0123456789abcdef"

// clusterBed is the two nodes and what they share.
type clusterBed struct {
	t        *testing.T
	dir, bin string
	dsn      string
	s3       *s3test.Server
	host     *sshtest.Host
	gwKey    gossh.PublicKey
	// alice (sysadmins) has standing root on web01; bob (helpdesk) may
	// request prod-root, which carol (security) approves; carol oversees
	// acme (sessions --live, kill, watch). dana is provisioned over SCIM
	// into oncall, which has standing root on web01.
	alice, bob, carol, dana *sshtest.Client
	a, b                    *clusterNode

	readerOnce sync.Once
	rd         *audit.Reader
}

// clusterNode is one `warden serve`.
type clusterNode struct {
	id, dir, data, cfg string
	gw                 *served
	port, httpAddr     string
}

// newClusterBed starts S3, sshd and both nodes on the PostgreSQL database
// dsn.
func newClusterBed(t *testing.T, dsn string) *clusterBed {
	t.Helper()
	if testing.Short() {
		t.Skip("builds and runs two warden serve processes, PostgreSQL and S3")
	}
	c := &clusterBed{t: t, dir: t.TempDir(), bin: sharedWarden(t), dsn: dsn}
	c.s3 = s3test.Start(t)
	// One CA key and one host key for the cluster, made once and copied
	// to each node: clients see one host key whichever node answers.
	keys := filepath.Join(c.dir, "keys")
	ca, err := vault.OpenBuiltin(keys, vault.BuiltinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := ca.CAPublicKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	gwKey, _, err := keyfile.LoadOrCreateEd25519(filepath.Join(keys, "host_ed25519"))
	if err != nil {
		t.Fatal(err)
	}
	c.gwKey = gwKey.PublicKey()
	c.host = sshtest.StartHost(t, sshtest.HostOptions{TrustedUserCAKeys: []gossh.PublicKey{caKey}})
	client := func(name string) *sshtest.Client {
		os.MkdirAll(filepath.Join(c.dir, name), 0o700)
		return sshtest.NewClient(t, filepath.Join(c.dir, name))
	}
	c.alice, c.bob, c.carol, c.dana = client("alice"), client("bob"), client("carol"), client("dana")
	if err := os.WriteFile(filepath.Join(c.dir, "pg.dsn"), []byte(dsn+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.dir, "entra.token"), []byte(clusterScimToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.a, c.b = c.node("gw-a", keys), c.node("gw-b", keys)
	c.start(c.a)
	c.start(c.b)
	return c
}

// node writes a node's data directory (with the shared keys) and policy.
func (c *clusterBed) node(id, keys string) *clusterNode {
	t := c.t
	t.Helper()
	n := &clusterNode{id: id, dir: filepath.Join(c.dir, id)}
	n.data, n.cfg = filepath.Join(n.dir, "data"), filepath.Join(n.dir, "warden.yaml")
	if err := os.MkdirAll(n.data, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"ca_ed25519", "host_ed25519"} {
		raw, err := os.ReadFile(filepath.Join(keys, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(n.data, f), raw, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(n.cfg, []byte(c.policy(n)), 0o600); err != nil {
		t.Fatal(err)
	}
	return n
}

func (c *clusterBed) policy(n *clusterNode) string {
	return fmt.Sprintf(`listen: "127.0.0.1:0"
http_listen: "127.0.0.1:0"
data_dir: %s
node_id: %s
shutdown_grace: 1s
store:
  driver: postgres
  dsn_file: %s
%sidentity:
  directories: [{name: entra, token_file: %s}]
tenants:
  - name: acme
    hosts:
      - name: web01
        address: %q
        host_key: %q
        labels: {env: prod}
groups:
  - name: sysadmins
  - name: helpdesk
  - name: security
  - name: oncall
users:
  - name: alice
    keys: [%q]
    groups: [sysadmins]
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
    members: [sysadmins, oncall]
  - name: prod-root
    tenant: acme
    hosts: {labels: {env: prod}}
    logins: [root]
    privileged: true
    eligible: [helpdesk]
    approvers: [security]
    max_duration: 2h
`, n.data, n.id, filepath.Join(c.dir, "pg.dsn"), c.s3.YAML("recordings/"), filepath.Join(c.dir, "entra.token"),
		c.host.Addr, authorizedLine(c.host.HostKey), authorizedLine(c.alice.PublicKey),
		authorizedLine(c.bob.PublicKey), authorizedLine(c.carol.PublicKey))
}

var httpListeningRE = regexp.MustCompile(`msg="warden HTTP listening" addr=(\S+)`)

// start runs the node's `warden serve` and trusts its address.
func (c *clusterBed) start(n *clusterNode) {
	c.t.Helper()
	n.gw = startServe(c.t, c.bin, n.cfg)
	_, n.port, _ = strings.Cut(n.gw.addr, "127.0.0.1:")
	deadline := time.Now().Add(time.Minute)
	for n.httpAddr == "" {
		if m := httpListeningRE.FindStringSubmatch(n.gw.log.String()); m != nil {
			n.httpAddr = m[1]
			break
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: no HTTP listener:\n%s", n.id, n.gw.log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, cl := range []*sshtest.Client{c.alice, c.bob, c.carol, c.dana} {
		cl.TrustHost(n.gw.addr, c.gwKey)
	}
}

// ssh runs the real ssh client through node n and returns stdout, stderr
// and the exit code.
func (c *clusterBed) ssh(cl *sshtest.Client, n *clusterNode, user string, args ...string) (string, string, int) {
	c.t.Helper()
	return sshRun(cl, n.port, user, args...)
}

// sshRun is ssh for any goroutine: it does not fail the test.
func sshRun(cl *sshtest.Client, port, user string, args ...string) (string, string, int) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := cl.SSH(ctx, port, user, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		return "", err.Error(), -1
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// warden runs the warden binary.
func (c *clusterBed) warden(args ...string) (string, string, int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil && cmd.ProcessState == nil {
		c.t.Fatalf("warden %v: %v", args, err)
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode()
}

// auditVerify runs `warden audit verify -c` with node n's configuration:
// the one chain in PostgreSQL and the recordings in S3.
func (c *clusterBed) auditVerify(n *clusterNode) {
	c.t.Helper()
	out, errOut, code := c.warden("audit", "verify", "-c", n.cfg)
	if code != 0 || !strings.HasPrefix(out, "ok: ") {
		c.t.Fatalf("audit verify -c %s: code %d\n%s%s", n.id, code, out, errOut)
	}
	c.t.Logf("audit verify through %s: %s", n.id, strings.TrimSpace(out))
}

// reader is a read-only view of the shared store.
func (c *clusterBed) reader() *audit.Reader {
	c.t.Helper()
	c.readerOnce.Do(func() {
		r, err := audit.OpenReader(context.Background(), filepath.Join(c.dir, "observer"),
			audit.Backend{Driver: audit.DriverPostgres, DSN: c.dsn})
		if err != nil {
			c.t.Fatal(err)
		}
		c.rd = r
		c.t.Cleanup(func() { r.Close() })
	})
	return c.rd
}

// session reads one row; a read error (the database restarting) is
// returned, not fatal.
func (c *clusterBed) session(id string) (audit.Session, error) {
	return c.reader().Session(context.Background(), id)
}

// sessionOf finds the session whose exec command matches the regular
// expression re.
func (c *clusterBed) sessionOf(re string) string {
	c.t.Helper()
	var id string
	c.waitFor("the session running "+re, time.Minute, func() bool {
		cmds, err := c.reader().Commands(context.Background(), audit.CommandFilter{Grep: regexp.MustCompile(re)})
		if err != nil || len(cmds) == 0 {
			return false
		}
		id = cmds[0].SessionID
		return true
	})
	return id
}

// waitFor polls cond until it holds or the deadline passes.
func (c *clusterBed) waitFor(what string, limit time.Duration, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("%s: not within %s\ngw-a log:\n%s\ngw-b log:\n%s", what, limit, c.a.gw.log.String(), c.b.gw.log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stream is an ssh command whose output is read line by line as it comes.
type stream struct {
	cmd    *exec.Cmd
	mu     sync.Mutex
	lines  []string
	stderr bytes.Buffer // written by exec's copier until done is closed
	done   chan struct{}
	code   int
	endAt  time.Time
}

// startStream runs ssh through port with a line reader on its stdout.
// The test's cleanup kills it if it is still running.
func startStream(t *testing.T, cl *sshtest.Client, port, user string, args ...string) *stream {
	t.Helper()
	s := &stream{cmd: cl.SSH(context.Background(), port, user, args...), done: make(chan struct{})}
	s.cmd.Stderr = &s.stderr
	out, err := s.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.cmd.Process.Kill(); <-s.done })
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			s.mu.Lock()
			s.lines = append(s.lines, sc.Text())
			s.mu.Unlock()
		}
		io.Copy(io.Discard, out)
		s.cmd.Wait()
		s.mu.Lock()
		s.code, s.endAt = s.cmd.ProcessState.ExitCode(), time.Now()
		s.mu.Unlock()
		close(s.done)
	}()
	return s
}

// output is every line read so far.
func (s *stream) output() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.lines...)
}

// contains reports whether a line read so far contains sub.
func (s *stream) contains(sub string) bool {
	for _, l := range s.output() {
		if strings.Contains(l, sub) {
			return true
		}
	}
	return false
}

// wait waits for ssh to exit and returns its exit code and stderr.
func (s *stream) wait(t *testing.T, limit time.Duration) (int, string) {
	t.Helper()
	select {
	case <-s.done:
	case <-time.After(limit):
		t.Fatalf("ssh still running after %s; output %q", limit, s.output())
	}
	return s.code, s.stderr.String()
}

// tickScript prints "tick-N UNIXTIME" every 200 ms, n times; tag makes
// the command findable in the command log.
func tickScript(tag string, n int) string {
	return fmt.Sprintf(`echo start-%s; for i in $(seq 1 %d); do echo tick-$i $(date +%%s.%%N); sleep 0.2; done; echo done-%s`, tag, n, tag)
}

var tickRE = regexp.MustCompile(`tick-(\d+) (\d+\.\d+)`)

// lastTick is the last whole "tick-N TIME" in text: N and the time the
// host printed it.
func lastTick(text string) (int, time.Time, bool) {
	ms := tickRE.FindAllStringSubmatch(text, -1)
	if len(ms) == 0 {
		return 0, time.Time{}, false
	}
	m := ms[len(ms)-1]
	var n int
	var sec float64
	fmt.Sscan(m[1], &n)
	fmt.Sscan(m[2], &sec)
	return n, time.Unix(0, int64(sec*1e9)), true
}
