package gateway_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/warden-gw/warden/audit"
	"github.com/warden-gw/warden/internal/sshtest"
	"github.com/warden-gw/warden/internal/storetest"
)

// mountTmpfs mounts a tmpfs of the given size (e.g. "512k") on dir, which it
// creates, and unmounts it when the test ends. Tests run as root (CI does).
func mountTmpfs(t *testing.T, dir, size string) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs on %s (tests run as root): %v: %s", dir, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
}

// fillDisk writes dir/filler until the file system is full and returns a
// function that frees the space again.
func fillDisk(t *testing.T, dir string) (free func()) {
	t.Helper()
	f, err := os.CreateTemp(dir, "filler-*")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	path := f.Name()
	chunk := make([]byte, 4096)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	return func() { os.Remove(path) }
}

// checkCast fails unless the file is asciicast v2 made of whole JSON lines,
// and returns its output.
func checkCast(t *testing.T, path string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(raw) == 0 || raw[len(raw)-1] != '\n' {
		t.Fatalf("%s does not end with a whole line: ...%q", path, raw[max(0, len(raw)-40):])
	}
	lines := strings.Split(strings.TrimSuffix(string(raw), "\n"), "\n")
	var h struct{ Version int }
	if err := json.Unmarshal([]byte(lines[0]), &h); err != nil || h.Version != 2 {
		t.Fatalf("%s: header %q: %v", path, lines[0], err)
	}
	var out strings.Builder
	for i, l := range lines[1:] {
		var ev [3]any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("%s line %d: %q: %v", path, i+2, l, err)
		}
		if s, ok := ev[2].(string); ok && ev[1] == "o" {
			out.WriteString(s)
		}
	}
	return out.String()
}

// verifyAll runs the auditor's check: the chain, every sealed recording
// digest and command digest.
func (b *testbed) verifyAll() {
	b.t.Helper()
	rep, err := audit.Verify(context.Background(), b.data)
	if err != nil || len(rep.Problems) > 0 {
		b.t.Fatalf("audit verify: %v %v", err, rep.Problems)
	}
}

// recordingsFull runs the common start of the full-recordings tests: a
// tmpfs of 512 KiB over DATA/recordings, a finished session, then a live
// shell printing a tick five times a second, then the file system filled.
// It returns the finished session's row and the live terminal.
func recordingsFull(t *testing.T, rec string) (*testbed, audit.Session, *sshtest.PTYSession) {
	b := newTestbed(t, bedOptions{recording: rec})
	mnt := filepath.Join(b.data, "recordings")
	mountTmpfs(t, mnt, "512k")
	if out, errOut, code := b.run(b.alice, "root@web01", "echo earlier-$((1+1))"); code != 0 || out != "earlier-2\n" {
		t.Fatalf("earlier session: %d %q %q", code, out, errOut)
	}
	earlier := b.lastSession("alice")
	if earlier.RecordingSHA256 == "" {
		t.Fatalf("earlier session has no sealed recording: %+v", earlier)
	}
	p := b.alice.StartPTY(t, b.port, "root@web01", 80, 24)
	p.Send("while :; do echo tick-$((1+1)); sleep 0.2; done\r")
	p.Expect(t, `tick-2`, expectWait)
	t.Cleanup(fillDisk(t, mnt))
	return b, earlier, p
}

// With recording.on_failure: terminate, a full recordings disk refuses new
// sessions with one line before they reach the host, ends the live session
// with one line, and corrupts nothing already written: the earlier
// recording still parses and verifies, and the live one ends with a whole
// event.
func TestRecordingsDiskFullTerminate(t *testing.T) {
	b, earlier, live := recordingsFull(t, "")
	live.Expect(t, `warden: session recording failed; session terminated`, expectWait)
	if code, err := live.Wait(expectWait); err != nil || code != 1 {
		t.Fatalf("live session: code %d, %v", code, err)
	}
	// Closing the live recording cut its torn last event; what that freed
	// is taken again, so the disk is full when the next session asks.
	t.Cleanup(fillDisk(t, filepath.Join(b.data, "recordings")))
	started := strings.Count(b.host.Log(), "Starting session")
	out, errOut, code := b.run(b.alice, "root@web01", "echo must-not-run")
	if code != 1 || out != "" || errOut != "warden: session recording unavailable; session refused\n" {
		t.Fatalf("new session on a full disk: code %d out %q stderr %q", code, out, errOut)
	}
	if n := strings.Count(b.host.Log(), "Starting session"); n != started {
		t.Fatal("the host started a session that could not be recorded")
	}
	rows, err := b.store.Sessions(testCtx(t), audit.SessionFilter{User: "alice"})
	if err != nil {
		t.Fatal(err)
	}
	var liveRow audit.Session
	for _, s := range rows {
		if s.EndReason == "recording_failed" {
			liveRow = s
		}
	}
	if liveRow.ID == "" || liveRow.RecordingPath == "" {
		t.Fatalf("no session ended as recording_failed: %+v", rows)
	}
	if !strings.Contains(checkCast(t, filepath.Join(b.data, liveRow.RecordingPath)), "tick-2") {
		t.Fatal("the live session's recording lost what was written before the disk filled")
	}
	if !strings.Contains(checkCast(t, filepath.Join(b.data, earlier.RecordingPath)), "earlier-2") {
		t.Fatal("the earlier recording lost its output")
	}
	b.verifyAll()
}

