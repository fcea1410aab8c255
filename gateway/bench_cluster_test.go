package gateway_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/gateway"
	"github.com/warden-gw/warden/internal/keyfile"
	"github.com/warden-gw/warden/internal/loadgen"
	"github.com/warden-gw/warden/internal/pgtest"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/vault"
)

// BenchmarkClusterSetup is issue 12's "session setup rate with 1, 2 and 4
// nodes against the single-node SQLite figure" (README, "Production: two
// nodes, PostgreSQL and S3"). N gateway servers run in this process, each
// with its own data directory, its own audit.Store with its own NodeID,
// on one PostgreSQL database (internal/pgtest), all in front of one real
// sshd; they share the CA key file and the gateway host key file, as the
// nodes of a cluster must. The baseline is one gateway on SQLite.
//
// The load generator (internal/loadgen: connect, authenticate, pty,
// shell, one line's round trip, each session its own connection, kept
// open) sets up clusterSessions sessions spread evenly over the nodes,
// benchClusterInFlight set-ups in flight in all (shared out between the
// nodes), as DNS round robin or a load balancer would spread clients. The
// figure is sessions set up per second of wall time. The chain is
// verified afterwards over every node's recordings; a failure fails the
// benchmark, the rate never does.
//
// All nodes share this machine's cores, so more nodes cannot add
// capacity here: the figure shows what the shared store costs a set-up,
// not what a second machine would add. internal/pgtest also runs
// PostgreSQL without fsync, while SQLite commits with synchronous=FULL.
//
// WARDEN_BENCH_CLUSTER_SESSIONS changes the number of sessions (160).
func BenchmarkClusterSetup(b *testing.B) {
	if os.Getenv("WARDEN_BENCH") == "" {
		b.Skip("set WARDEN_BENCH=1 (make bench)")
	}
	n := 160
	if v := os.Getenv("WARDEN_BENCH_CLUSTER_SESSIONS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 4 {
			b.Fatalf("WARDEN_BENCH_CLUSTER_SESSIONS=%q", v)
		}
	}
	var pg pgtest.Shared
	b.Cleanup(func() {
		if err := pg.Stop(); err != nil {
			b.Error(err)
		}
	})
	cb := newBenchClusterBed(b)
	b.Run("sqlite", func(b *testing.B) {
		cb.run(b, n, 1, func() audit.Backend { return audit.Backend{Driver: audit.DriverSQLite} })
	})
	for _, nodes := range []int{1, 2, 4} {
		b.Run(fmt.Sprintf("postgres-%dnodes", nodes), func(b *testing.B) {
			cb.run(b, n, nodes, func() audit.Backend {
				return audit.Backend{Driver: audit.DriverPostgres, DSN: pg.Database(b)}
			})
		})
	}
}

// benchClusterInFlight is how many set-ups are in flight at once, over all
// nodes: BenchmarkMemory's 8, under both sides' per-source start-up
// limits (10).
const benchClusterInFlight = 8

// benchClusterBed is what the nodes share: the managed host, the CA's and the
// gateway host key's files, and the users.
type benchClusterBed struct {
	dir     string
	caDir   string // holds ca_ed25519, read by every node
	hostKey string // the gateway host key file, read by every node
	host    *sshtest.Host
	pubKey  gossh.PublicKey // the gateway host key, as clients check it
	users   []gossh.Signer
	yaml    string // the policy without data_dir
}

