package evidence

import (
	"bytes"
	"os"
	"os/exec"
	"testing"
)

// tool returns the path of a real binary the tests depend on. A missing
// binary fails the test: the packet's promise is that stock tools verify
// it, and a skipped check would hide a broken promise.
func tool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required by this test and is not installed: %v", name, err)
	}
	return p
}

func runTool(t testing.TB, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(tool(t, name), args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %q: %v\n%s", name, args, err, out)
	}
	return out
}

// sshKeygenVerify runs the auditor's command:
// ssh-keygen -Y verify -f SIGNERS -I warden -n NS -s SIG < message.
func sshKeygenVerify(t testing.TB, signers, namespace, sig string, message []byte) ([]byte, error) {
	t.Helper()
	cmd := exec.Command(tool(t, "ssh-keygen"), "-Y", "verify", "-f", signers, "-I", "warden", "-n", namespace, "-s", sig)
	cmd.Stdin = bytes.NewReader(message)
	return cmd.CombinedOutput()
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}