// With recording.on_failure: continue, the same full disk lets the live
// session go on and new sessions run unrecorded, each with a
// recording.failed event, exactly as configured; the earlier recording is
// intact.
func TestRecordingsDiskFullContinue(t *testing.T) {
	b, earlier, live := recordingsFull(t, "recording:\n  input: true\n  on_failure: continue\n")
	b.waitEvent("recording.failed", "on_failure:continue")
	live.Expect(t, `tick-2`, expectWait)
	live.Send("\x03")
	live.Send("echo alive-$((2+3))\r")
	live.Expect(t, `alive-5`, expectWait)
	out, errOut, code := b.run(b.alice, "root@web01", "echo unrecorded-$((1+1))")
	if code != 0 || out != "unrecorded-2\n" {
		t.Fatalf("new session under continue: %d %q %q", code, out, errOut)
	}
	if s := b.lastSession("alice"); s.RecordingPath != "" || s.RecordingSHA256 != "" {
		t.Fatalf("the unrecorded session's row claims a recording: %+v", s)
	}
	live.Send("exit\r")
	if code, err := live.Wait(expectWait); err != nil || code != 0 {
		t.Fatalf("live session: code %d, %v", code, err)
	}
	if !strings.Contains(checkCast(t, filepath.Join(b.data, earlier.RecordingPath)), "earlier-2") {
		t.Fatal("the earlier recording lost its output")
	}
	b.verifyAll()
}

// When the database's disk fills, the gateway fails closed the same way:
// sessions whose row cannot be written are refused with one line, and no
// session reaches the host without its row. DATA is a small tmpfs of its
// own (recordings on another, roomy one, so only the database is short).
func TestDatabaseDiskFullFailsClosed(t *testing.T) {
	storetest.SQLiteOnly(t, "fills the data directory's disk, which holds the database (DATA/warden.db) only on SQLite; on PostgreSQL the tables are on the server's disk")
	var data string
	b := newTestbed(t, bedOptions{prepare: func(d string) {
		data = d
		mountTmpfs(t, d, "4m")
		mountTmpfs(t, filepath.Join(d, "recordings"), "16m")
	}})
	if out, errOut, code := b.run(b.alice, "root@web01", "echo before-$((1+1))"); code != 0 || out != "before-2\n" {
		t.Fatalf("before the disk filled: %d %q %q", code, out, errOut)
	}
	free := fillDisk(t, data)
	refused, tries := "", 0
	for ; tries < 40 && refused == ""; tries++ {
		out, errOut, code := b.run(b.alice, "root@web01", "echo attempt")
		switch {
		case code == 0 && out == "attempt\n":
		case code == 1 && out == "" && strings.HasPrefix(errOut, "warden: ") && strings.Count(errOut, "\n") == 1:
			refused = errOut
		default:
			t.Fatalf("attempt %d on a full database disk: code %d out %q stderr %q", tries, code, out, errOut)
		}
	}
	if refused != "warden: session log unavailable; session refused\n" {
		t.Fatalf("no session refused on a full database disk (last refusal %q)\ngateway host log:\n%s", refused, b.host.Log())
	}
	t.Logf("session %d after the disk filled was refused: %q", tries, refused)
	free()
	var rows int
	if err := b.db().QueryRow(`SELECT COUNT(*) FROM sessions`).Scan(&rows); err != nil {
		t.Fatal(err)
	}
	if started := strings.Count(b.host.Log(), "Starting session"); started > rows {
		t.Fatalf("%d sessions reached the host, %d have a row: some ran unrecorded", started, rows)
	}
}
