package cli

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"os/user"
	"path/filepath"
	"strings"
	"syscall"

	gossh "golang.org/x/crypto/ssh"

	"github.com/warden-gw/warden/internal/demohost"
	"github.com/warden-gw/warden/internal/keyfile"
	"github.com/warden-gw/warden/policy"
	"github.com/warden-gw/warden/vault"
)

// demoUsers are the demo's people: one admin with standing access, one
// approver, one auditor.
var demoUsers = []struct{ name, group, what string }{
	{"alice", "sysadmins", "admin with standing access to demo01"},
	{"bob", "security", "approver"},
	{"carol", "auditors", "auditor"},
}

func runDemo(e *env, args []string) error {
	fs := newFlags(e, "demo", "demo [--dir DIR] [--port 2222]")
	dir := fs.String("dir", "warden-demo", "directory for everything the demo writes")
	port := fs.Int("port", 2222, "gateway port")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usageError("demo takes no arguments (got %q)", pos[0])
	}
	if *port < 0 || *port > 65535 {
		return usageError("--port must be 0..65535")
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return demo(ctx, e, abs, *port, log)
}

func demo(ctx context.Context, e *env, dir string, port int, log *slog.Logger) error {
	dir, err := checkDemoDir(dir, os.Geteuid()) // demo_dir.go
	if err != nil {
		return err
	}
	data := filepath.Join(dir, "data")
	if err := os.MkdirAll(data, 0o700); err != nil {
		return err
	}
	// The CA comes first: the demo host must trust it before anyone connects.
	ca, err := vault.OpenBuiltin(data, vault.BuiltinOptions{})
	if err != nil {
		return err
	}
	caKey, err := ca.CAPublicKey(ctx)
	if err != nil {
		return err
	}
	host, err := demohost.Start(ctx, demohost.Options{
		Addr: "127.0.0.1:0", HostKeyPath: filepath.Join(dir, "demohost_ed25519"), UserCA: caKey, Dir: dir, Logger: log,
	})
	if err != nil {
		return fmt.Errorf("demo host: %w", err)
	}
	defer host.Close()

	keys := map[string]string{}
	for _, u := range demoUsers {
		pub, err := demoUserKey(filepath.Join(dir, "keys", u.name))
		if err != nil {
			return err
		}
		keys[u.name] = pub
	}
	login := currentLogin()
	cfgPath := filepath.Join(dir, "warden.yaml")
	if err := os.WriteFile(cfgPath, []byte(demoPolicy(port, host, keys, login)), 0o600); err != nil {
		return err
	}
	cfg, err := policy.Load(cfgPath)
	if err != nil {
		return fmt.Errorf("demo policy: %w", err)
	}
	gw, err := openGateway(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer gw.close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
	}
	hostKey, _, err := keyfile.LoadOrCreateEd25519(cfg.HostKey)
	if err != nil {
		return err
	}
	_, gwPort, _ := net.SplitHostPort(ln.Addr().String())
	known := filepath.Join(dir, "known_hosts")
	line := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(hostKey.PublicKey())))
	if err := os.WriteFile(known, []byte(fmt.Sprintf("[127.0.0.1]:%s %s\n[localhost]:%s %s\n", gwPort, line, gwPort, line)), 0o600); err != nil {
		return err
	}
	printDemo(e, dir, gwPort, login, known, host.Describe())
	return gw.serve(ctx, ln)
}

