package gateway_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/internal/keyfile"
	"github.com/warden-gw/warden/internal/loadgen"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/vault"
)

// BenchmarkMemory is issue 11's memory target: 1,000 concurrent recorded
// interactive sessions (pty and shell, each its own client connection)
// through one `warden serve` process, at most 128 KiB of the gateway's
// resident memory each. The gateway runs as a child process built from
// cmd/warden (with -tags wardendebug, which adds only a loopback endpoint
// for its goroutine count and runtime statistics), under the Go runtime's
// defaults (GOGC=100, no GOMEMLIMIT), so its RSS is its own.
//
// It reports the gateway's RSS per session ((at N - baseline) / N), with
// the sessions idle after one typed line each: 5 s after the last one was
// set up, when the heap still holds the garbage of setting them up, and
// once the runtime's own periodic GC (every 2 minutes) has run while they
// idle; then the same after every session printed 100 KB, and after a
// second periodic GC, which frees what the pools kept of the bulk's
// buffers. The target (the verdict printed) is met when both the idle
// figure and the last are at most 128 KiB. Beside it:
// sshd's RSS and PSS per session (the two sshd processes of each session,
// shells not counted), the setup rate through Warden and straight to sshd
// with the same load generator, and whether the gateway's goroutines and
// open files return to their baseline once the sessions end (within 5
// goroutines and 2 files).
//
// WARDEN_BENCH_SESSIONS changes N (1000); WARDEN_BENCH_PROFILE=DIR saves
// the gateway's heap and goroutine profiles there.
func BenchmarkMemory(b *testing.B) {
	if os.Getenv("WARDEN_BENCH") == "" {
		b.Skip("set WARDEN_BENCH=1 (make bench)")
	}
	n := 1000
	if v := os.Getenv("WARDEN_BENCH_SESSIONS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n <= 0 {
			b.Fatalf("WARDEN_BENCH_SESSIONS=%q", v)
		}
	}
	mb := newMemBed(b, n)
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Minute)
	defer cancel()

	// Straight to sshd first, for the setup rate; closed before Warden's.
	nDirect := min(n, 200)
	direct, err := loadgen.Open(ctx, loadgen.Options{Addr: mb.host.Addr, User: "root", Signers: mb.direct,
		HostKey: mb.host.HostKey, Sessions: nDirect, Concurrency: 8})
	if err != nil {
		b.Fatal(err)
	}
	if len(direct.Failed) > 0 {
		b.Fatalf("direct: %d of %d failed, first: %v", len(direct.Failed), nDirect, direct.Failed[0])
	}
	if errs := direct.Close(ctx, 16); len(errs) > 0 {
		b.Fatalf("direct close: %v", errs[0])
	}

	// Warm up the gateway (first session, lazy initialisation), then the
	// baseline once its goroutines have settled.
	warm := mb.open(ctx, 1)
	if errs := warm.Close(ctx, 1); len(errs) > 0 {
		b.Fatal(errs[0])
	}
	base := mb.waitSettled(nil)

	crowd := mb.open(ctx, n)
	sshdRSS, sshdPSS := mb.sshdPerSession(n)
	time.Sleep(5 * time.Second)
	fresh := mb.measure()
	idle := mb.waitPeriodicGC(fresh)
	mb.saveProfiles("idle")
	// Every session prints 100 KB (what a bulk command leaves behind), then
	// idles again.
	if errs := crowd.Each(16, func(s *loadgen.Session) error {
		return s.Run(ctx, "seq 10000 24284; echo bulk-$((40+2))", "bulk-42") // 14285 lines of 7 bytes
	}); len(errs) > 0 {
		b.Fatalf("bulk: %d failed, first: %v", len(errs), errs[0])
	}
	time.Sleep(5 * time.Second)
	bulkFresh := mb.measure()
	bulkIdle := mb.waitPeriodicGC(bulkFresh)
	mb.saveProfiles("bulk")
	// sync.Pool keeps what it held through one GC (its victim cache) and
	// lets it go at the next: the buffers of the bulk's last moments are
	// the pools' until a second periodic GC, some 2 minutes later.
	bulkIdle2 := mb.waitPeriodicGC(bulkIdle)
	mb.saveProfiles("bulk2")
	if errs := crowd.Close(ctx, 16); len(errs) > 0 {
		b.Fatalf("close: %d did not end, first: %v", len(errs), errs[0])
	}
	end := mb.waitSettled(&base)

	per := func(v, b0 int64) float64 { return float64(v-b0) / float64(n) }
	line := func(m memSample) string {
		return fmt.Sprintf("RSS %.0f KiB (PSS %.0f; Go heap %.0f, stacks %.0f)", per(m.rssKiB, base.rssKiB), per(m.pssKiB, base.pssKiB),
			per(m.heapKiB, base.heapKiB), per(m.stackKiB, base.stackKiB))
	}
	b.ReportMetric(per(idle.rssKiB, base.rssKiB), "warden-KiB/session")
	b.ReportMetric(per(fresh.rssKiB, base.rssKiB), "warden-KiB/session-fresh")
	b.ReportMetric(per(bulkIdle.rssKiB, base.rssKiB), "warden-KiB/session-after-bulk-1gc")
	b.ReportMetric(per(bulkIdle2.rssKiB, base.rssKiB), "warden-KiB/session-after-bulk")
	b.ReportMetric(sshdRSS, "sshd-KiB/session")
	b.ReportMetric(crowd.Rate(), "warden-sessions/s")
	b.ReportMetric(direct.Rate(), "direct-sessions/s")
	verdict := "met"
	if per(idle.rssKiB, base.rssKiB) > 128 || per(bulkIdle2.rssKiB, base.rssKiB) > 128 {
		verdict = "not met"
	}
	fmt.Printf("memory, %d idle recorded shells through one warden serve (GOGC=100, no GOMEMLIMIT), per session (target <= 128 KiB RSS: %s):\n", n, verdict)
	fmt.Printf("  5 s after setup:               %s\n", line(fresh))
	fmt.Printf("  after the runtime's periodic GC: %s\n", line(idle))
	fmt.Printf("  after 100 KB each, 5 s:        %s\n", line(bulkFresh))
	fmt.Printf("  after 100 KB each, periodic GC: %s\n", line(bulkIdle))
	fmt.Printf("  after 100 KB each, second GC:  %s\n", line(bulkIdle2))
	fmt.Printf("  gateway baseline RSS %d KiB; at %d sessions %d goroutines (%.1f per session), %d open files\n",
		base.rssKiB, n, idle.goroutines, float64(idle.goroutines-base.goroutines)/float64(n), idle.fds)
	fmt.Printf("  sshd: %.0f KiB RSS per session (PSS %.0f), its two processes, shells not counted\n", sshdRSS, sshdPSS)
	fmt.Printf("setup rate, 8 at a time: warden %.1f sessions/s (%d), direct sshd %.1f sessions/s (%d)\n", crowd.Rate(), n, direct.Rate(), nDirect)
	fmt.Printf("after the sessions ended: goroutines %d (baseline %d), open files %d (baseline %d), RSS %d KiB\n",
		end.goroutines, base.goroutines, end.fds, base.fds, end.rssKiB)
	if end.goroutines > base.goroutines+5 || end.fds > base.fds+2 {
		b.Errorf("not back to baseline: goroutines %d (baseline %d), fds %d (baseline %d)", end.goroutines, base.goroutines, end.fds, base.fds)
	}
}

