package gateway_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// unwritableRecordings makes DATA/recordings a plain file, so no recording
// can be created (root ignores permission bits, so modes cannot do this).
func unwritableRecordings(data string) {
	if err := os.WriteFile(filepath.Join(data, "recordings"), []byte("not a directory"), 0o600); err != nil {
		panic(err)
	}
}

func TestRecordingUnavailableRefusesSession(t *testing.T) {
	b := newTestbed(t, bedOptions{prepare: unwritableRecordings})
	out, errOut, code := b.run(b.alice, "root@web01", "echo must-not-run")
	if code != 1 || out != "" || errOut != "warden: session recording unavailable; session refused\n" {
		t.Fatalf("code %d out %q stderr %q", code, out, errOut)
	}
	b.waitEvent("recording.failed", "recordings")
	// Nothing reached the host: sshd never saw a session.
	if strings.Contains(b.host.Log(), "Starting session") {
		t.Fatal("the host started a session although recording failed")
	}
}

func TestRecordingOnFailureContinue(t *testing.T) {
	b := newTestbed(t, bedOptions{
		prepare:   unwritableRecordings,
		recording: "recording:\n  input: false\n  on_failure: continue\n",
	})
	out, _, code := b.run(b.alice, "root@web01", "echo runs-unrecorded")
	if code != 0 || out != "runs-unrecorded\n" {
		t.Fatalf("code %d out %q", code, out)
	}
	b.waitEvent("recording.failed", "recordings")
	s := b.lastSession("alice")
	if s.RecordingPath != "" || s.RecordingSHA256 != "" {
		t.Fatalf("row claims a recording: %+v", s)
	}
	// The command log still works.
	if cmds := b.commands(s.ID); len(cmds) != 1 || cmds[0].Command != "echo runs-unrecorded" {
		t.Fatalf("commands %+v", cmds)
	}
}

// A recording that fails mid-session (its disk fills up) ends the session
// with a message. The disk is a 64 KiB tmpfs mounted over DATA/recordings.
func TestRecordingFailureMidSessionTerminates(t *testing.T) {
	var mnt string
	b := newTestbed(t, bedOptions{prepare: func(data string) {
		mnt = filepath.Join(data, "recordings")
		if err := os.MkdirAll(mnt, 0o700); err != nil {
			panic(err)
		}
		if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k,mode=0700", "tmpfs", mnt).CombinedOutput(); err != nil {
			panic("mount tmpfs (tests run as root): " + err.Error() + ": " + string(out))
		}
	}})
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	out, errOut, code := b.run(b.alice, "root@web01", "echo started; head -c 4000000 /dev/zero | tr '\\0' x; echo; echo finished")
	if code != 1 || !strings.Contains(errOut, "warden: session recording failed; session terminated") {
		t.Fatalf("code %d stderr %q", code, errOut)
	}
	if strings.Contains(out, "finished") {
		t.Fatal("the session ran to its end without a recording")
	}
	s := b.lastSession("alice")
	if s.EndReason != "recording_failed" {
		t.Fatalf("end reason %q", s.EndReason)
	}
}

// Bulk output, which the recorder writes past the page cache in whole
// aligned blocks, reaches the cast byte for byte: several megabytes in the
// chunk sizes the network happens to give, multibyte characters among
// them, quotes and backslashes that JSON escapes, and the sealed digest is
// the file's (verifyAll).
func TestBulkOutputRecordedWhole(t *testing.T) {
	b := newTestbed(t, bedOptions{})
	out, errOut, code := b.run(b.alice, "root@web01",
		`seq 1 300000; i=0; while [ $i -lt 2000 ]; do printf 'é"\\%d\n' $i; i=$((i+1)); done; seq 300001 400000`)
	var want strings.Builder
	for i := 1; i <= 300000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	for i := 0; i < 2000; i++ {
		fmt.Fprintf(&want, "é\"\\%d\n", i)
	}
	for i := 300001; i <= 400000; i++ {
		fmt.Fprintf(&want, "%d\n", i)
	}
	if code != 0 || out != want.String() {
		t.Fatalf("code %d, %d bytes out (want %d), stderr %q", code, len(out), want.Len(), errOut)
	}
	s := b.lastSession("alice")
	if s.RecordingSHA256 == "" {
		t.Fatalf("session has no sealed recording: %+v", s)
	}
	if got := checkCast(t, filepath.Join(b.data, s.RecordingPath)); got != want.String() {
		t.Fatalf("the cast holds %d bytes of output, the client got %d", len(got), want.Len())
	}
	b.verifyAll()
}