func printDemo(e *env, dir, port, login, known, accounts string) {
	ssh := func(user, key string) string {
		return fmt.Sprintf("ssh -p %s -i %s -o IdentitiesOnly=yes -o UserKnownHostsFile=%s %s@localhost",
			port, filepath.Join(dir, "keys", key), known, user)
	}
	w := e.stdout
	fmt.Fprintf(w, "Warden demo running: gateway on 127.0.0.1:%s, built-in CA, managed host demo01.\n", port)
	fmt.Fprintf(w, "Everything it writes is under %s (policy: %s).\n", dir, filepath.Join(dir, "warden.yaml"))
	// Said plainly: which OS user a login becomes is the demo host's doing,
	// not Warden's, and it decides what "root" means below.
	fmt.Fprintf(w, "Note: %s.\n\n", accounts)
	fmt.Fprintln(w, "Demo users (keys in "+filepath.Join(dir, "keys")+"):")
	for _, u := range demoUsers {
		fmt.Fprintf(w, "  %-6s %s\n", u.name, u.what)
	}
	fmt.Fprintln(w, "\nTry, in another terminal:")
	fmt.Fprintf(w, "  %s            # alice: a shell on demo01\n", ssh(login+"@demo01", "alice"))
	fmt.Fprintf(w, "  %s uname -a   # one command\n", ssh(login+"@demo01", "alice"))
	fmt.Fprintf(w, "  %s whoami             # Warden's command interface\n", ssh("alice", "alice"))
	fmt.Fprintf(w, "  %s hosts\n", ssh("carol", "carol"))
	fmt.Fprintf(w, "  %s            # refused: bob has no role on demo01, so to him it is an unknown host\n", ssh(login+"@demo01", "bob"))
	fmt.Fprintln(w, "\nJust-in-time root: alice asks, bob approves, alice logs in as root until the grant ends:")
	fmt.Fprintf(w, "  %s request demo-root --for 30m --reason \"'patch kernel'\"\n", ssh("alice", "alice"))
	fmt.Fprintf(w, "  %s approve 1\n", ssh("bob", "bob"))
	fmt.Fprintf(w, "  %s\n", ssh("root@demo01", "alice"))
	fmt.Fprintln(w, "\nThen look at what was recorded:")
	fmt.Fprintf(w, "  warden sessions --data %s\n", filepath.Join(dir, "data"))
	fmt.Fprintf(w, "  warden commands --data %s\n", filepath.Join(dir, "data"))
	fmt.Fprintf(w, "  warden play --data %s --idle-limit 1 SESSION_ID\n", filepath.Join(dir, "data"))
	fmt.Fprintln(w, "\nOr in the browser console: this prints a one-time sign-in link (5 minutes, single use) to open:")
	fmt.Fprintf(w, "  %s console\n", ssh("carol", "carol"))
	fmt.Fprintln(w, "\nPress Ctrl-C to stop.")
}

// currentLogin is the login of the demo's standing role: the name of the
// OS user running the demo, which the demo host runs every session as. Run
// as root it is "demo", which the demo host runs as an unprivileged
// account: a standing role must never be uid 0, or the just-in-time root
// step would show nothing.
func currentLogin() string {
	if os.Geteuid() == 0 {
		return "demo"
	}
	if u, err := user.Current(); err == nil && validLogin(u.Username) && u.Username != demohost.RootLogin {
		return u.Username
	}
	return "demo"
}

func validLogin(s string) bool {
	if s == "" || len(s) > 32 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func demoPolicy(port int, host *demohost.Host, keys map[string]string, login string) string {
	hk := strings.TrimSpace(string(gossh.MarshalAuthorizedKey(host.HostKey())))
	return fmt.Sprintf(`# Written by 'warden demo'. Rewritten on every start.
listen: "127.0.0.1:%d"
# The browser console; ssh ... console prints a link with the port.
http_listen: "127.0.0.1:0"
host_key: host_ed25519
data_dir: data
credentials:
  backend: builtin
  cert_ttl: 2m
recording:
  input: true
  on_failure: terminate
tenants:
  - name: demo
    hosts:
      - name: demo01
        address: %s
        host_key: %q
        labels: {env: demo}
groups:
  - name: sysadmins
  - name: security
  - name: auditors
users:
  - name: alice
    keys: [%q]
    groups: [sysadmins]
  - name: bob
    keys: [%q]
    groups: [security]
  - name: carol
    keys: [%q]
    groups: [auditors]
roles:
  - name: demo-admin
    tenant: demo
    hosts: {names: [demo01]}
    logins: [%s]
    members: [sysadmins]
  - name: demo-root
    tenant: demo
    hosts: {labels: {env: demo}}
    logins: [root]
    privileged: true
    eligible: [sysadmins]
    approvers: [security]
    max_duration: 1h
`, port, host.Addr(), hk, keys["alice"], keys["bob"], keys["carol"], login)
}
