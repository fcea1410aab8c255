package cli

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/policy"
)

// TestSoak is `make soak` (issue 11): for WARDEN_SOAK (a duration, e.g.
// 10m) it runs a mixed load through one gateway, built in-process exactly
// as warden serve builds it so that its goroutines can be counted: shells
// on a pty, exec sessions printing random amounts of output, sftp uploads
// and downloads, and a just-in-time churn of request, approve, use and
// expiry. Then every session row is ended, every byte a session delivered
// is in its recording (and the client received exactly what was
// recorded), every sftp file arrived whole, every grant expired, `audit
// verify` passes, and the gateway's goroutines, file descriptors and
// resident memory are back at their baseline. Without WARDEN_SOAK it is
// skipped: it is not part of make test.
func TestSoak(t *testing.T) {
	spec := os.Getenv("WARDEN_SOAK")
	if spec == "" {
		t.Skip("set WARDEN_SOAK=10m (make soak) to run the soak")
	}
	dur, err := time.ParseDuration(spec)
	if err != nil {
		t.Fatalf("WARDEN_SOAK=%q: %v", spec, err)
	}
	b := newFaultBed(t)
	b.writePolicy(b.policy("[ops]", ""))
	cfg, err := policy.Load(b.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r, err := openGateway(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		<-done
		r.close()
	})
	_, b.port, _ = net.SplitHostPort(ln.Addr().String())
	for _, c := range []*sshtest.Client{b.alice, b.bob, b.carol, b.erin} {
		c.TrustHost(ln.Addr().String(), b.gwKey)
	}
	remote := filepath.Join(b.dir, "remote") // sftp's target on the host (this machine)
	os.MkdirAll(remote, 0o700)

	// Warm up (first session, first grant), then take the baseline.
	if out, errOut, code := b.ssh(b.alice, "root@web01", "echo", "warm"); code != 0 || out != "warm\n" {
		t.Fatalf("warm-up: %d %q %q", code, out, errOut)
	}
	base := measure(t)
	t.Logf("baseline: %s", base)

	var (
		stats struct{ shells, execs, sftps, grants, execBytes atomic.Int64 }
		wg    sync.WaitGroup
		until = time.Now().Add(dur)
	)
	fail := func(format string, args ...any) { t.Errorf(format, args...) }
	worker := func(name string, one func(i int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; time.Now().Before(until) && !t.Failed(); i++ {
				if err := one(i); err != nil {
					fail("%s %d: %v", name, i, err)
					return
				}
			}
		}()
	}
	worker("exec", func(i int) error {
		n := 1 + int(randN(4<<20))
		// The index makes the command, and so its log row, unique: two
		// sessions may draw the same size.
		command := fmt.Sprintf("head -c %d /dev/urandom | base64 -w 76 # exec %d", n, i)
		out, errOut, code, err := b.run(b.alice, "root@web01", command)
		if err != nil || code != 0 {
			return fmt.Errorf("code %d %v %q", code, err, errOut)
		}
		stats.execs.Add(1)
		stats.execBytes.Add(int64(len(out)))
		if err := b.checkRecorded(command, out, errOut); err != nil {
			return fmt.Errorf("%v; client stderr %q", err, errOut)
		}
		return nil
	})
	for _, c := range []*sshtest.Client{b.alice, b.erin} {
		worker("shell", func(i int) error {
			script := fmt.Sprintf("echo shell-%d-$((6*7))\nls -la / | head -40\nseq 1 %d | tail -3\nexit\n", i, 1+randN(100000))
			cmd := exec.Command("ssh", append(append([]string{"-tt"}, c.Args(b.port)...), "--", sshtest.Dest("root@web01"))...)
			cmd.Stdin = strings.NewReader(script)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				return fmt.Errorf("shell: %v %q", err, out.String())
			}
			if !strings.Contains(out.String(), fmt.Sprintf("shell-%d-42", i)) {
				return fmt.Errorf("shell output %q", out.String())
			}
			stats.shells.Add(1)
			return nil
		})
	}
	worker("sftp", func(i int) error {
		local := filepath.Join(b.dir, fmt.Sprintf("up-%d", i))
		back := local + ".back"
		data := make([]byte, randN(2<<20))
		rand.Read(data)
		if err := os.WriteFile(local, data, 0o600); err != nil {
			return err
		}
		defer os.Remove(local)
		defer os.Remove(back)
		dst := filepath.Join(remote, fmt.Sprintf("f-%d", i))
		batch := fmt.Sprintf("put %s %s\nget %s %s\nrm %s\n", local, dst, dst, back, dst)
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := b.alice.SFTP(ctx, b.port, "root@web01", batch)
		if out, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("sftp: %v %q", err, out)
		}
		got, err := os.ReadFile(back)
		if err != nil || !bytes.Equal(got, data) {
			return fmt.Errorf("the file came back different (%d of %d bytes, %v)", len(got), len(data), err)
		}
		stats.sftps.Add(1)
		return b.checkLogged(fmt.Sprintf("put %s (%d bytes)", dst, len(data)))
	})
	worker("jit", func(i int) error {
		out, errOut, code, _ := b.run(b.bob, "gw", "request", "prod-root", "--for", "3s", "--reason", fmt.Sprintf("'soak %d'", i))
		m := regexp.MustCompile(`^request (\d+) opened`).FindStringSubmatch(out)
		if code != 0 || m == nil {
			return fmt.Errorf("request: %d %q %q", code, out, errOut)
		}
		out, errOut, code, _ = b.run(b.carol, "gw", "approve", m[1])
		g := regexp.MustCompile(`grant (\d+) for bob`).FindStringSubmatch(out)
		if code != 0 || g == nil {
			return fmt.Errorf("approve: %d %q %q", code, out, errOut)
		}
		// Used at once; a session still running at the expiry is ended.
		_, errOut, code, _ = b.run(b.bob, "root@web01", "sleep 10")
		if code != 1 || !strings.Contains(errOut, "warden: grant "+g[1]+" expired at") {
			return fmt.Errorf("session under grant %s: %d %q", g[1], code, errOut)
		}
		stats.grants.Add(1)
		return nil
	})
	wg.Wait()
	t.Logf("ran %s: %d shells, %d exec sessions (%d bytes), %d sftp round trips, %d grants",
		dur, stats.shells.Load(), stats.execs.Load(), stats.execBytes.Load(), stats.sftps.Load(), stats.grants.Load())
	if t.Failed() {
		return
	}

	// Every row ended, every recording holds exactly the session's output.
	b.waitFor("every session row ended", func() bool {
		for _, s := range b.sessions() {
			if !s.ended {
				return false
			}
		}
		return true
	})
	rd, err := audit.OpenReadOnly(b.data)
	if err != nil {
		t.Fatal(err)
	}
	b.waitFor("every grant ended", func() bool {
		var open int
		rd.DB().QueryRow(`SELECT COUNT(*) FROM grants WHERE ended_at IS NULL OR end_reason != 'expired'`).Scan(&open)
		return open == 0
	})
	rows, err := rd.DB().Query(`SELECT id, bytes_out, recording_path FROM sessions WHERE recording_path != ''`)
	if err != nil {
		t.Fatal(err)
	}
	var checked int
	for rows.Next() {
		var id, rel string
		var out int64
		if err := rows.Scan(&id, &out, &rel); err != nil {
			t.Fatal(err)
		}
		if rec := int64(len(castOutput(t, filepath.Join(b.data, rel)))); rec != out {
			t.Errorf("session %s delivered %d bytes, its recording holds %d", id, out, rec)
		}
		checked++
	}
	rows.Close()
	rd.Close() // the test's own reader is not the gateway's to count
	b.auditVerify()
	t.Logf("%d recordings hold exactly what their sessions delivered", checked)

	// Back to the baseline, within what the runtime keeps for reuse.
	var after resources
	deadline := time.Now().Add(time.Minute)
	for {
		after = measure(t)
		if after.goroutines <= base.goroutines+2 && after.fds-after.dbFiles <= base.fds-base.dbFiles+2 &&
			after.dbFiles <= maxDBFiles && after.rssKiB <= base.rssKiB+64*1024 ||
			time.Now().After(deadline) {
			break
		}
		time.Sleep(time.Second)
	}
	t.Logf("after: %s (%s)", after, memoryDetail(t))
	if after.goroutines > base.goroutines+2 {
		t.Errorf("goroutines %d, baseline %d", after.goroutines, base.goroutines)
	}
	// The database's own files are counted apart: its connection pools
	// open connections under load and keep them, up to their bound, so
	// more of them after the run than at the baseline is no leak.
	if after.fds-after.dbFiles > base.fds-base.dbFiles+2 {
		t.Errorf("open files other than the database's %d, baseline %d; opened since: %v",
			after.fds-after.dbFiles, base.fds-base.dbFiles, newFiles(base.files, after.files))
	}
	if after.dbFiles > maxDBFiles {
		t.Errorf("%d files of the database open, more than its connection pools hold (%d); opened since: %v",
			after.dbFiles, maxDBFiles, newFiles(base.files, after.files))
	}
	if after.rssKiB > base.rssKiB+64*1024 {
		t.Errorf("resident memory %d KiB, baseline %d KiB; %s", after.rssKiB, base.rssKiB, memoryDetail(t))
	}
}

