package gateway_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
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

// jumpCmd is OpenSSH's own jump host, for reference: the same sshd reached
// through itself (ssh -J, spelled as the ProxyCommand it stands for so the
// inner ssh gets the same key and known_hosts options).
func jumpCmd(ctx context.Context, bed *testbed, direct *sshtest.Client, args ...string) *exec.Cmd {
	inner := "ssh " + strings.Join(direct.Args(bed.host.Port), " ") + " -W %h:%p root@127.0.0.1"
	argv := append(append([]string{"-o", "ProxyCommand=" + inner}, direct.Args(bed.host.Port)...), "root@127.0.0.1")
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

// BenchmarkThroughput: cat of a 200 MB text file on the host, recording on.
func BenchmarkThroughput(b *testing.B) {
	bed, direct := benchBed(b)
	file := filepath.Join(bed.dir, "big.txt")
	f, err := os.Create(file)
	if err != nil {
		b.Fatal(err)
	}
	line := strings.Repeat("warden throughput line of text 0123456789 ", 2) + "\n"
	w := bufio.NewWriterSize(f, 1<<20)
	for n := 0; n < 200<<20; n += len(line) {
		w.WriteString(line)
	}
	w.Flush()
	f.Close()
	ctx := context.Background()
	var dBest, wBest, jBest time.Duration
	best := func(cur *time.Duration, d time.Duration) {
		if *cur == 0 || d < *cur {
			*cur = d
		}
	}
	// Interleaved, best of three each, so background load hits all alike.
	for i := 0; i < 3; i++ {
		best(&dBest, timeCmd(b, direct.SSH(ctx, bed.host.Port, "root", "cat "+file)))
		best(&wBest, timeCmd(b, bed.alice.SSH(ctx, bed.port, "root@web01", "cat "+file)))
		best(&jBest, timeCmd(b, jumpCmd(ctx, bed, direct, "cat "+file)))
	}
	mb := 200.0
	b.ReportMetric(mb/dBest.Seconds(), "direct-MB/s")
	b.ReportMetric(mb/wBest.Seconds(), "warden-MB/s")
	b.ReportMetric(dBest.Seconds()/wBest.Seconds(), "ratio-warden/direct")
	fmt.Printf("throughput: direct %.0f MB/s, warden %.0f MB/s (recording on), ssh -J %.0f MB/s; ratio warden/direct %.2f (target >= 0.8), -J/direct %.2f\n",
		mb/dBest.Seconds(), mb/wBest.Seconds(), mb/jBest.Seconds(), dBest.Seconds()/wBest.Seconds(), dBest.Seconds()/jBest.Seconds())
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
		j = append(j, timeCmd(b, jumpCmd(ctx, bed, direct, "true")))
	}
	dm, gm, jm := median(d), median(g), median(j)
	b.ReportMetric(float64(dm.Microseconds())/1000, "direct-ms")
	b.ReportMetric(float64(gm.Microseconds())/1000, "warden-ms")
	b.ReportMetric(gm.Seconds()/dm.Seconds(), "ratio-warden/direct")
	fmt.Printf("setup: direct %v, warden %v, ssh -J %v (medians of %d); ratio warden/direct %.2f (target <= 1.3), -J/direct %.2f\n",
		dm.Round(time.Millisecond), gm.Round(time.Millisecond), jm.Round(time.Millisecond), n, gm.Seconds()/dm.Seconds(), jm.Seconds()/dm.Seconds())
}

// BenchmarkEcho: one byte through `ssh ... cat` and back, a few thousand
// times; p50 and p99.
func BenchmarkEcho(b *testing.B) {
	bed, direct := benchBed(b)
	ctx := context.Background()
	dp50, dp99 := echoRTT(b, direct.SSH(ctx, bed.host.Port, "root", "cat"))
	gp50, gp99 := echoRTT(b, bed.alice.SSH(ctx, bed.port, "root@web01", "cat"))
	jp50, jp99 := echoRTT(b, jumpCmd(ctx, bed, direct, "cat"))
	b.ReportMetric(float64(dp50.Microseconds()), "direct-p50-µs")
	b.ReportMetric(float64(gp50.Microseconds()), "warden-p50-µs")
	b.ReportMetric(float64(gp99.Microseconds()), "warden-p99-µs")
	b.ReportMetric(float64(jp50.Microseconds()), "jump-p50-µs")
	us := func(d time.Duration) int64 { return d.Microseconds() }
	fmt.Printf("echo round trip (µs): direct p50 %d p99 %d; warden p50 %d p99 %d; ssh -J p50 %d p99 %d (target: warden p50 below ssh -J)\n",
		us(dp50), us(dp99), us(gp50), us(gp99), us(jp50), us(jp99))
}

func echoRTT(b *testing.B, cmd *exec.Cmd) (p50, p99 time.Duration) {
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
	buf := make([]byte, 1)
	// Warm up: the first round trips include the session start.
	for i := 0; i < 50; i++ {
		in.Write([]byte{'x'})
		io.ReadFull(out, buf)
	}
	const n = 3000
	rtts := make([]time.Duration, 0, n)
	for i := 0; i < n; i++ {
		start := time.Now()
		if _, err := in.Write([]byte{'x'}); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(out, buf); err != nil {
			b.Fatal(err)
		}
		rtts = append(rtts, time.Since(start))
	}
	in.Close()
	cmd.Wait()
	sort.Slice(rtts, func(i, j int) bool { return rtts[i] < rtts[j] })
	return rtts[n/2], rtts[n*99/100]
}

func median(d []time.Duration) time.Duration {
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	return s[len(s)/2]
}
