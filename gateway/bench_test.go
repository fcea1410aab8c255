package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/warden-gw/warden/internal/sshtest"
)

// The benchmarks compare Warden with a direct OpenSSH connection to the same
// sshd, in one run on one machine, and report the ratios (make bench). They
// need WARDEN_BENCH=1 because a 200 MB transfer has no place in `make test`.

func benchBed(b *testing.B) (*testbed, *sshtest.Client) {
	if os.Getenv("WARDEN_BENCH") == "" {
		b.Skip("set WARDEN_BENCH=1 (make bench)")
	}
	bed := newTestbed(b, bedOptions{})
	// direct is alice's key with a certificate from the same CA, used
	// straight against sshd: what an admin without Warden would run.
	direct := newClient(b, filepath.Join(bed.dir, "direct"))
	direct.SetCertificate(bed.userCert(direct.PublicKey, "bench:direct", "root"))
	direct.TrustHost(bed.host.Addr, bed.host.HostKey)
	return bed, direct
}

// benchCipher is a cipher the gateway offers (DefaultAlgorithms) that
// OpenSSH's client can pick, with the MAC it needs, if any. OpenSSH's own
// order puts chacha20 first, so that is what most clients use.
type benchCipher struct{ name, short, mac string }

var benchCiphers = []benchCipher{
	{"chacha20-poly1305@openssh.com", "chacha20", ""},
	{"aes128-gcm@openssh.com", "aes128gcm", ""},
	{"aes256-gcm@openssh.com", "aes256gcm", ""},
	{"aes128-ctr", "aes128ctr", "hmac-sha2-256-etm@openssh.com"},
	{"aes256-ctr", "aes256ctr", "hmac-sha2-256-etm@openssh.com"},
}

// ciphersToBench is benchCiphers, or those named in WARDEN_BENCH_CIPHERS
// (comma-separated short names, e.g. "chacha20,aes128gcm"), to profile one.
func ciphersToBench() []benchCipher {
	only := os.Getenv("WARDEN_BENCH_CIPHERS")
	if only == "" {
		return benchCiphers
	}
	var out []benchCipher
	for _, c := range benchCiphers {
		if slices.Contains(strings.Split(only, ","), c.short) {
			out = append(out, c)
		}
	}
	return out
}

// args are ssh's options that pin the cipher (and MAC).
func (c benchCipher) args() []string {
	if c.name == "" {
		return nil
	}
	a := []string{"-c", c.name}
	if c.mac != "" {
		a = append(a, "-m", c.mac)
	}
	return a
}

func (c benchCipher) label() string {
	if c.mac != "" {
		return c.name + "+" + strings.TrimSuffix(c.mac, "@openssh.com")
	}
	return c.name
}

// sshCmd is client.SSH with the cipher pinned.
func sshCmd(ctx context.Context, client *sshtest.Client, port, user string, c benchCipher, args ...string) *exec.Cmd {
	argv := append(append(client.Args(port), c.args()...), "--", sshtest.Dest(user))
	return exec.CommandContext(ctx, "ssh", append(argv, args...)...)
}

// jumpCmd is OpenSSH's own jump host, for reference: the same sshd reached
// through itself (ssh -J, spelled as the ProxyCommand it stands for so the
// inner ssh gets the same key and known_hosts options). Both hops use c,
// the inner one being what a client of a jump host picks.
func jumpCmd(ctx context.Context, bed *testbed, direct *sshtest.Client, c benchCipher, args ...string) *exec.Cmd {
	opts := append(direct.Args(bed.host.Port), c.args()...)
	inner := "ssh " + strings.Join(opts, " ") + " -W %h:%p root@127.0.0.1"
	argv := append([]string{"-o", "ProxyCommand=" + inner}, opts...)
	argv = append(argv, "root@127.0.0.1")
	return exec.CommandContext(ctx, "ssh", append(argv, args...)...)
}

func timeCmd(b *testing.B, cmd *exec.Cmd) time.Duration {
	b.Helper()
	// A real file, not io.Discard: exec would otherwise copy the whole
	// output through a pipe into this process, and measure that too.
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer null.Close()
	cmd.Stdout, cmd.Stderr = null, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		b.Fatalf("%v: %v", cmd.Args, err)
	}
	return time.Since(start)
}