// memBed is a real sshd and a `warden serve` child process in front of it.
type memBed struct {
	b       *testing.B
	dir     string
	host    *sshtest.Host
	port    string
	debug   string // the child's profile endpoint
	pid     int
	hostKey gossh.PublicKey
	users   []gossh.Signer // keys of the gateway's users
	direct  []gossh.Signer // the same keys with certificates, for sshd
}

// memUsers is how many users the sessions are spread over: the gateway
// allows 64 session channels per user.
const memUsers = 32

func newMemBed(b *testing.B, n int) *memBed {
	dir := b.TempDir()
	mb := &memBed{b: b, dir: dir}
	data := filepath.Join(dir, "data")
	// Every session holds a client socket, a host socket and a cast file
	// in the gateway; the load generator holds n sockets here. Go raises
	// the soft limit to the hard one at start.
	if lim := openFileLimit(b); lim < uint64(4*n+1000) {
		b.Fatalf("open file limit %d is too low for %d sessions", lim, n)
	}
	bin := filepath.Join(dir, "warden")
	build := exec.Command("go", "build", "-tags", "wardendebug", "-o", bin, "../cmd/warden")
	if out, err := build.CombinedOutput(); err != nil {
		b.Fatalf("build warden: %v\n%s", err, out)
	}
	ca, err := vault.OpenBuiltin(data, vault.BuiltinOptions{})
	if err != nil {
		b.Fatal(err)
	}
	caKey, err := ca.CAPublicKey(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	// MaxStartups: the load generator's 8 setups in flight, through the
	// gateway or not, must not meet sshd's random early drop.
	mb.host = sshtest.StartHost(b, sshtest.HostOptions{TrustedUserCAKeys: []gossh.PublicKey{caKey}, ExtraConfig: "MaxStartups 100:30:200\n"})
	gwKey, _, err := keyfile.LoadOrCreateEd25519(filepath.Join(dir, "gw_host_ed25519"))
	if err != nil {
		b.Fatal(err)
	}
	mb.hostKey = gwKey.PublicKey()
	caRaw, err := os.ReadFile(filepath.Join(data, "ca_ed25519"))
	if err != nil {
		b.Fatal(err)
	}
	caSigner, err := gossh.ParsePrivateKey(caRaw)
	if err != nil {
		b.Fatal(err)
	}
	var users strings.Builder
	for i := range memUsers {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		s, err := gossh.NewSignerFromKey(priv)
		if err != nil {
			b.Fatal(err)
		}
		mb.users = append(mb.users, s)
		fmt.Fprintf(&users, "  - name: load%02d\n    keys: [%q]\n    groups: [sysadmins]\n", i, authorizedKey(s.PublicKey()))
		cert := &gossh.Certificate{Key: s.PublicKey(), CertType: gossh.UserCert, KeyId: fmt.Sprintf("bench:load%02d", i),
			ValidPrincipals: []string{"root"}, ValidAfter: uint64(time.Now().Add(-time.Minute).Unix()),
			ValidBefore: uint64(time.Now().Add(2 * time.Hour).Unix()),
			Permissions: gossh.Permissions{Extensions: map[string]string{"permit-pty": ""}}}
		if err := cert.SignCert(rand.Reader, caSigner); err != nil {
			b.Fatal(err)
		}
		cs, err := gossh.NewCertSigner(cert, s)
		if err != nil {
			b.Fatal(err)
		}
		mb.direct = append(mb.direct, cs)
	}
	mb.port = sshtest.FreePort(b)
	yaml := fmt.Sprintf(`listen: "127.0.0.1:%s"
host_key: %s
data_dir: %s
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
`, mb.port, filepath.Join(dir, "gw_host_ed25519"), data, mb.host.Addr, authorizedKey(mb.host.HostKey), users.String())
	cfg := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cfg, []byte(yaml), 0o600); err != nil {
		b.Fatal(err)
	}
	mb.debug = "127.0.0.1:" + sshtest.FreePort(b)
	cmd := exec.Command(bin, "serve", "-c", cfg)
	// The runtime's defaults: no GOGC or GOMEMLIMIT from the caller.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GOMEMLIMIT=") && !strings.HasPrefix(kv, "GODEBUG=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "WARDEN_DEBUG_ADDR="+mb.debug)
	logf, err := os.Create(filepath.Join(dir, "warden.log"))
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	mb.pid = cmd.Process.Pid
	b.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logf.Close()
		if b.Failed() {
			log, _ := os.ReadFile(logf.Name())
			b.Logf("warden log:\n%s", tailOf(log, 4000))
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+mb.port, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b.Fatalf("warden serve not listening: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return mb
}

func (mb *memBed) open(ctx context.Context, n int) *loadgen.Crowd {
	mb.b.Helper()
	crowd, err := loadgen.Open(ctx, loadgen.Options{Addr: "127.0.0.1:" + mb.port, User: "root@web01", Signers: mb.users,
		HostKey: mb.hostKey, Sessions: n, Concurrency: 8})
	if err != nil {
		mb.b.Fatal(err)
	}
	if len(crowd.Failed) > 0 {
		mb.b.Fatalf("%d of %d sessions failed, first: %v", len(crowd.Failed), n, crowd.Failed[0])
	}
	return crowd
}

// memSample is the gateway process's resources at one moment.
type memSample struct {
	rssKiB, pssKiB    int64
	heapKiB, stackKiB int64 // the runtime's HeapInuse and StackInuse
	numGC             int64
	goroutines, fds   int
}

func (mb *memBed) measure() memSample {
	mb.b.Helper()
	var m memSample
	// RSS first: the request for the rest allocates a little in the gateway.
	m.rssKiB = procField(mb.b, mb.pid, "status", "VmRSS:")
	m.pssKiB = procField(mb.b, mb.pid, "smaps_rollup", "Pss:")
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", mb.pid))
	if err != nil {
		mb.b.Fatal(err)
	}
	m.fds = len(fds)
	var heap, stack int64
	stats := mb.get("/debug/stats")
	if _, err := fmt.Sscan(stats, &m.goroutines, &heap, &stack, &m.numGC); err != nil {
		mb.b.Fatalf("debug stats %q: %v", stats, err)
	}
	m.heapKiB, m.stackKiB = heap>>10, stack>>10
	return m
}

// waitPeriodicGC waits, the sessions idle, until the runtime has run a
// GC after from was taken (it forces one every 2 minutes when nothing
// else does), then a little for its background work, and measures.
func (mb *memBed) waitPeriodicGC(from memSample) memSample {
	mb.b.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for {
		time.Sleep(5 * time.Second)
		m := mb.measure()
		if m.numGC > from.numGC {
			time.Sleep(10 * time.Second)
			return mb.measure()
		}
		if time.Now().After(deadline) {
			mb.b.Fatalf("no GC in 5 minutes (NumGC %d)", m.numGC)
		}
	}
}

// waitSettled polls until the gateway's goroutines and files are at most
// base's (plus the tolerance), or stable for a while when there is no
// base yet, and returns the last sample.
func (mb *memBed) waitSettled(base *memSample) memSample {
	deadline := time.Now().Add(90 * time.Second)
	prev := mb.measure()
	for {
		time.Sleep(time.Second)
		m := mb.measure()
		switch {
		case base == nil && m.goroutines == prev.goroutines && m.fds == prev.fds:
			return m
		case base != nil && m.goroutines <= base.goroutines+5 && m.fds <= base.fds+2:
			return m
		case time.Now().After(deadline):
			return m
		}
		prev = m
	}
}

func (mb *memBed) get(path string) string {
	mb.b.Helper()
	// No keep-alive: an idle connection would be an open file in the gateway.
	c := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 30 * time.Second}
	resp, err := c.Get("http://" + mb.debug + path)
	if err != nil {
		mb.b.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		mb.b.Fatal(err)
	}
	return string(body)
}

// saveProfiles writes the gateway's heap and goroutine profiles to
// WARDEN_BENCH_PROFILE, if set, as heap-WHEN.pb.gz and goroutine-WHEN.txt.
func (mb *memBed) saveProfiles(when string) {
	dir := os.Getenv("WARDEN_BENCH_PROFILE")
	if dir == "" {
		return
	}
	for name, path := range map[string]string{"heap-" + when + ".pb.gz": "heap", "goroutine-" + when + ".txt": "goroutine?debug=1"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(mb.get("/debug/pprof/"+path)), 0o600); err != nil {
			mb.b.Fatal(err)
		}
	}
}