// resources is what the soak compares with its baseline: the test process
// is the gateway (its clients are ssh processes).
type resources struct {
	goroutines, fds, rssKiB int
	dbFiles                 int               // of fds, those on warden.db and its -wal, -shm
	files                   map[string]string // fd number: what it is open on
}

func (r resources) String() string {
	return fmt.Sprintf("goroutines %d, open files %d (the database's %d), RSS %d KiB", r.goroutines, r.fds, r.dbFiles, r.rssKiB)
}

// memoryDetail splits the process's resident memory: anonymous and file
// pages from the kernel, and what Go's runtime holds of the anonymous
// ones; the rest is C's (SQLite, through cgo).
func memoryDetail(t *testing.T) string {
	raw, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	var parts []string
	for _, f := range []string{"RssAnon", "RssFile", "RssShmem"} {
		if m := regexp.MustCompile(`(?m)^` + f + `:\s+(\d+ kB)$`).FindSubmatch(raw); m != nil {
			parts = append(parts, f+" "+string(m[1]))
		}
	}
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	parts = append(parts, fmt.Sprintf("Go heap in use %d kB, stacks %d kB, other runtime %d kB, released %d kB",
		ms.HeapInuse>>10, ms.StackSys>>10, (ms.Sys-ms.HeapSys-ms.StackSys)>>10, ms.HeapReleased>>10))
	return strings.Join(parts, ", ")
}

