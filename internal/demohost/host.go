package demohost

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"sync"
	"time"

	gliderssh "github.com/gliderlabs/ssh"
	"golang.org/x/crypto/ssh"
)

// ErrNoUserCA is returned by Start without Options.UserCA: a host that
// trusts no CA could never be logged in to.
var ErrNoUserCA = errors.New("demohost: no user CA to trust")

// DefaultSFTPServer is where Debian's openssh-sftp-server installs the
// program that serves the sftp subsystem.
const DefaultSFTPServer = "/usr/lib/openssh/sftp-server"

// Options configures Start. Only UserCA is required.
type Options struct {
	// Addr is the TCP address to listen on; "" means "127.0.0.1:0".
	Addr string
	// HostKeyPath is the ed25519 host key file, created (mode 0600) when
	// missing. "" means a new key in memory on every start.
	HostKeyPath string
	// UserCA is the only CA whose user certificates may log in.
	UserCA ssh.PublicKey
	// Shell runs every session; "" means $SHELL, else /bin/bash, else /bin/sh.
	Shell string
	// Dir is the sessions' working directory; "" means the user's home.
	Dir string
	// Logger receives authentication and session events; nil means
	// slog.Default().
	Logger *slog.Logger
	// Now is the clock that certificate validity is checked against; nil
	// means time.Now.
	Now func() time.Time
	// SFTPServer is the sftp-server program; "" means DefaultSFTPServer.
	SFTPServer string
	// Unprivileged is the OS account that runs every login except "root"
	// when the host runs as root; "" means DefaultUnprivileged. Ignored
	// when the host does not run as root (see account.go).
	Unprivileged string
}

// Host is a running demo host.
type Host struct {
	srv     *gliderssh.Server
	addr    string
	hostKey ssh.PublicKey
	log     *slog.Logger

	shell      string
	dir        string
	sftpServer string
	accounts   accounts

	ln        net.Listener
	mu        sync.Mutex
	conns     map[net.Conn]struct{} // open connections, authenticated or not
	closeOnce sync.Once
	closeErr  error
	closed    chan struct{} // closed by Close
	served    chan struct{} // closed when Serve has returned
}

// Start listens on opt.Addr and serves until ctx is done or Close is called.
// The host accepts connections when Start returns.
func Start(ctx context.Context, opt Options) (*Host, error) {
	if opt.UserCA == nil {
		return nil, ErrNoUserCA
	}
	h := &Host{
		log:        opt.Logger,
		sftpServer: opt.SFTPServer,
		conns:      map[net.Conn]struct{}{},
		closed:     make(chan struct{}),
		served:     make(chan struct{}),
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.sftpServer == "" {
		h.sftpServer = DefaultSFTPServer
	}
	var err error
	if h.accounts, err = newAccounts(os.Geteuid(), opt.Unprivileged); err != nil {
		return nil, err
	}
	if h.shell, err = resolveShell(opt.Shell); err != nil {
		return nil, err
	}
	if h.dir, err = resolveDir(opt.Dir, h.accounts.self.home); err != nil {
		return nil, err
	}
	signer, err := loadOrCreateHostKey(opt.HostKeyPath)
	if err != nil {
		return nil, err
	}
	h.hostKey = signer.PublicKey()
	now := opt.Now
	if now == nil {
		now = time.Now
	}
	auth := &certAuth{ca: opt.UserCA, now: now, log: h.log}

	h.srv = &gliderssh.Server{
		Version:              "WardenDemoHost",
		HostSigners:          []gliderssh.Signer{signer},
		Handler:              h.handleSession,
		PublicKeyHandler:     auth.publicKey,
		ServerConfigCallback: auth.serverConfig,
		PtyCallback:          permitPTY,
		// The maps are set explicitly, not left nil, because nil picks up
		// gliderlabs' package-level defaults, which any imported package
		// could extend with forwarding handlers.
		ChannelHandlers: map[string]gliderssh.ChannelHandler{
			"session":      gliderssh.DefaultSessionHandler,
			"direct-tcpip": refuseForwarding,
		},
		RequestHandlers:   map[string]gliderssh.RequestHandler{},
		SubsystemHandlers: map[string]gliderssh.SubsystemHandler{"sftp": h.handleSFTP},
	}
	addr := opt.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("demohost: listen: %w", err)
	}
	h.ln = ln
	h.addr = ln.Addr().String()
	go func() {
		defer close(h.served)
		if err := h.srv.Serve(ln); err != nil && !errors.Is(err, gliderssh.ErrServerClosed) {
			h.log.Error("demohost: serve", "err", err)
		}
	}()
	go func() {
		select {
		case <-ctx.Done():
			_ = h.Close() // the owner's own Close returns the same error
		case <-h.closed:
		}
	}()
	h.log.Info("demohost: listening", "addr", h.addr, "host_key", ssh.FingerprintSHA256(h.hostKey),
		"runs_as", h.Describe(), "shell", h.shell)
	return h, nil
}