func newBenchClusterBed(b *testing.B) *benchClusterBed {
	cb := &benchClusterBed{dir: b.TempDir()}
	cb.caDir = filepath.Join(cb.dir, "ca")
	ca, err := vault.OpenBuiltin(cb.caDir, vault.BuiltinOptions{})
	if err != nil {
		b.Fatal(err)
	}
	caKey, err := ca.CAPublicKey(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	// MaxStartups: the set-ups in flight must not meet sshd's random early
	// drop.
	cb.host = sshtest.StartHost(b, sshtest.HostOptions{TrustedUserCAKeys: []gossh.PublicKey{caKey}, ExtraConfig: "MaxStartups 100:30:200\n"})
	cb.hostKey = filepath.Join(cb.dir, "gw_host_ed25519")
	hk, _, err := keyfile.LoadOrCreateEd25519(cb.hostKey)
	if err != nil {
		b.Fatal(err)
	}
	cb.pubKey = hk.PublicKey()
	var users strings.Builder
	for i := range memUsers {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s, err := gossh.NewSignerFromKey(priv)
		if err != nil {
			b.Fatal(err)
		}
		cb.users = append(cb.users, s)
		fmt.Fprintf(&users, "  - name: load%02d\n    keys: [%q]\n    groups: [sysadmins]\n", i, authorizedKey(s.PublicKey()))
	}
	cb.yaml = fmt.Sprintf(`listen: "127.0.0.1:0"
host_key: %s
credentials: {backend: builtin, cert_ttl: 2m}
recording: {input: true, on_failure: terminate}
tenants:
  - name: acme
    hosts:
      - name: web01
        address: %q
        host_key: %q
        labels: {tier: web}
groups:
  - name: sysadmins
users:
%sroles:
  - name: web-admin
    tenant: acme
    hosts: {labels: {tier: web}}
    logins: [root]
    members: [sysadmins]
`, cb.hostKey, cb.host.Addr, authorizedKey(cb.host.HostKey), users.String())
	return cb
}

// benchClusterNode is one running gateway.
type benchClusterNode struct {
	data  string
	store *audit.Store
	addr  string
}

// start runs node i of a cluster on backend be until b ends.
func (cb *benchClusterBed) start(b *testing.B, i int, be audit.Backend) *benchClusterNode {
	ctx := context.Background()
	nd := &benchClusterNode{data: filepath.Join(b.TempDir(), "data")}
	cfgPath := filepath.Join(filepath.Dir(nd.data), "warden.yaml")
	if err := os.WriteFile(cfgPath, []byte("data_dir: "+nd.data+"\n"+cb.yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	cfg, err := policy.Load(cfgPath)
	if err != nil {
		b.Fatalf("policy: %v", err)
	}
	ca, err := vault.OpenBuiltin(cb.caDir, vault.BuiltinOptions{}) // the shared CA file
	if err != nil {
		b.Fatal(err)
	}
	hk, _, err := keyfile.LoadOrCreateEd25519(cb.hostKey) // the shared host key file
	if err != nil {
		b.Fatal(err)
	}
	nd.store, err = audit.Open(ctx, nd.data, audit.Options{OutputIndex: true, Backend: be, NodeID: fmt.Sprintf("gw-%d", i)})
	if err != nil {
		b.Fatal(err)
	}
	gw, err := gateway.New(gateway.Options{Policy: cfg, Store: nd.store, Signer: ca, HostKey: hk, DialTimeout: 10 * time.Second})
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	nd.addr = ln.Addr().String()
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- gw.Serve(sctx, ln) }()
	b.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			b.Errorf("node %d serve: %v", i, err)
		}
		nd.store.Close()
	})
	return nd
}