// newFiles names the descriptors open in after and not, or not on the same
// file, in before: what a failed fd check points at.
func newFiles(before, after map[string]string) []string {
	var opened []string
	for fd, target := range after {
		if before[fd] != target {
			opened = append(opened, fd+" -> "+target)
		}
	}
	sort.Strings(opened)
	return opened
}

func measure(t *testing.T) resources {
	runtime.GC()
	debug.FreeOSMemory()
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	files := make(map[string]string, len(fds))
	db := 0
	for _, fd := range fds {
		target, _ := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		files[fd.Name()] = target
		if strings.HasPrefix(filepath.Base(target), "warden.db") {
			db++
		}
	}
	return resources{goroutines: runtime.NumGoroutine(), fds: len(fds), dbFiles: db, rssKiB: procStatus(t, os.Getpid()).rss, files: files}
}

// maxDBFiles is the most files the gateway's SQLite connections keep open:
// the writer's connection and the read pool's four (audit's readConns), each
// on warden.db and warden.db-wal, and the -shm they share.
const maxDBFiles = (1+4)*2 + 1

func randN(n int64) int64 {
	var b [8]byte
	rand.Read(b[:])
	v := int64(0)
	for _, x := range b {
		v = v<<8 | int64(x)
	}
	if v < 0 {
		v = -v
	}
	return v % n
}

// run is ssh for the soak's workers: it reports errors instead of failing
// the test, since workers are not the test's goroutine.
func (b *faultBed) run(c *sshtest.Client, user string, args ...string) (string, string, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := c.SSH(ctx, b.port, user, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if cmd.ProcessState == nil {
		return "", "", -1, err
	}
	return out.String(), errb.String(), cmd.ProcessState.ExitCode(), nil
}

// checkRecorded finds the session that ran command (its command log row)
// and checks that its recording is the client's stdout (out) and stderr
// (errOut), byte for byte, and that its row counts as many bytes: what the
// client received is what was recorded.
func (b *faultBed) checkRecorded(command, out, errOut string) error {
	var last error
	// The client may see the end before the gateway wrote the row.
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if last = b.recorded(command, out, errOut); last == nil {
			return nil
		}
	}
	return last
}

func (b *faultBed) recorded(command, out, errOut string) error {
	rd, err := audit.OpenReadOnly(b.data)
	if err != nil {
		return err
	}
	defer rd.Close()
	var id, rel, reason string
	var ended bool
	var n int64
	err = rd.DB().QueryRow(`SELECT s.id, s.ended_at IS NOT NULL, COALESCE(s.end_reason, ''), s.bytes_out, COALESCE(s.recording_path, '')
		FROM sessions s JOIN commands c ON c.session_id = s.id WHERE c.source = 'exec' AND c.command = ?`, command).Scan(&id, &ended, &reason, &n, &rel)
	if err != nil {
		return fmt.Errorf("session of %q: %v", command, err)
	}
	if !ended {
		return fmt.Errorf("session %s not ended", id)
	}
	rec, err := castData(filepath.Join(b.data, rel))
	if err != nil {
		return fmt.Errorf("session %s: %v", id, err)
	}
	// The recording holds stdout and stderr as they came; the host's
	// shell start-up may print to stderr (root's pyenv rehash, racing the
	// other sessions). Each stderr line was one write, so it sits whole in
	// the recording: taken out, what is left must be stdout exactly.
	stdout := rec
	for _, line := range strings.SplitAfter(errOut, "\n") {
		if line != "" {
			stdout = strings.Replace(stdout, line, "", 1)
		}
	}
	if stdout != out || n != int64(len(rec)) {
		rec = stdout
		k := 0
		for k < len(rec) && k < len(out) && rec[k] == out[k] {
			k++
		}
		return fmt.Errorf("session %s (end %s): client received %d bytes, row counts %d, recording holds %d, equal up to byte %d: recorded %q, received %q",
			id, reason, len(out), n, len(rec), k, rec[k:min(len(rec), k+200)], out[k:min(len(out), k+200)])
	}
	return nil
}

// checkLogged looks for an sftp command row.
func (b *faultBed) checkLogged(command string) error {
	rd, err := audit.OpenReadOnly(b.data)
	if err != nil {
		return err
	}
	defer rd.Close()
	var n int
	if err := rd.DB().QueryRow(`SELECT COUNT(*) FROM commands WHERE source = 'sftp' AND command = ?`, command).Scan(&n); err != nil || n != 1 {
		return fmt.Errorf("command log has %d rows %q (%v)", n, command, err)
	}
	return nil
}
