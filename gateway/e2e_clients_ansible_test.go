package gateway_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh/knownhosts"
)

// Ansible (Debian's ansible-core) runs a small playbook against web01
// through the gateway, with its two connection plugins: ssh (OpenSSH, with
// ControlMaster: many session channels on one connection, and sftp for
// file transfer) and paramiko. Host keys are checked against a known_hosts
// file that holds only the gateway's key.

const ansiblePlaybook = `- hosts: managed
  gather_facts: false
  tasks:
    - name: a command
      command: echo ansible-{{ ansible_connection }}-$((6*7))
      register: said
    - name: its output
      assert:
        that: said.stdout == "ansible-" ~ ansible_connection ~ "-$((6*7))"
    - name: a file
      copy:
        src: {{LOCAL}}/payload.txt
        dest: {{REMOTE}}/copied-{{ ansible_connection }}.txt
        mode: "0640"
    - name: a shell line
      shell: uname -s > {{REMOTE}}/uname-{{ ansible_connection }}.txt
`

func TestAnsiblePlaybookWithSSHAndParamiko(t *testing.T) {
	for _, prog := range []string{"ansible-playbook"} {
		if _, err := exec.LookPath(prog); err != nil {
			t.Fatalf("%s not installed: apt-get install ansible-core", prog)
		}
	}
	b := newTestbed(t, bedOptions{})
	for _, conn := range []string{"ssh", "paramiko"} {
		t.Run(conn, func(t *testing.T) { runAnsible(t, b, conn) })
	}
}

func runAnsible(t *testing.T, b *testbed, conn string) {
	local, remote := t.TempDir(), remoteDir(t)
	home := filepath.Join(local, "home")
	if err := os.MkdirAll(filepath.Join(home, ".ssh"), 0o700); err != nil {
		t.Fatal(err)
	}
	// paramiko reads ~/.ssh/known_hosts (HOME); OpenSSH reads the file
	// named in its options. Both hold only the gateway's key.
	known := filepath.Join(home, ".ssh", "known_hosts")
	line := knownhosts.Line([]string{knownhosts.Normalize("127.0.0.1:" + b.port)}, b.hostKey) + "\n"
	write := func(path, data string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(known, line)
	write(filepath.Join(local, "payload.txt"), "copied through warden by "+conn+"\n")
	inventory := fmt.Sprintf("[managed]\nweb01 ansible_host=127.0.0.1 ansible_port=%s ansible_user=root@web01 "+
		"ansible_ssh_private_key_file=%s ansible_python_interpreter=/usr/bin/python3 ansible_connection=%s\n",
		b.port, b.alice.KeyPath, conn)
	write(filepath.Join(local, "inventory"), inventory)
	playbook := strings.NewReplacer("{{LOCAL}}", local, "{{REMOTE}}", remote).Replace(ansiblePlaybook)
	write(filepath.Join(local, "play.yml"), playbook)

	cmd := exec.CommandContext(testCtx(t), "ansible-playbook", "-i", filepath.Join(local, "inventory"), filepath.Join(local, "play.yml"))
	cmd.Dir = local
	env := []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"ANSIBLE_CONFIG=" + filepath.Join(local, "none.cfg"), // no ansible.cfg of the machine
		"ANSIBLE_HOME=" + filepath.Join(local, "ansible"),
		"ANSIBLE_LOCAL_TEMP=" + filepath.Join(local, "tmp"),
		"ANSIBLE_REMOTE_TEMP=" + filepath.Join(remote, ".ansible-tmp"),
		"ANSIBLE_HOST_KEY_CHECKING=True",
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_RETRY_FILES_ENABLED=False",
		// ssh: ansible's own multiplexing, and only this test's files.
		"ANSIBLE_SSH_ARGS=-o ControlMaster=auto -o ControlPersist=30s",
		"ANSIBLE_SSH_CONTROL_PATH_DIR=" + filepath.Join(local, "cp"),
		"ANSIBLE_SSH_COMMON_ARGS=-F /dev/null -o IdentitiesOnly=yes -o IdentityAgent=none -o UserKnownHostsFile=" + known +
			" -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o UpdateHostKeys=no",
		// paramiko: no keys from ~/.ssh, no writing of known_hosts.
		"ANSIBLE_PARAMIKO_LOOK_FOR_KEYS=False",
		"ANSIBLE_PARAMIKO_RECORD_HOST_KEYS=False",
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ansible-playbook (%s): %v\n%s", conn, err, out)
	}
	if !strings.Contains(string(out), "failed=0") || !strings.Contains(string(out), "changed=3") {
		t.Fatalf("play recap:\n%s", out)
	}

	// The work happened on the host.
	sameFile(t, filepath.Join(remote, "copied-"+conn+".txt"), []byte("copied through warden by "+conn+"\n"))
	if st, err := os.Stat(filepath.Join(remote, "copied-"+conn+".txt")); err != nil || st.Mode().Perm() != 0o640 {
		t.Fatalf("copied file: %v %v", st, err)
	}
	if got, err := os.ReadFile(filepath.Join(remote, "uname-"+conn+".txt")); err != nil || string(got) != "Linux\n" {
		t.Fatalf("uname file %q %v", got, err)
	}

	// And it was recorded: each module run an exec row, each upload (the
	// modules, the copied file) an sftp put, all of them on this run's
	// directory.
	payload := len("copied through warden by " + conn + "\n")
	var logged []string
	for _, s := range b.sessionsOf("alice") {
		for _, c := range b.commands(s.ID) {
			if strings.Contains(c.Command, remote+"/") {
				logged = append(logged, c.Source+": "+c.Command)
			}
		}
	}
	all := strings.Join(logged, "\n")
	tmp := regexp.QuoteMeta(remote + "/.ansible-tmp/ansible-tmp-")
	for _, want := range []string{
		`(?m)^exec: /bin/sh -c '/usr/bin/python3 ` + tmp + `[^/]+/AnsiballZ_command\.py && sleep 0'$`,
		`(?m)^exec: /bin/sh -c '/usr/bin/python3 ` + tmp + `[^/]+/AnsiballZ_copy\.py && sleep 0'$`,
		`(?m)^sftp: put ` + tmp + `[^/]+/AnsiballZ_command\.py \(\d+ bytes\)$`,
		`(?m)^sftp: put ` + tmp + `[^/]+/source \(` + fmt.Sprint(payload) + ` bytes\)$`,
	} {
		if !regexp.MustCompile(want).MatchString(all) {
			t.Errorf("command log (%s) lacks %s:\n%s", conn, want, all)
		}
	}
}
