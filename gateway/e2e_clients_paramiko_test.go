package gateway_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh/knownhosts"
)

// paramiko (Debian's python3-paramiko 2.12) is the SSH stack of Ansible's
// paramiko connection, Fabric and Netmiko. It has no AES-GCM and no
// chacha20: its default offer is AES-CTR with SHA-2 MACs.

// paramikoScript runs as /usr/bin/python3 (Debian's, where python3-paramiko
// is installed, whatever python3 comes first on PATH). Each step prints one
// JSON line; any exception fails the script.
const paramikoScript = `
import json, sys, time
import paramiko

port, key, known, remote, local = sys.argv[1:6]
c = paramiko.SSHClient()
c.load_host_keys(known)
c.set_missing_host_key_policy(paramiko.RejectPolicy())
c.connect("127.0.0.1", port=int(port), username="root@web01", key_filename=key,
          look_for_keys=False, allow_agent=False, timeout=20, banner_timeout=20, auth_timeout=20)
t = c.get_transport()
out = {"cipher": t.local_cipher}

def run(cmd, pty=False):
    stdin, stdout, stderr = c.exec_command(cmd, get_pty=pty, timeout=20)
    data = stdout.read().decode()
    return data, stdout.channel.recv_exit_status()

out["exec"], out["exec_status"] = run("echo paramiko-$((6*7)); exit 4")
out["pty"], _ = run("test -t 0 && echo tty-yes; stty size", pty=True)

ch = c.invoke_shell(term="vt100", width=90, height=25)
ch.settimeout(20)
ch.send("echo shell-$((7*6))\n")
buf = b""
while b"shell-42" not in buf:
    buf += ch.recv(4096)
ch.send("exit\n")
while not ch.exit_status_ready():
    d = ch.recv(4096)
    if not d:
        break
out["shell"] = "shell-42" in buf.decode(errors="replace")
ch.close()

s = c.open_sftp()
s.put(local + "/up.txt", remote + "/up.txt")
s.rename(remote + "/up.txt", remote + "/moved.txt")
s.get(remote + "/moved.txt", local + "/down.txt")
out["listing"] = sorted(s.listdir(remote))
s.close()
c.close()
print(json.dumps(out))
`

func TestParamikoExecPtyShellAndSFTP(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import paramiko").CombinedOutput(); err != nil {
		t.Fatalf("paramiko not installed (apt-get install python3-paramiko): %v: %s", err, out)
	}
	b := newTestbed(t, bedOptions{})
	local, remote := t.TempDir(), remoteDir(t)
	if err := os.WriteFile(filepath.Join(local, "up.txt"), []byte("from paramiko\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	known := filepath.Join(local, "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize("127.0.0.1:" + b.port)}, b.hostKey) + "\n"
	if err := os.WriteFile(known, []byte(line), 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(local, "client.py")
	if err := os.WriteFile(script, []byte(paramikoScript), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(testCtx(t), python, script, b.port, b.alice.KeyPath, known, remote, local)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("paramiko: %v\n%s", err, stderr.String())
	}
	var got struct {
		Cipher, Exec, Pty string
		ExecStatus        int `json:"exec_status"`
		Shell             bool
		Listing           []string
	}
	if err := json.Unmarshal(raw, &got); err != nil {
		t.Fatalf("output %q: %v", raw, err)
	}
	// paramiko's own default offer, with no GCM in it, was taken.
	if !strings.HasSuffix(got.Cipher, "-ctr") {
		t.Errorf("cipher %q", got.Cipher)
	}
	if got.Exec != "paramiko-42\n" || got.ExecStatus != 4 {
		t.Errorf("exec %q status %d", got.Exec, got.ExecStatus)
	}
	// get_pty waits for its answer; 24x80 is paramiko's default size.
	if pty := strings.ReplaceAll(got.Pty, "\r", ""); !strings.Contains(pty, "tty-yes\n24 80\n") {
		t.Errorf("pty exec output %q", got.Pty)
	}
	if !got.Shell {
		t.Error("invoke_shell did not run the command")
	}
	if !slices.Equal(got.Listing, []string{"moved.txt"}) {
		t.Errorf("sftp listing %q", got.Listing)
	}
	sameFile(t, filepath.Join(remote, "moved.txt"), []byte("from paramiko\n"))
	sameFile(t, filepath.Join(local, "down.txt"), []byte("from paramiko\n"))

	// Four sessions on one connection, each its own row; every one
	// logged: the two commands, the typed shell line, the file operations.
	list := b.sessionsOf("alice")
	if len(list) != 4 {
		t.Fatalf("sessions %+v", list)
	}
	var logged []string
	for _, s := range list {
		for _, c := range b.commands(s.ID) {
			logged = append(logged, c.Source+": "+c.Command)
		}
	}
	all := strings.Join(logged, "\n")
	for _, want := range []string{
		"exec: echo paramiko-$((6*7)); exit 4",
		"exec: test -t 0 && echo tty-yes; stty size",
		"shell: echo shell-$((7*6))",
		"sftp: put " + remote + "/up.txt (14 bytes)",
		"sftp: rename " + remote + "/up.txt -> " + remote + "/moved.txt",
		"sftp: get " + remote + "/moved.txt",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("command log lacks %q:\n%s", want, all)
		}
	}
	// The shell's recording has its output.
	for _, s := range list {
		if s.RecordingPath == "" {
			continue
		}
		if _, o := castStreams(t, b.castOf(s.RecordingPath)); strings.Contains(o, "shell-42") {
			return
		}
	}
	t.Error("no recording holds the shell's output")
}