// bigFile writes a text file of size bytes in dir: lines of printable
// text, as a log or a listing would be.
func bigFile(b *testing.B, dir string, size int) string {
	b.Helper()
	file := filepath.Join(dir, fmt.Sprintf("big-%d.txt", size))
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	line := strings.Repeat("warden throughput line of text 0123456789 ", 2) + "\n"
	w := bufio.NewWriterSize(f, 1<<20)
	for n := 0; n < size; n += len(line) {
		w.WriteString(line)
	}
	if err := w.Flush(); err != nil {
		b.Fatal(err)
	}
	f.Close()
	return file
}

// dropRecordings deletes the casts written so far, so that a benchmark's
// gigabytes of recordings do not pile up in the page cache and on disk.
// The gateway's last session is let end and indexed first, as the gateway
// does in the background: otherwise the indexer finds its cast gone (a
// warning per session) or, worse, reads it during the next measured run.
func dropRecordings(bed *testbed) {
	bed.lastSession("alice") // the gateway's run: ended once its row is
	if _, err := bed.store.IndexPending(context.Background()); err != nil {
		bed.t.Logf("output index: %v", err)
	}
	casts, _ := filepath.Glob(filepath.Join(bed.data, "recordings", "*", "*.cast"))
	for _, c := range casts {
		os.Remove(c)
	}
}

// throughputRounds is how many times each path moves the file per cipher;
// the best (fastest) run of each counts.
const throughputRounds = 3

// BenchmarkThroughput: cat of a 200 MB text file on the host, recording
// on, for every cipher the gateway offers: direct OpenSSH, Warden and
// ssh -J, interleaved so that background load hits all alike.
func BenchmarkThroughput(b *testing.B) {
	bed, direct := benchBed(b)
	relay := benchRelay(b, bed, direct)
	const size = 200 << 20
	file := bigFile(b, bed.dir, size)
	ctx := context.Background()
	mbps := func(d time.Duration) float64 { return float64(size) / (1 << 20) / d.Seconds() }
	fmt.Printf("throughput: cat of a %d MB text file, recording on; each figure is the best of %d interleaved runs, [low-high] is the spread of warden/direct over the runs; relay is a bare TCP relay (no SSH, no recording), the floor of any proxy\n", size>>20, throughputRounds)
	fmt.Printf("  %-44s %11s %11s %18s %11s %6s %10s %6s\n", "cipher (client side)", "direct MB/s", "warden MB/s", "warden/direct", "ssh -J MB/s", "-J/dir", "relay MB/s", "rl/dir")
	for _, c := range ciphersToBench() {
		var d, g, j, r []time.Duration
		var ratios []float64
		for i := 0; i < throughputRounds; i++ {
			d = append(d, timeCmd(b, sshCmd(ctx, direct, bed.host.Port, "root", c, "cat "+file)))
			g = append(g, timeCmd(b, sshCmd(ctx, bed.alice, bed.port, "root@web01", c, "cat "+file)))
			j = append(j, timeCmd(b, jumpCmd(ctx, bed, direct, c, "cat "+file)))
			r = append(r, timeCmd(b, relayCmd(ctx, relay, direct, c, "cat "+file)))
			ratios = append(ratios, d[i].Seconds()/g[i].Seconds())
			dropRecordings(bed)
		}
		db, gb, jb, rb := slices.Min(d), slices.Min(g), slices.Min(j), slices.Min(r)
		ratio := db.Seconds() / gb.Seconds()
		met := "met"
		if ratio < 0.8 {
			met = "NOT MET"
		}
		fmt.Printf("  %-44s %11.0f %11.0f %5.2f [%.2f-%.2f] %11.0f %6.2f %10.0f %6.2f   target >= 0.8: %s\n", c.label(), mbps(db), mbps(gb), ratio,
			slices.Min(ratios), slices.Max(ratios), mbps(jb), db.Seconds()/jb.Seconds(), mbps(rb), db.Seconds()/rb.Seconds(), met)
		b.ReportMetric(db.Seconds()/rb.Seconds(), c.short+"-relay/direct")
		b.ReportMetric(ratio, c.short+"-warden/direct")
	}
}