// Addr returns the address the host listens on, such as "127.0.0.1:40123".
func (h *Host) Addr() string { return h.addr }

// HostKey returns the host's public key, for the gateway's host_key setting.
func (h *Host) HostKey() ssh.PublicKey { return h.hostKey }

// Close stops listening and closes every connection; sessions' processes are
// killed as their connections end. It is safe to call more than once.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.mu.Lock()
		close(h.closed)
		for c := range h.conns {
			c.Close()
		}
		h.mu.Unlock()
		h.closeErr = h.srv.Close()
		// gliderlabs closes only the listeners and connections it has
		// registered; a Serve goroutine that has not started yet would
		// otherwise accept forever.
		if err := h.ln.Close(); err != nil && !errors.Is(err, net.ErrClosed) && h.closeErr == nil {
			h.closeErr = fmt.Errorf("demohost: close: %w", err)
		}
		<-h.served
	})
	return h.closeErr
}

// trackConn is the gliderlabs ConnCallback. It records every connection
// from the moment it is accepted, because gliderlabs registers a connection
// for Close only after its handshake, and Close must not leave one that is
// mid-handshake to become a session afterwards.
func (h *Host) trackConn(ctx gliderssh.Context, c net.Conn) net.Conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	select {
	case <-h.closed:
		return nil // gliderlabs closes it
	default:
	}
	h.conns[c] = struct{}{}
	go func() {
		<-ctx.Done() // cancelled when the connection closes
		h.mu.Lock()
		delete(h.conns, c)
		h.mu.Unlock()
	}()
	return c
}

// refuseForwarding rejects direct-tcpip channels (ssh -L, -W, -J). The
// demo host is a shell target, not a network hop; a demo gateway must not
// turn into a proxy into the demo machine's network.
func refuseForwarding(_ *gliderssh.Server, _ *ssh.ServerConn, ch ssh.NewChannel, _ gliderssh.Context) {
	_ = ch.Reject(ssh.Prohibited, "port forwarding is disabled on the demo host")
}

// currentAccount describes the OS user running the demo. A process may run
// under a uid without a passwd entry (containers), so it falls back to the
// environment and the numeric uid.
func currentAccount() account {
	if u, err := user.Current(); err == nil {
		return account{name: u.Username, home: u.HomeDir}
	}
	name := os.Getenv("USER")
	if name == "" {
		name = strconv.Itoa(os.Getuid())
	}
	return account{name: name, home: os.Getenv("HOME")}
}

// resolveShell picks the program that runs sessions.
func resolveShell(shell string) (string, error) {
	candidates := []string{shell}
	if shell == "" {
		candidates = []string{os.Getenv("SHELL"), "/bin/bash", "/bin/sh"}
	}
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("demohost: no usable shell among %q", candidates)
}

// resolveDir picks the sessions' working directory.
func resolveDir(dir, home string) (string, error) {
	if dir == "" {
		dir = home
	}
	if dir == "" {
		dir = "/"
	}
	info, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("demohost: working directory: %w", err)
	}
	if !info.IsDir() {
		return "", fmt.Errorf("demohost: working directory %s is not a directory", dir)
	}
	return dir, nil
}
