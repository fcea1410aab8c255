package gateway_test

import (
	"context"
	"net"
	"os/exec"
	"sync"
	"testing"

	"github.com/warden-gw/warden/internal/sshtest"
)

// The floor of any proxy, for the benchmarks: a bare TCP relay between the
// same OpenSSH client and sshd. It reads each side's bytes into a 32 KiB
// buffer and writes them to the other, nothing else: no SSH, no crypto, no
// recording, no policy. The bytes still pass through user space, as they
// must through any gateway that sees them (io.Copy between two TCP
// connections would splice them inside the kernel, which no gateway that
// decrypts can), so what it adds to direct OpenSSH is the extra hop alone:
// one more process to wake on each crossing and two more socket hops.
// Warden's figures beside it show what the SSH termination and the
// recording add on top of that hop.

// bareRelay is a listening bare relay to one address.
type bareRelay struct {
	ln   net.Listener
	to   string
	wg   sync.WaitGroup
	mu   sync.Mutex
	open map[net.Conn]struct{}
}

// startBareRelay relays every connection to 127.0.0.1:port to the address
// to, until the benchmark ends.
func startBareRelay(b *testing.B, to string) *bareRelay {
	b.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	r := &bareRelay{ln: ln, to: to, open: map[net.Conn]struct{}{}}
	r.wg.Add(1)
	go r.accept()
	b.Cleanup(r.close)
	return r
}

func (r *bareRelay) port() string {
	_, port, _ := net.SplitHostPort(r.ln.Addr().String())
	return port
}

func (r *bareRelay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.open == nil {
		return false
	}
	r.open[c] = struct{}{}
	return true
}

func (r *bareRelay) accept() {
	defer r.wg.Done()
	for {
		in, err := r.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", r.to)
		if err != nil {
			in.Close()
			continue
		}
		if !r.track(in) || !r.track(out) {
			in.Close()
			out.Close()
			return
		}
		r.wg.Add(2)
		go r.copy(out, in)
		go r.copy(in, out)
	}
}

// copy moves src's bytes to dst through user space, then half-closes dst
// so that each side sees the other's end, as ssh needs to.
func (r *bareRelay) copy(dst, src net.Conn) {
	defer r.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				break
			}
		}
		if err != nil {
			break
		}
	}
	if t, ok := dst.(*net.TCPConn); ok {
		t.CloseWrite()
	}
}

func (r *bareRelay) close() {
	r.ln.Close()
	r.mu.Lock()
	for c := range r.open {
		c.Close()
	}
	r.open = nil
	r.mu.Unlock()
	r.wg.Wait()
}

// relayCmd is sshCmd through the bare relay to the host: the direct
// client, its certificate and the host's key, one hop longer.
func relayCmd(ctx context.Context, relay *bareRelay, direct *sshtest.Client, c benchCipher, args ...string) *exec.Cmd {
	argv := append(append(direct.Args(relay.port()), c.args()...), "--", sshtest.Dest("root"))
	return exec.CommandContext(ctx, "ssh", append(argv, args...)...)
}

// benchRelay starts the bare relay to the bed's host and lets direct's
// client trust the host at the relay's address.
func benchRelay(b *testing.B, bed *testbed, direct *sshtest.Client) *bareRelay {
	b.Helper()
	relay := startBareRelay(b, bed.host.Addr)
	direct.TrustHost(relay.ln.Addr().String(), bed.host.HostKey)
	return relay
}