// BenchmarkCPUPerGB: the CPU the gateway spends per GB of session output,
// recording on, against the sshd that sends that output (the process that
// encrypts it, with its privileged monitor), read from the kernel's
// accounting, for each cipher on the client side. The gateway speaks
// AES-GCM to the host whatever the client picked. The command sleeps after
// its output, so the sshd is still there to be read once it is done.
func BenchmarkCPUPerGB(b *testing.B) {
	bed, direct := benchBed(b)
	relay := benchRelay(b, bed, direct)
	const size = 500 << 20
	file := bigFile(b, bed.dir, size)
	ctx := context.Background()
	gbs := float64(size) / (1 << 30)
	// CPU time grows, never shrinks, when other work shares the cores
	// (caches, the other hyperthread): the lowest of a few runs is the
	// closest to what the byte path costs.
	const runs = 3
	fmt.Printf("CPU per GB of session output: cat of a %d MB text file, recording on; CPU-s/GB from getrusage (gateway) and /proc/PID/stat (sshd), the lower of %d runs\n", size>>20, runs)
	fmt.Printf("  %-44s %10s %14s %14s %14s %12s\n", "cipher (client side)", "gateway", "its sshd", "gateway/sshd", "direct sshd", "bare relay")
	for _, c := range ciphersToBench() {
		var gw, sd, dsd, rl []time.Duration
		for i := 0; i < runs; i++ {
			// The bare relay's CPU for the same bytes: what the hop
			// alone costs a process that copies them through user space.
			t0 := selfCPU()
			timeCmd(b, relayCmd(ctx, relay, direct, c, "cat "+file+"; sleep 0.3"))
			rl = append(rl, selfCPU()-t0)
			m := startSSHDMeter(bed.host.Pid())
			t0 = selfCPU()
			timeCmd(b, sshCmd(ctx, bed.alice, bed.port, "root@web01", c, "cat "+file+"; sleep 0.3"))
			gw = append(gw, selfCPU()-t0)
			sd = append(sd, m.Stop())
			dropRecordings(bed)
			m = startSSHDMeter(bed.host.Pid())
			timeCmd(b, sshCmd(ctx, direct, bed.host.Port, "root", c, "cat "+file+"; sleep 0.3"))
			dsd = append(dsd, m.Stop())
		}
		g, s, ds, rc := slices.Min(gw).Seconds()/gbs, slices.Min(sd).Seconds()/gbs, slices.Min(dsd).Seconds()/gbs, slices.Min(rl).Seconds()/gbs
		met := "met"
		if g/s > 1.5 {
			met = "NOT MET"
		}
		fmt.Printf("  %-44s %10.2f %14.2f %14.2f %14.2f %12.2f   target <= 1.5: %s\n", c.label(), g, s, g/s, ds, rc, met)
		b.ReportMetric(rc, c.short+"-relay-CPU-s/GB")
		b.ReportMetric(g, c.short+"-gateway-CPU-s/GB")
		b.ReportMetric(g/s, c.short+"-gateway/sshd")
	}
}

// BenchmarkSetup: connect, authenticate, run true, exit.
func BenchmarkSetup(b *testing.B) {
	bed, direct := benchBed(b)
	ctx := context.Background()
	const n = 30
	var d, g, j []time.Duration
	for i := 0; i < n; i++ {
		d = append(d, timeCmd(b, direct.SSH(ctx, bed.host.Port, "root", "true")))
		g = append(g, timeCmd(b, bed.alice.SSH(ctx, bed.port, "root@web01", "true")))
		j = append(j, timeCmd(b, jumpCmd(ctx, bed, direct, benchCipher{}, "true")))
	}
	dm, gm, jm := median(d), median(g), median(j)
	b.ReportMetric(float64(dm.Microseconds())/1000, "direct-ms")
	b.ReportMetric(float64(gm.Microseconds())/1000, "warden-ms")
	b.ReportMetric(gm.Seconds()/dm.Seconds(), "ratio-warden/direct")
	fmt.Printf("setup: direct %v, warden %v, ssh -J %v (medians of %d); ratio warden/direct %.2f (target <= 1.3), -J/direct %.2f\n",
		dm.Round(time.Millisecond), gm.Round(time.Millisecond), jm.Round(time.Millisecond), n, gm.Seconds()/dm.Seconds(), jm.Seconds()/dm.Seconds())
}

