package sshtest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
	"golang.org/x/crypto/ssh/knownhosts"
)

// Client runs the real OpenSSH clients with one generated ed25519 key and a
// known_hosts file of its own. Its command lines ignore ~/.ssh, the system
// ssh_config and any ssh-agent, so a test sees exactly what it set up.
type Client struct {
	// Dir holds the client's files.
	Dir string
	// KeyPath is the private key file (ssh -i). A certificate written by
	// SetCertificate sits next to it as KeyPath+"-cert.pub", where ssh
	// finds it without further options.
	KeyPath string
	// PublicKey is the client's public key.
	PublicKey ssh.PublicKey
	// KnownHostsPath is the client's only known_hosts file.
	KnownHostsPath string

	t              testing.TB
	ssh, scp, sftp string // absolute paths of the clients
}

// loopback is the address every command line connects to.
const loopback = "127.0.0.1"

// NewClient generates a key with the real ssh-keygen in dir (a new temporary
// directory when dir is empty) and checks that ssh, scp and sftp exist. The
// path must not contain spaces or quotes, which ssh's -o parsing would split.
func NewClient(t testing.TB, dir string) *Client {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	if strings.ContainsAny(dir, " \t\n\"'\\") {
		t.Fatalf("sshtest: client dir %q contains spaces or quotes, which ssh options cannot carry", dir)
	}
	c := &Client{
		Dir:            dir,
		KeyPath:        filepath.Join(dir, "id_ed25519"),
		KnownHostsPath: filepath.Join(dir, "known_hosts"),
		t:              t,
		ssh:            program(t, "ssh"),
		scp:            program(t, "scp"),
		sftp:           program(t, "sftp"),
	}
	keygen := exec.Command(program(t, "ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "sshtest client", "-f", c.KeyPath)
	if out, err := keygen.CombinedOutput(); err != nil {
		t.Fatalf("sshtest: ssh-keygen: %v: %s", err, out)
	}
	pub, err := os.ReadFile(c.KeyPath + ".pub")
	if err != nil {
		t.Fatalf("sshtest: read generated public key: %v", err)
	}
	c.PublicKey, _, _, _, err = ssh.ParseAuthorizedKey(pub)
	if err != nil {
		t.Fatalf("sshtest: parse generated public key: %v", err)
	}
	writeFile(t, c.KnownHostsPath, nil)
	return c
}

// SetCertificate writes cert as KeyPath+"-cert.pub", so that ssh offers it
// with the key, and returns that path.
func (c *Client) SetCertificate(cert *ssh.Certificate) string {
	c.t.Helper()
	path := c.KeyPath + "-cert.pub"
	writeFile(c.t, path, ssh.MarshalAuthorizedKey(cert))
	return path
}

// TrustHost adds a known_hosts line for the host at addr ("127.0.0.1:PORT",
// written "[127.0.0.1]:PORT" as OpenSSH does) with the given key.
func (c *Client) TrustHost(addr string, key ssh.PublicKey) {
	c.t.Helper()
	c.appendKnownHosts(knownhosts.Line([]string{knownhosts.Normalize(addr)}, key))
}

// TrustHostCA adds a known_hosts @cert-authority line: every host whose
// certificate this CA signed is trusted.
func (c *Client) TrustHostCA(ca ssh.PublicKey) {
	c.t.Helper()
	c.appendKnownHosts("@cert-authority * " + strings.TrimSpace(string(ssh.MarshalAuthorizedKey(ca))))
}

func (c *Client) appendKnownHosts(line string) {
	c.t.Helper()
	f, err := os.OpenFile(c.KnownHostsPath, os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		c.t.Fatalf("sshtest: open known_hosts: %v", err)
	}
	defer f.Close()
	if _, err := f.WriteString(line + "\n"); err != nil {
		c.t.Fatalf("sshtest: write known_hosts: %v", err)
	}
}

// Args returns ssh's common options for port: no config files, only this
// client's key (and its certificate), only its known_hosts, strict host key
// checking, and no prompts, so that a wrong host key or a refused key fails
// instead of hanging.
func (c *Client) Args(port string) []string { return c.options("-p", port) }

// SCPArgs is Args for scp, which spells the port option -P.
func (c *Client) SCPArgs(port string) []string { return c.options("-P", port) }

// SFTPArgs is Args for sftp, which spells the port option -P.
func (c *Client) SFTPArgs(port string) []string { return c.options("-P", port) }

func (c *Client) options(portFlag, port string) []string {
	return []string{
		"-F", "/dev/null",
		"-i", c.KeyPath,
		"-o", "IdentitiesOnly=yes",
		"-o", "IdentityAgent=none",
		"-o", "UserKnownHostsFile=" + c.KnownHostsPath,
		"-o", "GlobalKnownHostsFile=/dev/null",
		"-o", "StrictHostKeyChecking=yes",
		"-o", "UpdateHostKeys=no",
		"-o", "BatchMode=yes",
		"-o", "LogLevel=ERROR",
		portFlag, port,
	}
}

// Dest returns the ssh destination for user on the loopback address. OpenSSH
// splits user and host at the last '@', so Dest("root@web01") is
// "root@web01@127.0.0.1" and the SSH user name stays "root@web01".
func Dest(user string) string { return user + "@" + loopback }

// Remote returns an scp operand for path on the loopback address as user:
// "user@127.0.0.1:path".
func Remote(user, path string) string { return Dest(user) + ":" + path }

// SSH returns the command "ssh OPTIONS -- user@127.0.0.1 args...". The "--"
// keeps args from being read as ssh options.
func (c *Client) SSH(ctx context.Context, port, user string, args ...string) *exec.Cmd {
	argv := append(c.Args(port), "--", Dest(user))
	return exec.CommandContext(ctx, c.ssh, append(argv, args...)...)
}

// SCP returns the command "scp OPTIONS args..."; args holds any further scp
// flags (such as -O for the legacy protocol) and the operands (see Remote).
func (c *Client) SCP(ctx context.Context, port string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, c.scp, append(c.SCPArgs(port), args...)...)
}

// SFTP returns the command "sftp OPTIONS -b - user@127.0.0.1" with batch as
// its standard input. In batch mode sftp stops at the first failing command
// and exits non-zero.
func (c *Client) SFTP(ctx context.Context, port, user, batch string) *exec.Cmd {
	argv := append(c.SFTPArgs(port), "-b", "-", Dest(user))
	cmd := exec.CommandContext(ctx, c.sftp, argv...)
	cmd.Stdin = strings.NewReader(batch)
	return cmd
}