// sshdPerSession sums the RSS and PSS of the sshd processes under the
// test host's listener (each session's monitor and its unprivileged
// child), divided by n. The shells are not sshd's cost.
func (mb *memBed) sshdPerSession(n int) (rss, pss float64) {
	listener := 0
	children := map[int][]int{}
	comm := map[int]string{}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...; comm may hold spaces, so split after ')'.
		s := string(stat)
		lo, hi := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
		if lo < 0 || hi < lo {
			continue
		}
		comm[pid] = s[lo+1 : hi]
		f := strings.Fields(s[hi+1:])
		if len(f) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		children[ppid] = append(children[ppid], pid)
		if cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid)); strings.Contains(string(cmdline), mb.host.ConfigPath) && ppid == os.Getpid() {
			listener = pid
		}
	}
	if listener == 0 {
		mb.b.Fatal("the test sshd's listener is not among the processes")
	}
	var sumRSS, sumPSS int64
	var walk func(pid int)
	walk = func(pid int) {
		for _, c := range children[pid] {
			if strings.HasPrefix(comm[c], "sshd") {
				sumRSS += procField(mb.b, c, "status", "VmRSS:")
				sumPSS += procField(mb.b, c, "smaps_rollup", "Pss:")
			}
			walk(c)
		}
	}
	walk(listener)
	return float64(sumRSS) / float64(n), float64(sumPSS) / float64(n)
}

// procField reads a "Key: N kB" line of /proc/PID/FILE.
func procField(b *testing.B, pid int, file, key string) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/%s", pid, file))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			v, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("/proc/%d/%s %q: %v", pid, file, line, err)
			}
			return v
		}
	}
	b.Fatalf("/proc/%d/%s has no %s", pid, file, key)
	return 0
}

func openFileLimit(b *testing.B) uint64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		b.Fatal(err)
	}
	return lim.Cur
}

func tailOf(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
