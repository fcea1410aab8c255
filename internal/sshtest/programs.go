package sshtest

import (
	"net"
	"os/exec"
	"path/filepath"
	"testing"
)

// debianPackage names the Debian package that provides each OpenSSH program,
// so that a failure tells the reader exactly what to install.
var debianPackage = map[string]string{
	"sshd":        "openssh-server",
	"sftp-server": "openssh-sftp-server",
	"ssh":         "openssh-client",
	"scp":         "openssh-client",
	"sftp":        "openssh-client",
	"ssh-keygen":  "openssh-client",
}

// fallbackDirs are searched when a program is not on PATH: sshd lives in
// /usr/sbin, which a non-login PATH often lacks.
var fallbackDirs = []string{"/usr/sbin", "/usr/bin", "/usr/lib/openssh"}

// program returns the absolute path of an OpenSSH program or fails the test.
// The path is absolute because sshd refuses to re-execute itself otherwise.
func program(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range fallbackDirs {
			if q, qerr := exec.LookPath(filepath.Join(dir, name)); qerr == nil {
				p, err = q, nil
				break
			}
		}
	}
	if err != nil {
		t.Fatalf("sshtest: %s not found: install the Debian package %s (apt-get install %s): %v",
			name, debianPackage[name], debianPackage[name], err)
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		t.Fatalf("sshtest: absolute path of %s: %v", p, err)
	}
	return abs
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago. Another
// process may take it before the caller binds it; StartHost retries for that.
func FreePort(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("sshtest: find a free port: %v", err)
	}
	defer l.Close()
	_, port, err := net.SplitHostPort(l.Addr().String())
	if err != nil {
		t.Fatalf("sshtest: find a free port: %v", err)
	}
	return port
}
