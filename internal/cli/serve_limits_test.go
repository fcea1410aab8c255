package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/internal/keyfile"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/internal/storetest"
	"github.com/warden-gw/warden/vault"
)

// Numbers of the memory test: stalledSources × stalledPerSource stalled
// connections, against the default limits (max_startups 100,
// max_startups_per_source 10), under a bound on the gateway's resident
// memory.
const (
	stalledSources   = 15
	stalledPerSource = 100
	defaultStartups  = 100
	defaultPerSource = 10
	rssBoundMiB      = 200
)

// TestServeMemoryBoundUnderStalledConnections runs `warden serve` as its own
// process with the default limits and holds 1,500 TCP connections to it
// from 15 loopback addresses: a third send nothing, a third send a version
// line, a third a version line and all but the last byte of a packet of
// 256 KiB, the most x/crypto will buffer for one client before it
// authenticates. The gateway's resident memory (now and at its peak) must
// stay within 200 MiB, it must hold no more than max_startups of them, no
// source more than max_startups_per_source, and a real admin from
// 127.0.0.1 must still log in through it to a real sshd.
//
// Memory is not timing: the bound holds or not however slow the machine.
// The binary is built without the race detector, whose shadow memory would
// measure the detector rather than the gateway.
func TestServeMemoryBoundUnderStalledConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs warden serve")
	}
	raiseFileLimit(t, stalledSources*stalledPerSource+500)
	dir := t.TempDir()
	bin := buildWarden(t, dir)

	data := filepath.Join(dir, "data")
	ca, err := vault.OpenBuiltin(data, vault.BuiltinOptions{})
	if err != nil {
		t.Fatal(err)
	}
	caKey, err := ca.CAPublicKey(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hostKeyPath := filepath.Join(data, "host_ed25519")
	gwKey, _, err := keyfile.LoadOrCreateEd25519(hostKeyPath)
	if err != nil {
		t.Fatal(err)
	}
	host := sshtest.StartHost(t, sshtest.HostOptions{TrustedUserCAKeys: []gossh.PublicKey{caKey}})
	os.MkdirAll(filepath.Join(dir, "alice"), 0o700)
	alice := sshtest.NewClient(t, filepath.Join(dir, "alice"))

	cfgPath := filepath.Join(dir, "warden.yaml")
	// The grace time is raised so that no stalled connection is closed by
	// it while the test measures: the caps alone must bound memory.
	err = os.WriteFile(cfgPath, []byte(fmt.Sprintf(`listen: "127.0.0.1:0"
data_dir: %s
%shost_key: %s
limits: {login_grace_time: 5m}
tenants:
  - name: acme
    hosts:
      - name: web01
        address: %q
        host_key: %q
groups:
  - name: sysadmins
users:
  - name: alice
    keys: [%q]
    groups: [sysadmins]
roles:
  - name: web-admin
    tenant: acme
    hosts: {names: [web01]}
    logins: [root]
    members: [sysadmins]
`, data, storetest.PolicyStore(t, data, filepath.Join(dir, "pg.dsn")), hostKeyPath, host.Addr, authorizedLine(host.HostKey), authorizedLine(alice.PublicKey))), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	gw := startServe(t, bin, cfgPath)
	alice.TrustHost(gw.addr, gwKey.PublicKey())
	_, port, _ := net.SplitHostPort(gw.addr)
	login := func(word string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		out, err := alice.SSH(ctx, port, "root@web01", "echo", word).CombinedOutput()
		if err != nil || string(out) != word+"\n" {
			t.Fatalf("login through the gateway: %v %q\ngateway log:\n%s", err, out, gw.log.String())
		}
	}
	login("warm")
	before := procStatus(t, gw.cmd.Process.Pid)

	// Almost a whole packet of x/crypto's maximum length (262144): length
	// 262128, padding 4, and all but the last byte, so that the gateway's
	// packet buffer is not only allocated but written, hence resident.
	bigPacket := append([]byte("SSH-2.0-stalled\r\n\x00\x03\xff\xf0\x04"), make([]byte, 262128-2)...)
	conns := make([]*stalled, 0, stalledSources*stalledPerSource)
	var writes sync.WaitGroup
	for s := 0; s < stalledSources; s++ {
		src := fmt.Sprintf("127.0.0.%d", s+2)
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 30 * time.Second}
		for i := 0; i < stalledPerSource; i++ {
			c, err := d.Dial("tcp", gw.addr)
			if err != nil {
				t.Fatalf("connection %d from %s: %v", i, src, err)
			}
			t.Cleanup(func() { c.Close() })
			var send []byte
			switch i % 3 {
			case 1:
				send = []byte("SSH-2.0-stalled\r\n")
			case 2:
				send = bigPacket
			}
			if send != nil {
				// In the background: a connection the gateway has not
				// accepted yet takes only what the socket buffers hold.
				// Errors are the gateway closing it, which is fine.
				writes.Add(1)
				go func() {
					defer writes.Done()
					c.SetWriteDeadline(time.Now().Add(2 * time.Minute))
					c.Write(send)
				}()
			}
			conns = append(conns, &stalled{c: c, src: src})
		}
	}
	writes.Wait()

	// The gateway closes what it drops or evicts; wait until what is left
	// open is what it holds. Every source tried more than its share, so
	// the table ends full.
	open, perSource := waitHeld(t, conns, defaultStartups)
	if open != defaultStartups {
		t.Fatalf("%d stalled connections held, want max_startups %d", open, defaultStartups)
	}
	for src, n := range perSource {
		if n > defaultPerSource {
			t.Fatalf("%s holds %d connections, over max_startups_per_source %d", src, n, defaultPerSource)
		}
	}
	with := procStatus(t, gw.cmd.Process.Pid)

	// A real admin still gets in meanwhile, from a source holding nothing.
	login("admitted")
	after := procStatus(t, gw.cmd.Process.Pid)
	t.Logf("gateway memory: VmRSS %d KiB before, %d KiB with %d stalled connections attempted (%d held), %d KiB after a login; VmHWM %d KiB",
		before.rss, with.rss, len(conns), open, after.rss, after.hwm)
	for _, m := range []struct {
		what string
		kib  int
	}{{"VmRSS with stalled connections", with.rss}, {"VmRSS after the login", after.rss}, {"VmHWM (peak)", after.hwm}} {
		if m.kib > rssBoundMiB*1024 {
			t.Errorf("%s is %d KiB, over %d MiB", m.what, m.kib, rssBoundMiB)
		}
	}
}