// run starts nodes gateways on the backend that backend gives (called
// once: one database for all), measures the set-up of n sessions spread
// over them, ends the sessions and verifies the chain.
func (cb *benchClusterBed) run(b *testing.B, n, nodes int, backend func() audit.Backend) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	be := backend()
	var ns []*benchClusterNode
	for i := range nodes {
		ns = append(ns, cb.start(b, i, be))
	}
	// Warm each node up (first session, lazy initialisation) outside the
	// measure.
	for _, nd := range ns {
		warm := cb.open(b, ctx, nd, 1, 1)
		if errs := warm.Close(ctx, 1); len(errs) > 0 {
			b.Fatal(errs[0])
		}
	}
	crowds := make([]*loadgen.Crowd, nodes)
	var wg sync.WaitGroup
	start := time.Now()
	for i, nd := range ns {
		// An even share of the sessions and of the set-ups in flight.
		share, inFlight := n/nodes, max(1, benchClusterInFlight/nodes)
		wg.Add(1)
		go func() {
			defer wg.Done()
			crowds[i] = cb.open(b, ctx, nd, share, inFlight)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	total := 0
	for _, c := range crowds {
		if c == nil {
			b.FailNow() // open reported why
		}
		total += len(c.Sessions)
	}
	rate := float64(total) / elapsed.Seconds()
	b.ReportMetric(rate, "sessions/s")
	fmt.Printf("cluster setup, %s: %d sessions over %d node(s), %d in flight: %.1f sessions/s (%v)\n",
		b.Name(), total, nodes, benchClusterInFlight, rate, elapsed.Round(time.Millisecond))
	for _, c := range crowds {
		if errs := c.Close(ctx, 16); len(errs) > 0 {
			b.Fatalf("close: %d did not end, first: %v", len(errs), errs[0])
		}
	}
	cb.verify(b, ctx, ns, be, total+nodes)
}

// open sets up n sessions through one node, inFlight at a time; every
// one must succeed. It is called from several goroutines: errors go
// through b.Error, and a nil crowd tells the caller.
func (cb *benchClusterBed) open(b *testing.B, ctx context.Context, nd *benchClusterNode, n, inFlight int) *loadgen.Crowd {
	crowd, err := loadgen.Open(ctx, loadgen.Options{Addr: nd.addr, User: "root@web01", Signers: cb.users,
		HostKey: cb.pubKey, Sessions: n, Concurrency: inFlight})
	if err != nil {
		b.Error(err)
		return nil
	}
	if len(crowd.Failed) > 0 {
		b.Errorf("%s: %d of %d sessions failed, first: %v", nd.addr, len(crowd.Failed), n, crowd.Failed[0])
		return nil
	}
	return crowd
}

// verify waits until every session row has ended (the gateway seals a
// recording after its client has gone), then runs audit verify over the
// one chain with every node's recordings gathered in one directory (as a
// restored bucket would hold them): want sessions, no problem.
func (cb *benchClusterBed) verify(b *testing.B, ctx context.Context, ns []*benchClusterNode, be audit.Backend, want int) {
	deadline := time.Now().Add(60 * time.Second)
	for open := -1; open != 0; {
		list, err := ns[0].store.Sessions(ctx, audit.SessionFilter{})
		if err != nil {
			b.Fatal(err)
		}
		open = 0
		for _, s := range list {
			if s.EndedAt.IsZero() {
				open++
			}
		}
		if open > 0 && time.Now().After(deadline) {
			b.Fatalf("%d sessions still open 60 s after their clients left", open)
		}
		time.Sleep(100 * time.Millisecond)
	}
	all := ns[0].data // SQLite: the database lives in the node's directory
	if be.Driver != audit.DriverSQLite {
		all = filepath.Join(b.TempDir(), "data")
		for _, nd := range ns {
			if err := benchCopyRecordings(nd.data, all); err != nil {
				b.Fatal(err)
			}
		}
	}
	r, err := audit.OpenReader(ctx, all, be)
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	rep, err := r.Verify(ctx, all)
	if err != nil {
		b.Fatal(err)
	}
	if rep.Sessions != want || len(rep.Live) != 0 || len(rep.Problems) != 0 {
		b.Fatalf("verify: %d sessions (want %d), live %v, problems %v", rep.Sessions, want, rep.Live, rep.Problems)
	}
}

// benchCopyRecordings copies DATA/recordings of one node under dst.
func benchCopyRecordings(data, dst string) error {
	root := filepath.Join(data, "recordings")
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(data, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(to, 0o700)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return err
		}
		if _, err := io.Copy(out, in); err != nil {
			out.Close()
			return err
		}
		return out.Close()
	})
}