// BenchmarkEcho: one byte through `ssh ... cat` and back, a few thousand
// times, with the client's default cipher; p50 and p99. The three
// sessions are open at once and take turns, one round trip each, so that
// background load hits all alike.
func BenchmarkEcho(b *testing.B) {
	bed, direct := benchBed(b)
	relay := benchRelay(b, bed, direct)
	ctx := context.Background()
	paths := []*echoPath{
		startEcho(b, direct.SSH(ctx, bed.host.Port, "root", "cat")),
		startEcho(b, bed.alice.SSH(ctx, bed.port, "root@web01", "cat")),
		startEcho(b, jumpCmd(ctx, bed, direct, benchCipher{}, "cat")),
		startEcho(b, relayCmd(ctx, relay, direct, benchCipher{}, "cat")),
	}
	// Warm up: the first round trips include the session start.
	for i := 0; i < 50; i++ {
		for _, p := range paths {
			p.roundTrip(b)
		}
	}
	const n = 3000
	rtts := make([][]time.Duration, len(paths))
	for i := 0; i < n; i++ {
		for k, p := range paths {
			rtts[k] = append(rtts[k], p.roundTrip(b))
		}
	}
	for _, p := range paths {
		p.close()
	}
	pct := func(k int, q float64) time.Duration {
		s := slices.Clone(rtts[k])
		slices.Sort(s)
		return s[int(float64(len(s))*q)]
	}
	dp50, dp99 := pct(0, 0.50), pct(0, 0.99)
	gp50, gp99 := pct(1, 0.50), pct(1, 0.99)
	jp50, jp99 := pct(2, 0.50), pct(2, 0.99)
	rp50, rp99 := pct(3, 0.50), pct(3, 0.99)
	b.ReportMetric(float64(dp50.Microseconds()), "direct-p50-µs")
	b.ReportMetric(float64(gp50.Microseconds()), "warden-p50-µs")
	b.ReportMetric(float64(gp99.Microseconds()), "warden-p99-µs")
	b.ReportMetric(float64(jp99.Microseconds()), "jump-p99-µs")
	us := func(d time.Duration) int64 { return d.Microseconds() }
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT MET"
	}
	fmt.Printf("echo round trip, %d interleaved one-byte round trips each (µs): direct p50 %d p99 %d; warden p50 %d p99 %d; ssh -J p50 %d p99 %d\n",
		n, us(dp50), us(dp99), us(gp50), us(gp99), us(jp50), us(jp99))
	fmt.Printf("  warden p50/direct p50 %.2f (target <= 1.3: %s); warden p99 %s ssh -J p99 (target below: %s)\n",
		gp50.Seconds()/dp50.Seconds(), verdict(gp50.Seconds() <= 1.3*dp50.Seconds()),
		map[bool]string{true: "<", false: ">="}[gp99 < jp99], verdict(gp99 < jp99))
	// The floor: the same client and sshd through a bare TCP relay, one
	// hop longer and nothing else (bench_relay_test.go).
	fmt.Printf("  bare TCP relay (floor of any proxy): p50 %d p99 %d; relay p50/direct p50 %.2f; warden p50 - relay p50 = %d µs\n",
		us(rp50), us(rp99), rp50.Seconds()/dp50.Seconds(), us(gp50)-us(rp50))
	b.ReportMetric(float64(rp50.Microseconds()), "relay-p50-µs")
}

// echoPath is one running `ssh ... cat` that echo round trips go through.
type echoPath struct {
	cmd *exec.Cmd
	in  io.WriteCloser
	out io.Reader
	buf []byte
}

func startEcho(b *testing.B, cmd *exec.Cmd) *echoPath {
	b.Helper()
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	return &echoPath{cmd: cmd, in: in, out: out, buf: make([]byte, 1)}
}

func (p *echoPath) roundTrip(b *testing.B) time.Duration {
	start := time.Now()
	if _, err := p.in.Write([]byte{'x'}); err != nil {
		b.Fatal(err)
	}
	if _, err := io.ReadFull(p.out, p.buf); err != nil {
		b.Fatal(err)
	}
	return time.Since(start)
}

func (p *echoPath) close() {
	p.in.Close()
	p.cmd.Wait()
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