// stalled is one connection of the flood.
type stalled struct {
	c      net.Conn
	src    string
	closed bool
}

// waitHeld polls the flood's connections until at most max are still open
// (reading and discarding what the gateway sent them) and returns how many
// are open, in all and per source. Connections not yet accepted count as
// open, so the count only reaches max once the gateway has seen them all.
func waitHeld(t *testing.T, conns []*stalled, max int) (int, map[string]int) {
	t.Helper()
	buf := make([]byte, 4096)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		open, per := 0, map[string]int{}
		for _, s := range conns {
			for !s.closed {
				s.c.SetReadDeadline(time.Now().Add(time.Millisecond))
				_, err := s.c.Read(buf)
				if err == nil {
					continue
				}
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					break
				}
				s.closed = true // EOF or reset: the gateway closed it
			}
			if !s.closed {
				open++
				per[s.src]++
			}
		}
		if open <= max || time.Now().After(deadline) {
			return open, per
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type memory struct{ rss, hwm int } // KiB

// procStatus reads a process's resident memory, now and at its peak, from
// /proc/PID/status.
func procStatus(t *testing.T, pid int) memory {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}
	field := func(name string) int {
		m := regexp.MustCompile(`(?m)^` + name + `:\s+(\d+) kB$`).FindSubmatch(raw)
		if m == nil {
			t.Fatalf("no %s in /proc/%d/status", name, pid)
		}
		n, _ := strconv.Atoi(string(m[1]))
		return n
	}
	return memory{rss: field("VmRSS"), hwm: field("VmHWM")}
}

// raiseFileLimit raises the soft limit on open files to at least n (within
// the hard limit); the gateway process inherits it.
func raiseFileLimit(t *testing.T, n uint64) {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	if lim.Max < n {
		t.Fatalf("open files: hard limit %d is below the %d this test needs", lim.Max, n)
	}
	old := lim
	lim.Cur = n
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Setrlimit(syscall.RLIMIT_NOFILE, &old) })
}

// buildWarden builds cmd/warden into dir, without the race detector.
func buildWarden(t *testing.T, dir string) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "warden")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/warden-gw/warden/cmd/warden")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// served is a running `warden serve`.
type served struct {
	cmd  *exec.Cmd
	addr string
	log  *lockedLog
	done chan struct{} // closed once the process has exited
}

type lockedLog struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedLog) add(s string) { l.mu.Lock(); l.b.WriteString(s + "\n"); l.mu.Unlock() }
func (l *lockedLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

var listeningRE = regexp.MustCompile(`msg="warden listening" addr=(\S+)`)

// startServe starts bin serve -c cfg and waits for its listening line. The
// test's cleanup stops it with SIGTERM, as an operator would.
func startServe(t *testing.T, bin, cfg string) *served {
	t.Helper()
	s := &served{cmd: exec.Command(bin, "serve", "-c", cfg), log: &lockedLog{}}
	stderr, err := s.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	s.done = done
	t.Cleanup(func() {
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			s.cmd.Process.Kill()
			<-done
		}
	})
	addrc := make(chan string, 1)
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			s.log.add(sc.Text())
			if m := listeningRE.FindStringSubmatch(sc.Text()); m != nil {
				addrc <- m[1]
			}
		}
		io.Copy(io.Discard, stderr)
		s.cmd.Wait()
	}()
	select {
	case s.addr = <-addrc:
	case <-done:
		t.Fatalf("warden serve exited:\n%s", s.log.String())
	case <-time.After(2 * time.Minute):
		t.Fatalf("warden serve did not start listening:\n%s", s.log.String())
	}
	return s
}

func authorizedLine(k gossh.PublicKey) string {
	return strings.TrimSpace(string(gossh.MarshalAuthorizedKey(k)))
}
